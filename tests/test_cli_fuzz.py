"""Random values for every option of train, generate, evaluate and influence (Hypothesis): the command
never ends in a traceback or a hang, exits 0 or with one `error: ...` (exit 2), and a rejected command
writes nothing.

Each example changes one option and keeps the others at values that finish fast, so that an accepted
value is also run (a tiny model, a few bars) rather than only parsed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from in_process import run_main
from strategies import examples

ANY_NUMBER = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2, 3, 7, 64, 1024, 10**9, 2**63, 0.5, 1e-300]),
)
ANY_TEXT = st.one_of(st.text(max_size=20), st.sampled_from(["", "-", "--", "abc", "1,2", "1.0,0.7", "nan", "\x00"]))


def as_arg(value) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)


def check(argv: list[str], outputs: list[Path]) -> None:
    code, err = run_main(*argv)
    assert code in (0, 2), f"{argv}: exit {code}\n{err}"
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert lines, f"{argv}: no error line in\n{err}"
        assert "Traceback" not in err
        for path in outputs:
            assert not path.exists(), f"{argv}: rejected, yet wrote {path}"


SETTINGS = settings(max_examples=examples(15), deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """An untrained tiny LSTM and Transformer in a run folder (loading, not training, is under test)."""
    import torch

    from engine.models import build_model
    from engine.music.tokens import TokenConfig
    from engine.training.checkpoint import ModelRecord, save_model
    from engine.training.train_config import TrainConfig

    root = tmp_path_factory.mktemp("fuzz")
    for key in ("lstm", "transformer"):
        torch.manual_seed(0)
        model = build_model(key, "tiny", TokenConfig().vocab_size)
        save_model(root / "run" / key, model, ModelRecord(key, model.config, TokenConfig(), TrainConfig(preset="tiny"), 0))
    return root / "run"


TRAIN_OPTIONS = ["--steps", "--seed", "--batch-size", "--lr", "--window", "--threads", "--processes",
                 "--eval-every", "--save-every", "--workers"]


@pytest.mark.parametrize("option", TRAIN_OPTIONS)
@SETTINGS
@given(value=st.one_of(ANY_NUMBER, ANY_TEXT))
def test_train_options(tmp_path_factory, option, value):
    out = tmp_path_factory.mktemp("train") / "run"
    nowhere = out.parent / "no-such-folder"  # accepted settings stop at the missing corpus: nothing trains
    check(["train", "--out", str(out), "--preset", "tiny", "--source", str(nowhere), option, as_arg(value)], [out])


@pytest.mark.parametrize("option", ["--bars", "--temperature", "--top-p", "--top-k", "--variations", "--seed",
                                    "--primer-bars", "--program"])
@SETTINGS
@given(value=st.one_of(ANY_NUMBER, ANY_TEXT))
def test_generate_options(tmp_path_factory, tiny_run, option, value):
    out = tmp_path_factory.mktemp("gen") / "x.mid"
    fast = {"--bars": "1", "--variations": "1", "--primer-bars": "1"}
    fast.pop(option, None)
    if option == "--bars" and isinstance(value, (int, float)) and math.isfinite(value) and value > 64:
        value = 64  # an accepted length is run: keep it short
    if option == "--variations" and isinstance(value, (int, float)) and math.isfinite(value) and value > 4:
        value = 4
    argv = ["generate", "--run", str(tiny_run), "--model", "lstm", "--out", str(out),
            *[x for kv in fast.items() for x in kv], option, as_arg(value)]
    check(argv, [out, out.with_name("x-1.mid")])


@pytest.mark.parametrize("option", ["--primers", "--primer-bars", "--bars", "--samples", "--seed", "--probe-steps",
                                    "--threads", "--probe-gaps", "--temperatures", "--min-n"])
@SETTINGS
@given(value=st.one_of(ANY_NUMBER, ANY_TEXT))
def test_evaluate_options(tmp_path_factory, tiny_run, option, value):
    out = tmp_path_factory.mktemp("eval") / "report"
    nowhere = out.parent / "no-such-folder"  # accepted settings stop at the missing corpus
    check(["evaluate", "--run", str(tiny_run), "--out", str(out), "--source", str(nowhere), "--no-probe",
           option, as_arg(value)], [out])


@pytest.mark.parametrize("option", ["--bars", "--primer-bars", "--seed", "--method"])
@SETTINGS
@given(value=st.one_of(ANY_NUMBER, ANY_TEXT))
def test_influence_options(tiny_run, option, value):
    fast = {"--bars": "1", "--primer-bars": "1"}
    fast.pop(option, None)
    if option == "--bars" and isinstance(value, (int, float)) and math.isfinite(value) and value > 4:
        value = 4
    check(["influence", "--run", str(tiny_run), "--model", "transformer", *[x for kv in fast.items() for x in kv],
           option, as_arg(value)], [])
