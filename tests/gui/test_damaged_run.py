"""Damaged files in the app (issue 26): a run with one damaged model opens the healthy ones and names the bad
one; a report that is a device, a FIFO or a huge file is refused before it is read; an export that cannot
fit is refused before it writes."""

from __future__ import annotations

import os
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
    assert window.models_label.text() == f"{len(window.state.models)} models of {run.name}"
    assert "Not opened: gru:" in message.text and "model.safetensors" in message.text


def test_a_report_that_is_a_device_a_fifo_or_a_huge_file_is_refused_before_it_is_read(window, user, tmp_path):
    """Open report on a link to /dev/zero (it read until the memory ran out), a FIFO (the read blocked the
    window) or a sparse 1 GB file: refused by name, from what the file is and its size."""
    user.show_tab("Memory")
    for make in ("/dev/zero", "fifo", "sparse"):
        path = tmp_path / make.strip("/").replace("/", "-") / "report.json"
        path.parent.mkdir()
        if make == "/dev/zero":
            path.symlink_to("/dev/zero")
        elif make == "fifo":
            os.mkfifo(path)
        else:
            with open(path, "wb") as fh:
                fh.truncate(1 << 30)
        user.answer(path)
        user.click("Open report ...")
        message = window.statusBar().currentMessage()
        assert message.startswith("Could not open the report") and str(path) in message, message
        assert ("far more than a report holds" if make == "sparse" else "not a regular file") in message, message


def test_export_to_a_disk_without_room_says_so_before_writing(window, user, tmp_path, monkeypatch):
    """Export report on a full disk is refused before the first file, naming the folder (as `evaluate` does)."""
    import shutil as shutil_module

    from tests.gui import fake_report

    path = fake_report.write_report(tmp_path / "in")
    user.show_tab("Memory")
    user.answer(path)
    user.click("Open report ...")
    monkeypatch.setattr("engine.evaluation.report_folder.shutil.disk_usage",
                        lambda p: shutil_module._ntuple_diskusage(1 << 30, (1 << 30) - 4096, 4096))
    folder = user.new_folder()
    user.answer(folder)
    user.click("Export report ...")
    text = window.memory_tab.status.text()
    assert text.startswith(f"Export cancelled: cannot write the report to {folder}") and "4.0 kB free" in text, text
    assert not any(folder.iterdir())
