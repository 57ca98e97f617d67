"""Opening a run with one damaged model (issue 26): the healthy models open, the damaged one is named."""

from __future__ import annotations

import shutil


def test_a_run_with_one_damaged_model_opens_the_healthy_ones_and_names_the_bad_one(window, user, qtbot, tiny_run,
                                                                                   tmp_path):
    run = tmp_path / "damaged-run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(".lock"))
    weights = run / "gru" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # cut short, as a full disk or a bad copy leaves it
    user.answer(run)
    user.trigger("File > Open run ...")
    qtbot.waitUntil(lambda: window.state.run_dir == run, timeout=20000)
    assert "gru" not in window.state.models and {"rnn", "lstm", "transformer"} <= set(window.state.models)
    (message,) = user.warnings()
    assert message.title == f"Some models of {run} could not be opened"
    assert "Not opened: gru:" in message.text and "model.safetensors" in message.text
