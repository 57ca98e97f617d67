"""Nothing lost, round three (issue 26): memory bounded before allocation, every way a run can be stopped
saves it, damaged run folders diagnosed before work with true words, numeric flags range-checked, files
that respect the umask, messages that say what happened.

Each test is an attack a careless user (or an attacker) made, through the command they typed: main.main
in-process, a real process only where a signal or a pipe needs one."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.core import memory_budget
from engine.core.errors import UserError
from engine.models.registry import MODEL_LABELS
from main import main
from tests.in_process import run_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--batch-size", "2", "--device", "cpu", "--threads", "1"]


@pytest.fixture
def cache(corpus_cache, monkeypatch):
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
    return corpus_cache


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """An untrained tiny LSTM and Transformer saved as a run (loading, not training, is under test)."""
    from engine.models import build_model
    from engine.music.tokens import TokenConfig
    from engine.training.checkpoint import ModelRecord, save_model
    from engine.training.train_config import TrainConfig

    root = tmp_path_factory.mktemp("saved") / "run"
    for key in ("lstm", "transformer"):
        torch.manual_seed(0)
        model = build_model(key, "tiny", TokenConfig().vocab_size)
        save_model(root / key, model, ModelRecord(key, model.config, TokenConfig(), TrainConfig(preset="tiny"), 0))
    return root


@pytest.fixture
def run_copy(saved_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(saved_run, copy)
    return copy


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, midi_folder, corpus_cache) -> Path:
    """A tiny rnn run stopped at step 6 of 12 (its train_state, model, history and config all written)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
        _train_until(out, midi_folder, stop_at=6, steps=12)
    return out


def _train_until(out: Path, source: Path, stop_at: int, steps: int, **settings) -> None:
    """Train a tiny rnn into `out` and stop it after step `stop_at`, as a Ctrl-C does (it checkpoints)."""
    from engine.data.corpus import load_corpus
    from engine.training.run_plan import plan_new_run
    from engine.training.train import train
    from engine.training.train_config import TrainConfig

    config = TrainConfig(preset="tiny", steps=steps, batch_size=2, device="cpu", processes=1, threads=1,
                         **{"eval_every": 10, "save_every": 100, **settings})
    stop = threading.Event()
    with plan_new_run(out, ["rnn"], config, sources=[str(source)]) as plan:
        for event in train(plan.job(load_corpus([source])), stop):
            if event.kind == "step" and event.step >= stop_at:
                stop.set()


def _resume_copy(stopped_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(stopped_run, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


# ------------------------------------------------------------------------ 1. memory bounded before allocation


def _edit_config(model_dir: Path, **model_fields) -> None:
    path = model_dir / "config.json"
    doc = json.loads(path.read_text())
    doc["model"].update(model_fields)
    path.write_text(json.dumps(doc))


@pytest.fixture
def no_real_build(monkeypatch):
    """Fail the moment a real (not meta) transformer is built: the refusal must come first."""
    from engine.models.transformer import TransformerLM

    real_init = TransformerLM.__init__

    def init(self, config):
        if torch.empty(0).device.type != "meta" and config.d_model > 1000:
            raise AssertionError(f"a real model of d_model {config.d_model} was built")
        real_init(self, config)

    monkeypatch.setattr(TransformerLM, "__init__", init)


def test_a_config_asking_for_seven_billion_parameters_is_refused_before_it_is_built(run_copy, tmp_path, capsys,
                                                                                    no_real_build):
    # every field inside its own limit: d_model 2048, 48 layers, mlp_ratio 16, 64 heads (~7 G parameters)
    _edit_config(run_copy / "transformer", d_model=2048, n_layers=48, mlp_ratio=16, n_heads=64)
    code = main(["generate", "--run", str(run_copy), "--model", "transformer", "--bars", "1",
                 "--out", str(tmp_path / "x.mid")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "7,250,038,784 parameters" in err and "at most 100,000,000" in err and "config.json" in err
    assert not (tmp_path / "x.mid").exists()


def test_the_app_opens_a_run_through_the_same_checks(run_copy, no_real_build):
    from gui.loading import load_run_models

    _edit_config(run_copy / "transformer", d_model=2048, n_layers=48, mlp_ratio=16, n_heads=64)
    found = load_run_models(run_copy, "cpu")
    assert list(found.models) == ["lstm"]
    assert "7,250,038,784 parameters" in found.damaged["transformer"]


def test_a_huge_sparse_checkpoint_is_refused_from_its_size_without_reading_it(run_copy, tmp_path, capsys):
    path = run_copy / "lstm" / "model.safetensors"
    with open(path, "r+b") as fh:
        fh.truncate(1 << 30)  # 1 GB on paper, nothing on disk
    started = time.monotonic()
    code = main(["generate", "--run", str(run_copy), "--model", "lstm", "--bars", "1", "--out", str(tmp_path / "x.mid")])
    err = capsys.readouterr().err
    assert code == 2 and "1.0 GB, but its config needs at most" in err and "model.safetensors" in err, err
    assert time.monotonic() - started < 10


def test_a_header_whose_shapes_differ_from_the_config_is_refused_naming_the_weight(run_copy, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    path = run_copy / "lstm" / "model.safetensors"
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    tensors["head.weight"] = torch.zeros(3, 3)
    save_file(tensors, path, metadata=meta)
    code = main(["generate", "--run", str(run_copy), "--model", "lstm", "--bars", "1", "--out", str(tmp_path / "x.mid")])
    err = capsys.readouterr().err
    assert code == 2 and "weight head.weight has shape (3, 3) F32, the config needs" in err, err


def test_attention_over_huge_windows_is_refused_naming_the_settings_to_lower(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--models", "attention", "--sequences", "crops", "--window", "8192", "--batch-size", "128",
                 "--out", str(out), "--source", str(tmp_path / "no-corpus-needed")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "128 x 8192^2 x 1 = 8,589,934,592 attention scores" in err and "lower --batch-size or --window" in err
    assert MODEL_LABELS["attention"] in err  # the model as the person knows it, not its key
    assert not out.exists()


def test_a_whole_tune_longer_than_the_batch_is_scored_in_full_and_counted(tmp_path, capsys):
    """Whole tunes: a piece of up to --max-len steps comes alone, and below four windows sliding-window
    attention scores all of it ([T, T] under a mask): 8001^2 x 20 heads passed as 1 x 2048^2 x 20."""
    out = tmp_path / "run"
    code = main(["train", "--models", "transformer", "--preset", "medium", "--window", "2048", "--batch-size", "1",
                 "--max-len", "8000", "--out", str(out), "--source", str(tmp_path / "no-corpus-needed")])
    err = capsys.readouterr().err
    assert code == 2 and "1 piece(s) of 8001 steps (--max-len)" in err, err
    assert "1,280,320,020 attention scores" in err and "lower --batch-size, --window or --max-len" in err
    assert not out.exists()


def test_the_training_estimate_is_shown_before_work_and_refused_above_the_budget(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "no-corpus")  # an accepted plan stops at the missing corpus: nothing trains
    assert main(["train", "--out", str(tmp_path / "a"), "--source", missing, *TINY]) == 2
    err = capsys.readouterr().err
    assert "memory: training needs about" in err and "allowed" in err
    monkeypatch.setattr(memory_budget, "machine_memory", lambda: (512 * 2**20, 2**30))  # a 1 GB machine, half free
    assert main(["train", "--out", str(tmp_path / "b"), "--source", missing, "--preset", "medium",
                 "--batch-size", "64", "--processes", "2"]) == 2
    err = capsys.readouterr().err
    assert "error: training would need about" in err
    assert "this machine allows 409.6 MB (80% of the 512.0 MB available now, of 1.0 GB)" in err
    assert "lower --batch-size or --window" in err and not (tmp_path / "b").exists()


@pytest.mark.parametrize("command, lower", [
    (["generate", "--model", "lstm", "--variations", "64", "--bars", "1024", "--out", "{tmp}/x.mid"],
     "lower --variations or --bars"),
    (["evaluate", "--primers", "1000", "--samples", "64", "--out", "{tmp}/report"], "lower --primers, --samples or --bars"),
])
def test_generation_and_evaluation_refuse_above_the_budget_before_loading(saved_run, tmp_path, capsys, monkeypatch,
                                                                        command, lower):
    monkeypatch.setenv(memory_budget.BUDGET_VARIABLE, "450")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    assert main([argv[0], "--run", str(saved_run), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert f"this machine allows 450.0 MB ({memory_budget.BUDGET_VARIABLE}=450): {lower}" in err, err
    assert "loading" not in err and list(tmp_path.iterdir()) == []


def test_influence_refuses_above_the_budget_before_loading_the_model(saved_run, tmp_path, capsys, monkeypatch):
    """influence had no estimate, while its attribution grows with the square of primer plus continuation
    (64 + 64 bars: a 16-copy forward and backward of 2,048 steps and float64 tables of 2,048^2): it is
    estimated from the model's config and the settings once the primer is read, printed, and refused
    above the budget naming the flags to lower, before the model is loaded (issue 26)."""
    import midi_factory as mf

    primer = mf.simple_tune(tmp_path / "long tune.mid", bars=66)
    monkeypatch.setenv(memory_budget.BUDGET_VARIABLE, "700")
    command = ["influence", "--run", str(saved_run), "--model", "transformer", "--primer", str(primer)]
    assert main([*command, "--primer-bars", "64", "--bars", "64"]) == 2
    err = capsys.readouterr().err
    assert "error: influence would need about 1.2 GB (process 400.0 MB, attribution " in err, err
    assert f"this machine allows 700.0 MB ({memory_budget.BUDGET_VARIABLE}=700): lower --bars or --primer-bars" in err
    assert "composed" not in err  # nothing was composed nor attributed
    # the same budget takes a short piece, and says what it needs before the work
    assert main([*command, "--primer-bars", "4", "--bars", "1"]) == 0
    err = capsys.readouterr().err
    assert "memory: influence needs about " in err and "allowed 700.0 MB" in err
    assert err.index("memory: influence needs") < err.index("composed")


def test_validation_chunks_never_outnumber_a_training_batchs_rows():
    """`train --models attention --sequences crops --window 8192 --batch-size 1` passed the estimate (1 row of
    8192^2 scores) and then validated 32 rows at once: 8.6 GB of scores at the first validation (reproduced
    at --window 4096 under a 3.5 GB ulimit: an allocator traceback). Checked on the batches themselves:
    the real attack would allocate what it is about."""
    import numpy as np

    from engine.training.loop import validation_batches
    from engine.training.train_config import TrainConfig

    tunes = [np.arange(2, 2 + 40 * 64) % 50 + 2 for _ in range(3)]  # 3 x 40 windows of 64 steps
    for batch_size, rows in ((1, 1), (5, 5), (64, 32)):
        cfg = TrainConfig(preset="tiny", sequences="crops", window=64, batch_size=batch_size)
        assert max(len(b) for b in validation_batches(tunes, cfg)) == rows


@pytest.mark.parametrize("command", ["train", "generate", "evaluate", "influence"])
def test_the_estimate_is_explained_in_the_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "estimates its peak memory" in " ".join(capsys.readouterr().out.split())


def _config_strategy(key: str):
    """Any value of each size field within its own limit (small ones more often: they can be built)."""
    from engine.models import spec

    cls = spec(key).config_cls
    limits = {}
    for klass in reversed(cls.__mro__):
        limits.update(klass.__dict__.get("LIMITS", {}))
    fields = {}
    for name, limit in limits.items():
        if name == "vocab_size":
            continue
        if limit.kind == "int":
            lo, hi = int(limit.lo), int(limit.hi)
            fields[name] = st.one_of(st.integers(lo, min(hi, lo + 40)), st.integers(lo, hi))
        elif limit.kind == "float":
            fields[name] = st.floats(limit.lo, limit.hi, exclude_min=limit.lo_open)
        elif limit.kind == "choice":
            fields[name] = st.sampled_from(limit.choices)
    return st.fixed_dictionaries(fields).map(lambda values: cls(key=key, **values))


@given(data=st.data())
def test_any_config_that_validates_is_refused_or_builds_within_its_estimate(data, monkeypatch):
    from engine.models import MODEL_KEYS, model_from_config
    from engine.training import footprint

    key = data.draw(st.sampled_from(MODEL_KEYS))
    config = data.draw(_config_strategy(key))
    try:
        config.validate()
    except UserError:
        assume(False)
    monkeypatch.setenv(memory_budget.BUDGET_VARIABLE, "32")
    try:
        weights = footprint.weights(config)
        estimate = memory_budget.generation([weights.needs], 1, 16)
        memory_budget.check(estimate, "sizes")
    except UserError as refused:  # refused before anything real was allocated
        assert "parameters" in str(refused) or "lower sizes" in str(refused)
        return
    model = model_from_config(config)
    real_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert sum(p.numel() for p in model.parameters()) == weights.needs.params
    assert real_bytes == weights.needs.weight_bytes and real_bytes <= estimate.total
    assert {k: (tuple(t.shape), t.dtype) for k, t in model.state_dict().items()} == weights.shapes


# ---------------------------------------------------------------------------------- 2. every stop saves


def test_a_closed_output_pipe_stops_training_with_checkpoints(tmp_path, midi_folder, cache, monkeypatch):
    """`train ... 2>&1 | head -4`: the reader leaves once training has begun; the next progress line finds
    the pipe closed, and training stops as after a Ctrl-C, every model checkpointed."""
    import commands.common

    read_end, write_end = os.pipe()
    lines = []

    def head():  # reads until training shows its first progress line, then leaves (closes the pipe)
        with open(read_end) as fh:
            for line in fh:
                lines.append(line)
                if line.startswith("train ["):
                    break

    reader = threading.Thread(target=head, name="head")
    reader.start()
    monkeypatch.setattr(commands.common, "QUIET_EVERY_S", 0.0)  # a progress line every step
    out = tmp_path / "run"
    with open(write_end, "w", buffering=1) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        try:
            code = main(["train", "--out", str(out), "--source", str(midi_folder), "--models", "rnn,gru",
                         "--steps", "100000", "--eval-every", "100000", *TINY, "--processes", "1"])
        finally:
            monkeypatch.undo()
    reader.join(timeout=10)  # the pipe is closed: the reader has left or sees its end
    from engine.training.checkpoint import read_state_record

    assert lines[-1].startswith("train [")
    assert code != 0
    steps = {k: read_state_record(out / k).step for k in ("rnn", "gru")}
    assert all(0 < s < 100000 for s in steps.values()), steps


def test_a_json_reader_gone_while_training_stops_it_with_checkpoints(tmp_path, midi_folder, cache):
    """`train --json | tee log` with the tee killed: stdout's reader is gone while stderr lives on, and nothing
    is written to stdout before the end. Each progress line looks at stdout: the run stops, checkpointed,
    instead of training on for hours to fail at its last line."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--out", str(out), "--source",
                             str(midi_folder), "--models", "rnn", "--steps", "100000", "--eval-every", "100000",
                             "--json", *TINY, "--processes", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "MELODY_MEMORY_CACHE": str(cache)})
    proc.stdout.close()  # the reader leaves at once
    err = proc.communicate(timeout=120)[1]
    from engine.training.checkpoint import read_state_record

    assert proc.returncode == 130, err
    assert "Traceback" not in err and "continue with --resume" in err, err
    assert 0 < read_state_record(out / "rnn").step < 100000


def test_sighup_to_the_process_group_saves_every_model_without_tracebacks(tmp_path, midi_folder, cache):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--out", str(out), "--source",
                             str(midi_folder), "--models", "rnn,gru", "--steps", "1000000", "--save-every", "5",
                             "--eval-every", "100000", *TINY, "--processes", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "MELODY_MEMORY_CACHE": str(cache)}, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all((out / k / "config.json").is_file() for k in ("rnn", "gru")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGHUP)  # the terminal closed: the whole group gets it
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyError" not in err and "ended unexpectedly" not in err, err
    assert "continue with --resume" in err


@pytest.mark.parametrize("sig", ["SIGHUP"])  # SIGTERM takes the same handler (main._stops_as_ctrl_c)
def test_a_stop_signal_ends_an_evaluation_with_workers_as_ctrl_c_does(saved_run, tmp_path, midi_folder, cache, sig):
    """Not only training: an evaluation's worker processes are ended and their semaphores released (killed by
    the signal's default, it left multiprocessing's resource tracker warning of leaked semaphores)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "evaluate", "--run", str(saved_run), "--source",
                             str(midi_folder), "--processes", "2", "--no-probe", "--out", str(tmp_path / "report")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "MELODY_MEMORY_CACHE": str(cache)}, start_new_session=True)
    seen = []
    for line in proc.stderr:  # the pool is running once it says so
        seen.append(line)
        if "worker processes" in line:
            break
    os.killpg(proc.pid, getattr(signal, sig))
    err = "".join(seen) + proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "error: interrupted" in err and "Traceback" not in err and "leaked" not in err, err
    assert not (tmp_path / "report").exists()


def test_a_worker_whose_parent_died_writes_no_more_files_of_a_save(tmp_path, midi_folder, cache, monkeypatch):
    """kill -9 of the parent while a worker saves: the worker looks at its parent between the files."""
    from engine.data.corpus import load_corpus
    from engine.training import checkpoint
    from engine.training.loop import train_models
    from engine.training.run_plan import plan_new_run
    from engine.training.train_config import TrainConfig

    written = []
    real_write = checkpoint.atomic_write
    monkeypatch.setattr(checkpoint, "atomic_write", lambda path, *a, **kw: (written.append(Path(path).name),
                                                                             real_write(path, *a, **kw))[1])
    config = TrainConfig(preset="tiny", steps=4, batch_size=2, device="cpu", processes=1, threads=1,
                         save_every=2, eval_every=100).validate().resolved()
    with plan_new_run(tmp_path / "run", ["rnn"], config, sources=[str(midi_folder)]) as plan:
        job = plan.job(load_corpus([midi_folder]))

        def parent_alive() -> bool:  # the parent is killed as the first file of the first save lands
            return not written

        list(train_models(job, config, ["rnn"], threading.Event(), parent_alive))
    assert written == ["train_state.safetensors"]
    assert not (tmp_path / "run" / "rnn" / "model.safetensors").exists()


def test_a_resume_after_a_stop_between_logging_steps_writes_the_same_history(tmp_path, midi_folder, cache):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    _train_until(whole, midi_folder, stop_at=10**9, steps=20)
    _train_until(stopped, midi_folder, stop_at=7, steps=20)  # logging steps are 10 and 20
    assert main(["train", "--resume", "--out", str(stopped)]) == 0

    def rows(run):
        with open(run / "rnn" / "history.csv") as fh:
            return [{k: r[k] for k in ("step", "train_bpt", "valid_bpt", "lr")} for r in csv.DictReader(fh)]

    assert rows(stopped) == rows(whole) and len(rows(whole)) == 2


# -------------------------------------------------------------------- 3. damaged run folders, true words


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "history.csv", "train_state.safetensors"])
def test_a_folder_where_a_run_file_belongs_is_refused_at_planning(stopped_run, tmp_path, capsys, cache, name):
    run = _resume_copy(stopped_run, tmp_path)
    path = run / "rnn" / name
    path.unlink()
    path.mkdir()
    before = snapshot(run)
    assert main(["train", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: damaged run folder: a folder stands where the rnn model's {name} belongs" in err, err
    assert "resuming" not in err and "bundled" not in err and snapshot(run) == before


def test_a_new_run_into_a_folder_with_a_damaged_model_folder_is_refused_at_planning(tmp_path, capsys):
    (tmp_path / "run" / "rnn" / "config.json").mkdir(parents=True)
    assert main(["train", "--out", str(tmp_path / "run"), "--models", "rnn", "--source", str(tmp_path / "x"), *TINY]) == 2
    assert "damaged run folder" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["config gone", "weights gone", "both gone", "config nested", "weights cut"])
def test_a_finished_models_lost_files_are_written_again_by_the_resume(tmp_path, midi_folder, cache, capsys, damage):
    """A resume left a finished model alone even with its config.json or weights gone or unreadable ("nothing
    was changed"), so it stayed unusable; its training state holds both. Until then evaluate names the file."""
    from engine.training.checkpoint import load_model

    out = tmp_path / "run"
    _train_until(out, midi_folder, stop_at=99, steps=4)  # runs to the end: finished
    weights = load_model(out, "rnn").model.state_dict()
    config, model = out / "rnn" / "config.json", out / "rnn" / "model.safetensors"
    if damage == "config nested":
        config.write_text("[" * 200_000 + "]" * 200_000)
    elif damage == "weights cut":
        model.write_bytes(model.read_bytes()[:100])
    else:
        for path in {"config gone": [config], "weights gone": [model], "both gone": [config, model]}[damage]:
            path.unlink()
    assert main(["evaluate", "--run", str(out), "--no-probe", "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"error: {out / 'rnn'}") and "sampling" not in err, err
    assert main(["train", "--resume", "--out", str(out)]) == 0
    assert "written again from its training state" in capsys.readouterr().err
    again = load_model(out, "rnn")
    assert again.record.step == 4 and all(torch.equal(again.model.state_dict()[k], v) for k, v in weights.items())
    assert len(list(csv.DictReader((out / "rnn" / "history.csv").open()))) > 0  # its history kept


def test_a_config_nested_200000_deep_is_not_a_readable_config(run_copy, tmp_path, capsys):
    (run_copy / "lstm" / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    code = main(["generate", "--run", str(run_copy), "--model", "lstm", "--bars", "1", "--out", str(tmp_path / "x.mid")])
    err = capsys.readouterr().err
    assert code == 2 and "config.json: not a readable config (nested too deeply)" in err, err
    assert "Traceback" not in err


def _sparse(path: Path, size: int = 64 << 20) -> None:
    with open(path, "r+b") as fh:  # 64 MB on paper, nothing on disk: NUL bytes and no line end
        fh.truncate(size)


HISTORY_DAMAGES = {
    "sparse": _sparse,
    "a line of NULs": lambda p: p.write_bytes(p.read_bytes() + b"6," + b"\x00" * 200_000 + b"\n"),
    "rows repeated": lambda p: p.write_text("step,train_bpt\n" + "1,1.0\n" * 50_000),
}


@pytest.mark.parametrize("damage", sorted(HISTORY_DAMAGES))
def test_a_damaged_history_is_refused_at_planning_without_reading_it_whole(stopped_run, tmp_path, capsys, cache,
                                                                           damage):
    run = _resume_copy(stopped_run, tmp_path)
    HISTORY_DAMAGES[damage](run / "rnn" / "history.csv")
    before = snapshot(run)
    assert main(["train", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"error: {run / 'rnn' / 'history.csv'}: damaged training history" in err, err
    assert "resuming" not in err and "Traceback" not in err and snapshot(run) == before


def test_a_history_is_read_only_up_to_the_models_step(stopped_run, tmp_path, cache):
    """A million rising rows (an edited or foreign file): reading ends at the first row past the step."""
    from engine.training.checkpoint import read_history

    run = _resume_copy(stopped_run, tmp_path)
    path = run / "rnn" / "history.csv"
    path.write_text("step,train_bpt\n" + "".join(f"{i},1.0\n" for i in range(1, 1_000_001)))
    assert [r["step"] for r in read_history(run / "rnn")] == list(range(1, 7))  # the run stands at step 6


def test_an_oversized_train_state_is_refused_at_planning(stopped_run, tmp_path, capsys, cache):
    run = _resume_copy(stopped_run, tmp_path)
    _sparse(run / "rnn" / "train_state.safetensors")
    assert main(["train", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "train_state.safetensors: 64.0 MB, but its config needs at most" in err and "resuming" not in err, err


def test_evaluate_refuses_a_damaged_history_before_computing(run_copy, tmp_path, capsys):
    _sparse(run_copy / "lstm" / "history.csv")
    assert main(["evaluate", "--run", str(run_copy), "--no-probe", "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert f"error: {run_copy / 'lstm' / 'history.csv'}: damaged training history" in err, err
    assert "loading the corpus" not in err and not (tmp_path / "report").exists()


DAMAGES = {
    "gone": lambda p: p.unlink(),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbage": lambda p: p.write_bytes(b"\x00\xff" * 64),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
    "nested": lambda p: p.write_text("[" * 100_000),
    "sparse": _sparse,
}


@given(name=st.sampled_from(["config.json", "model.safetensors", "history.csv", "train_state.safetensors",
                             "../run.json"]),
       damage=st.sampled_from(sorted(DAMAGES)))
def test_any_run_folder_damage_is_refused_before_training_or_repaired_from_train_state(
        stopped_run, tmp_path_factory, cache, name, damage):
    run = _resume_copy(stopped_run, tmp_path_factory.mktemp("damaged"))
    DAMAGES[damage](run / "rnn" / name)
    before = snapshot(run)
    from engine.training.checkpoint import load_model, read_state_record

    try:
        code = main(["train", "--resume", "--out", str(run)])
    except Exception as exc:  # the property: never a traceback
        pytest.fail(f"{damage} {name}: {type(exc).__name__}: {exc}")
    if snapshot(run) == before:  # refused (or left alone, as a model without training state is): nothing changed
        assert code in (0, 2)
    else:  # repaired: training went on from train_state to the end, and every file is whole again
        assert code == 0, f"{damage} {name}"
        assert read_state_record(run / "rnn").step == 12
        assert load_model(run, "rnn").record.step == 12


# ---------------------------------------------------------------------------- 4. numeric flags range-checked


def test_a_seed_beyond_64_bits_is_refused(saved_run, tmp_path, capsys):
    assert main(["generate", "--run", str(saved_run), "--model", "lstm", "--seed", str(2**70),
                 "--out", str(tmp_path / "x.mid")]) == 2
    assert "--seed must be a whole number" in capsys.readouterr().err


def _numeric_flags(command: str) -> list[str]:
    """Every option of `command` that takes a number: typed int or float, or a list of them (N,N)."""
    from main import build_parser

    sub = next(a for a in build_parser([command])._actions if a.dest == "command").choices[command]
    return [a.option_strings[-1] for a in sub._actions
            if a.option_strings and (a.type in (int, float) or a.metavar in ("N,N", "X,X"))]


# What each command needs besides the flag under test; a path that does not exist shows that nothing was read.
NEEDS = {"train": ["--out", "{tmp}/run"], "generate": ["--run", "pretrained", "--model", "lstm", "--out", "{tmp}/x.mid"],
         "influence": ["--run", "pretrained", "--model", "lstm"], "evaluate": ["--run", "pretrained", "--out", "{tmp}/r"],
         "metrics": ["{tmp}/none.mid"], "originality": ["--run", "pretrained", "{tmp}/none.mid"], "corpus": [],
         "gui": ["--generate"]}


@pytest.mark.parametrize("command", sorted(NEEDS))
def test_every_numeric_flag_of_every_command_refuses_what_is_out_of_range(command, tmp_path):
    """Not only the flags the issue names: each number any command takes, given nan, inf, 1e400, 2**70 or -1,
    is one `error:` line naming the flag, exit 2, before any work (nothing written into tmp_path)."""
    flags = _numeric_flags(command)
    assert flags or command == "gui"
    needs = [a.format(tmp=tmp_path) for a in NEEDS[command]]
    for flag in flags:
        for value in ("nan", "inf", "1e400", str(2**70), "-1"):
            code, err = run_main(command, *needs, flag, value)  # argparse's refusals too
            assert code == 2, (flag, value, err)
            assert err.startswith("error:") and err.count("\n") == 1 and flag in err, (flag, value, err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_a_screenshot_that_cannot_be_written_is_refused_before_the_app_starts(tmp_path, capsys, where):
    """gui --screenshot under a file ended, after the app had run, in a FileExistsError traceback."""
    blocker = tmp_path / "taken"
    blocker.write_text("mine")
    shot = blocker / "x.png" if where == "under a file" else tmp_path
    assert main(["gui", "--quit-after", "1", "--screenshot", str(shot)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --screenshot {shot}: ")
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-1"])
def test_quit_after_must_be_a_number_of_seconds(value, capsys):
    assert main(["gui", "--quit-after", value]) == 2
    assert "--quit-after must be a number from 0 to 604800" in capsys.readouterr().err


@pytest.mark.parametrize("screen", [(800, 600)])  # narrower than the controls' natural width (942 px), too
def test_a_window_size_larger_than_the_screen_is_cut_to_it_before_the_window_shows(tmp_path, cache, screen):
    from PySide6.QtGui import QImage

    from tests.gui.driving import offscreen_screen

    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": offscreen_screen(tmp_path, *screen),
           "MELODY_MEMORY_SETTINGS": str(tmp_path / "s.ini"), "MELODY_MEMORY_DATA": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "gui", "--size", "99999x99999", "--quit-after", "0.5",
                          "--screenshot", str(shot)], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == screen


# ------------------------------------------------------------------------------------ 5. the umask is kept


@pytest.mark.parametrize("umask, mode", [(0o077, 0o600), (0o022, 0o644)])
def test_written_files_respect_the_umask_and_keep_a_replaced_files_mode(saved_run, tmp_path, umask, mode):
    out = tmp_path / "x.mid"
    old = os.umask(umask)
    try:
        args = ["generate", "--run", str(saved_run), "--model", "lstm", "--bars", "1", "--out", str(out)]
        assert main(args) == 0
        assert stat.S_IMODE(out.stat().st_mode) == mode
        out.chmod(0o640)
        assert main(args) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the file replaced keeps its mode
    finally:
        os.umask(old)


def test_a_run_written_under_umask_077_is_private_to_its_owner(tmp_path, midi_folder, cache):
    """Checkpoints, configs, histories and run.json go through the same atomic writes as the exports."""
    out = tmp_path / "run"
    old = os.umask(0o077)
    try:
        _train_until(out, midi_folder, stop_at=2, steps=4)
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert {"run.json", "rnn/train_state.safetensors", "rnn/model.safetensors", "rnn/history.csv",
            "rnn/config.json"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


# ----------------------------------------------------------------------------- 6. messages say what happened


@pytest.mark.parametrize("make", ["fifo", "zero"])
def test_metrics_calls_a_fifo_or_a_device_not_a_regular_file(tmp_path, capsys, make):
    path = tmp_path / "tune.mid"
    if make == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    assert main(["metrics", str(path)]) == 2
    assert f"error: {path}: not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["metrics", "originality"])
def test_a_folder_of_fifos_and_devices_says_what_they_are(tmp_path, capsys, command):
    """In a folder too: a FIFO or a /dev/zero link named .mid was "no MIDI files (.mid, .midi) in this folder"."""
    os.mkfifo(tmp_path / "fifo.mid")
    (tmp_path / "zero.mid").symlink_to("/dev/zero")
    run = ["--run", "pretrained"] if command == "originality" else []
    assert main([command, *run, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'fifo.mid'}: not a regular file" in err and f"{tmp_path / 'zero.mid'}: not a regular file" in err
    assert "no MIDI files" not in err


@pytest.mark.parametrize("only", ["nan", ",", "corpus_bench,nan"])
def test_bench_only_with_no_such_section_is_refused_not_a_silent_empty_run(only, capsys):
    assert main(["bench", "--only", only]) == 2
    assert "error: --only: no section" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["fifo", "zero", "folder"])
@pytest.mark.parametrize("command", ["generate", "influence"])
def test_a_primer_that_is_a_fifo_a_device_or_a_folder_is_called_what_it_is(saved_run, tmp_path, capsys, make,
                                                                           command):
    path = tmp_path / "primer.mid"
    if make == "fifo":
        os.mkfifo(path)
    elif make == "zero":
        path = Path("/dev/zero")  # no .mid suffix: still a path, not a tune id
    else:
        path.mkdir()
    extra = ["--out", str(tmp_path / "x.mid")] if command == "generate" else []
    assert main([command, "--run", str(saved_run), "--model", "lstm", "--primer", str(path), *extra]) == 2
    what = "a folder, not a MIDI file" if make == "folder" else "not a regular file"
    assert f"error: {path}: {what}" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_evaluate_checks_its_report_folder_before_computing(saved_run, tmp_path, capsys, where):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = blocker if where == "file" else blocker / "report"
    assert main(["evaluate", "--run", str(saved_run), "--no-probe", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the report to {out}" in err and "loading" not in err, err
    assert blocker.read_text() == "not a folder"


def test_evaluate_checks_its_seed_runs_before_computing(saved_run, tmp_path, capsys):
    """--seeds naming no run was found only at recall by distance, after minutes of sampling."""
    missing = tmp_path / "no-such-run"
    assert main(["evaluate", "--run", str(saved_run), "--no-probe", "--seeds", str(missing),
                 "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert f"error: --seeds {missing}: no such run directory" in err and "loading" not in err, err


def test_evaluate_leaves_no_half_written_report_when_the_disk_fills(saved_run, tmp_path, capsys, monkeypatch):
    from engine.evaluation import report

    monkeypatch.setattr("engine.evaluation.evaluate.evaluate", lambda *a, **kw: {"timings": {}})
    written = []

    def full_disk(report_doc, folder):
        (Path(folder) / "report.json").write_text("{}")
        written.append(folder)
        raise UserError(f"cannot write {folder}/summary.md: No space left on device")

    monkeypatch.setattr(report, "write_report", full_disk)
    out = tmp_path / "report"
    assert main(["evaluate", "--run", str(saved_run), "--no-probe", "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert written and not out.exists() and list(tmp_path.iterdir()) == []  # the staging folder is gone too


def test_evaluate_refuses_a_disk_without_room_for_the_report_before_computing(saved_run, tmp_path, capsys,
                                                                               monkeypatch):
    """A full disk is found before the evaluation computes (it took minutes, then failed at the first file)."""
    import shutil as shutil_module

    def full(path):
        return shutil_module._ntuple_diskusage(1 << 30, (1 << 30) - 4096, 4096)

    monkeypatch.setattr("engine.evaluation.report_folder.shutil.disk_usage", full)
    monkeypatch.setattr("engine.evaluation.evaluate.evaluate", lambda *a, **kw: pytest.fail("it computed"))
    out = tmp_path / "report"
    assert main(["evaluate", "--run", str(saved_run), "--no-probe", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the report to {out}: the report needs about" in err and "4.0 kB free" in err, err
    assert list(tmp_path.iterdir()) == []
