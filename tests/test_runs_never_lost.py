"""Runs are never lost (docs/design.md section 9): locks, resume that trains what is unfinished and
never touches what is finished or bundled, non-finite steps never saved, folders checked first.

Each test reproduces a way the first versions lost work, through the command a user types."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import midi_factory as mf
import pytest
import torch
from in_process import run_main
from torch import nn

from engine.core.errors import UserError
from engine.models import ModelConfig, ModelSpec, SequenceModel, register, unregister
from engine.training.checkpoint import PRETRAINED_DIR, read_config, read_safetensors
from engine.training.run_plan import RUN_FILE, plan_new_run, plan_resume
from engine.training.train import train
from engine.training.train_config import TrainConfig
from main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tunes(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "tunes"
    folder.mkdir()
    for i in range(12):
        mf.simple_tune(folder / f"tune{i:02d}.mid", bars=8, seed=i)
    return folder


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def cli(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=kw.pop("cwd", ROOT), timeout=kw.pop("timeout", 300),
                          **kw)


# ------------------------------------------------------------------------------------- resume semantics


def test_resume_of_the_bundled_models_changes_nothing(tmp_path):
    copy = tmp_path / "pretrained-copy"
    shutil.copytree(PRETRAINED_DIR, copy)
    before = snapshot(copy)
    code, err = run_main("train", "--resume", "--out", copy)
    assert code == 0, err
    step = json.loads((PRETRAINED_DIR / "rnn" / "config.json").read_text())["step"]
    assert f"rnn: no training state (a bundled or exported model, step {step}): never overwritten" in err
    assert "nothing was changed" in err
    assert snapshot(copy) == before
    # Without --resume it is refused, and the command names the way out.
    code, err = run_main("train", "--out", copy, "--models", "rnn")
    assert code == 2 and "already holds a trained model" in err
    assert snapshot(copy) == before


def test_resume_trains_a_model_killed_before_its_first_checkpoint(tunes, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--source", tunes, "--preset", "tiny", "--steps", "8", "--batch-size", "4", "--device", "cpu",
            "--processes", "1", "--threads", "1", "--eval-every", "4"]
    assert main(["train", "--out", str(out), "--models", "rnn,gru", *map(str, args)]) == 0
    # The state a kill leaves when rnn had saved and gru had not yet: run.json still lists gru.
    shutil.rmtree(out / "gru")
    rnn_before = snapshot(out / "rnn")
    assert main(["train", "--resume", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "rnn: finished (8/8 steps): left as it is" in err and "gru: not started" in err
    assert read_config(out / "gru")["step"] == 8
    assert snapshot(out / "rnn") == rnn_before


def test_a_killed_run_resumes_every_model_bit_for_bit(tunes, tmp_path, monkeypatch):
    """kill -9 in the middle of a parallel run (two processes), then `train --resume --out RUN`: every
    model ends exactly where an uninterrupted run ends."""
    common = ["--source", tunes, "--models", "rnn,lstm,transformer", "--preset", "tiny", "--steps", "200",
              "--batch-size", "4", "--window", "64", "--device", "cpu", "--processes", "2", "--threads", "1",
              "--eval-every", "20"]
    env = {"MELODY_MEMORY_CACHE": str(tmp_path / "cache")}
    # the reference trains in this test's own process, serially (parallel and serial training agree bit for bit:
    # test_training.py); a subprocess would add only its start-up
    from main import main

    assert main(["train", "--out", str(tmp_path / "whole"), *map(str, common), "--processes", "1"]) == 0

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--out", str(out), *map(str, common)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env}, cwd=ROOT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "lstm" / "train_state.safetensors").is_file():
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its training processes, at once
    finally:
        proc.wait(timeout=30)
    steps = {k: read_config(out / k)["step"] for k in ("rnn", "lstm", "transformer") if (out / k / "config.json").exists()}
    assert steps and all(s < 200 for s in steps.values()), steps
    # the resume, like the reference, in this process (its two training processes are started as the killed run's)
    monkeypatch.setenv("MELODY_MEMORY_CACHE", env["MELODY_MEMORY_CACHE"])
    assert main(["train", "--resume", "--out", str(out)]) == 0
    for key in ("rnn", "lstm", "transformer"):
        a, _ = read_safetensors(tmp_path / "whole" / key / "train_state.safetensors")
        b, _ = read_safetensors(out / key / "train_state.safetensors")
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), f"{key} {name}"


def test_a_second_writer_is_refused_and_a_killed_writer_leaves_no_lock(tunes, tmp_path, monkeypatch):
    out = tmp_path / "run"
    env = {"MELODY_MEMORY_CACHE": str(tmp_path / "cache")}
    long_run = ["train", "--out", str(out), "--source", str(tunes), "--models", "rnn", "--preset", "tiny",
                "--steps", "1000000", "--batch-size", "2", "--device", "cpu", "--threads", "1", "--save-every", "50"]
    first = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *long_run], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, **env}, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "rnn" / "config.json").is_file():
            time.sleep(0.05)
        # the second writer is this process (a lock held by another process refuses it as it would any)
        monkeypatch.setenv("MELODY_MEMORY_CACHE", env["MELODY_MEMORY_CACHE"])
        code, err = run_main(*long_run)
        assert code == 2
        assert "is being written by another process" in err and f"pid {first.pid}" in err
        code, err = run_main("train", "--resume", "--out", out)
        assert code == 2 and "is being written by another process" in err
    finally:
        first.kill()
        first.wait(timeout=30)
    # kill -9 released the lock: the run can be resumed at once (here: stopped right away by a bad setting
    # check, which proves the lock was free before any work).
    plan = plan_resume(out, overrides={"threads": 1})
    try:
        assert plan.lock is not None and plan.lock.held and plan.models == ["rnn"]
    finally:
        plan.release()


# -------------------------------------------------------------------------------------------- folders


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("x"), "is a file, not a folder"),
    (lambda p: (p.mkdir(), (p / "lstm").write_text("x")), "is a file where the lstm model's folder goes"),
    (lambda p: None, None),
])
def test_output_folders_are_checked_before_anything_is_loaded(tmp_path, make, message):
    out = tmp_path / "out"
    make(out)
    before = snapshot(tmp_path)
    # A source that does not exist: had the folder been accepted, loading would fail next.
    code, err = run_main("train", "--out", out, "--models", "lstm", "--preset", "tiny", "--source",
                         tmp_path / "nowhere")
    assert code == 2
    if message:
        assert message in err
    else:
        assert "no melody" in err or "nowhere" in err
    assert snapshot(tmp_path) == before
    assert out.exists() == (message is not None)  # a folder made for a refused run is removed again


def test_a_folder_that_cannot_be_created_is_refused_with_the_reason(tmp_path):
    (tmp_path / "file").write_text("x")
    code, err = run_main("train", "--out", tmp_path / "file" / "run", "--preset", "tiny")
    assert code == 2 and "is a file" in err


# ---------------------------------------------------------------------------------- non-finite steps


@dataclass
class PoisonConfig(ModelConfig):
    poison_at: int = 5  # the training step whose loss becomes NaN


class PoisonLM(SequenceModel):
    """A bigram model whose loss turns NaN at a given training step (as a diverging run's does)."""

    def __init__(self, config: PoisonConfig):
        super().__init__()
        self.config = config
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)
        self.calls = 0

    def embed_tokens(self, tokens):
        return self.table(tokens)

    def forward_embedded(self, logits):
        if self.training:
            self.calls += 1
            if self.calls >= self.config.poison_at:
                logits = logits * float("nan")
        return logits

    def init_state(self, batch, device=None):
        return None

    def step(self, tokens, state):
        return self.table(tokens), state


@pytest.fixture
def poison_model():
    sizes = {p: {"poison_at": 7} for p in ("tiny", "small", "medium")}
    register(ModelSpec("poison", "poison", "#000000", PoisonConfig, PoisonLM, sizes))
    yield "poison"
    unregister("poison")


def test_a_step_whose_loss_is_not_finite_is_never_saved(tmp_path, poison_model, tunes):
    from engine.data.corpus import load_corpus

    out = tmp_path / "run"
    config = TrainConfig(preset="tiny", steps=20, batch_size=4, eval_every=5, save_every=5, device="cpu",
                         processes=1, threads=1)
    with plan_new_run(out, [poison_model], config) as plan:
        job = plan.job(load_corpus([tunes]))
        with pytest.raises(UserError, match=r"poison: the loss became nan at step 7 .* last checkpoint .* is kept"):
            for _ in train(job):
                pass
    assert read_config(out / "poison")["step"] == 5
    tensors, _ = read_safetensors(out / "poison" / "train_state.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def test_out_of_range_learning_rates_are_refused_before_training(tmp_path):
    for value in ("inf", "nan", "-1", "0", "2"):
        code, err = run_main("train", "--out", tmp_path / "run", "--lr", value, "--preset", "tiny")
        assert code == 2 and "--lr must be a number above 0 and at most 1" in err, err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------- tampered files


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["model"].update(num_layers=100000), "model.num_layers must be a whole number from 1 to 8"),
    (lambda d: d["model"].update(hidden_size=-3), "model.hidden_size must be a whole number"),
    (lambda d: d["model"].update(vocab_size=0), "model.vocab_size"),
    (lambda d: d["tokens"].update(min_pitch=100), "tokens.min_pitch (100) must be below tokens.max_pitch"),
    (lambda d: d["model"].update(cell="gru"), "must have cell 'lstm'"),
    (lambda d: d["model"].update(window="wide"), "model.window must be a whole number"),
    (lambda d: d["training"].update(steps=0), "training.steps must be a whole number from 1"),
    (lambda d: d["training"].update(batch_size=10**9), "training.batch_size"),
    (lambda d: d.update(step=-5), "step must be a whole number from 0"),
    (lambda d: d.update(model=[]), "not a Melody Memory model config"),
    (lambda d: d["model"].update(colour="red"), "unknown model config fields"),
])
def test_a_tampered_config_is_refused_with_the_file_and_the_field(tmp_path, capsys, edit, message):
    run_dir = tmp_path / "run"
    shutil.copytree(PRETRAINED_DIR / "lstm", run_dir / "lstm")
    path = run_dir / "lstm" / "config.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    for command in (["generate", "--run", run_dir, "--model", "lstm", "--out", tmp_path / "x.mid", "--bars", "1"],
                    ["train", "--resume", "--out", run_dir]):
        assert main(list(map(str, command))) == 2
        err = capsys.readouterr().err
        assert message in err and str(path) in err
    assert not (tmp_path / "x.mid").exists()


def test_a_tampered_run_file_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RUN_FILE).write_text(json.dumps({"format": "melody-memory-run/1", "models": ["rnn", "cnn"],
                                                "training": {}}))
    code, err = run_main("train", "--resume", "--out", run_dir)
    assert code == 2 and "models must be a list of distinct model keys" in err


# ------------------------------------------------------------------------- worker processes and signals


def test_training_processes_that_die_end_the_run_with_a_message_not_a_hang(tunes, tmp_path):
    import multiprocessing
    import threading

    from engine.data.corpus import load_corpus

    config = TrainConfig(preset="tiny", steps=100000, batch_size=2, device="cpu", processes=2, threads=1,
                         eval_every=1000, save_every=20)
    stepped = threading.Event()
    started = time.monotonic()
    with (plan_new_run(tmp_path / "run", ["rnn", "lstm", "gru"], config) as plan,
          pytest.raises(UserError, match=r"ended unexpectedly \(exit code -9\).*train --resume --out")):
        for event in train(plan.job(load_corpus([tunes]))):
            if event.kind == "step" and event.step >= 25 and not stepped.is_set():
                stepped.set()
                for child in multiprocessing.active_children():  # both training processes, at once
                    os.kill(child.pid, signal.SIGKILL)
    assert time.monotonic() - started < 120
    assert not multiprocessing.active_children()
    assert plan_resume(tmp_path / "run", lock=False).models == ["rnn", "lstm", "gru"]  # nothing lost


def test_a_killed_parent_leaves_workers_that_save_nothing_more(tunes, tmp_path):
    out = tmp_path / "run"
    env = {"MELODY_MEMORY_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--out", str(out), "--source", str(tunes),
                             "--models", "rnn,gru", "--preset", "tiny", "--steps", "1000000", "--batch-size", "2",
                             "--device", "cpu", "--processes", "2", "--save-every", "10", "--eval-every", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env}, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all((out / k / "config.json").is_file() for k in ("rnn", "gru")):
        time.sleep(0.05)
    # the training processes (and the fork server that started them); where /proc lists no children (macOS, a
    # kernel without CONFIG_PROC_CHILDREN), a fixed wait below
    lists_children = Path(f"/proc/self/task/{os.getpid()}/children").is_file()
    workers = _descendants(proc.pid) if lists_children else None
    assert workers is None or workers
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers are orphaned mid-training
    proc.wait(timeout=30)
    # A save a worker had already begun when the parent died completes (it is atomic: temp file, then rename);
    # what must not happen is a new save after that: an orphan notices within a step and ends without one.
    settle = time.monotonic() + 10
    while time.monotonic() < settle and any(p.name.endswith(".tmp") for p in out.rglob("*")):
        time.sleep(0.05)
    time.sleep(0.5)
    killed_at = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    if workers is None:
        time.sleep(4)  # an orphan notices within a step
    else:
        gone = time.monotonic() + 30
        while time.monotonic() < gone and any(map(_alive, workers)):
            time.sleep(0.05)
        assert not any(map(_alive, workers)), "orphaned training processes went on running"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == killed_at
    # and the run is free to resume at once (the lock died with the parent)
    plan = plan_resume(out, overrides={"steps": None})
    plan.release()


def _descendants(pid: int) -> list[int]:
    """Every process below pid (Linux: /proc/PID/task/TID/children)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = [int(c) for tid in os.listdir(f"/proc/{parent}/task")
                    for c in Path(f"/proc/{parent}/task/{tid}/children").read_text().split()]
        except OSError:  # it has ended meanwhile
            kids = []
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that never reaps it (a container's init may not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_sigterm_stops_training_with_checkpoints_like_a_first_ctrl_c(tunes, tmp_path):
    from engine.training.checkpoint import read_config

    out = tmp_path / "run"
    env = {"MELODY_MEMORY_CACHE": str(tmp_path / "cache")}
    # stderr is a terminal, as for a person at one: the progress bar redraws a few times a second (into a pipe
    # it writes a line every 5 s, which the wait below would sit out)
    terminal, child_end = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--out", str(out), "--source", str(tunes),
                             "--models", "rnn,gru", "--preset", "tiny", "--steps", "1000000", "--batch-size", "2",
                             "--device", "cpu", "--save-every", "100000", "--eval-every", "100000"],
                            stdout=subprocess.DEVNULL, stderr=child_end, env={**os.environ, **env},
                            cwd=ROOT, start_new_session=True)
    os.close(child_end)
    err_parts: list[str] = []

    def read_terminal():
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: every process holding the terminal has ended
                return
            if not chunk:
                return
            err_parts.append(chunk.decode(errors="replace"))

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    # Training processes started and stepping: the progress line has counted 100 steps of the two models
    # (a fixed wait lost the race on a loaded machine, where starting the processes took over 6 s).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and max(map(int, re.findall(r"(\d+)/2000000", "".join(err_parts))), default=0) < 100:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # `kill` to the whole group, as a logout does
    proc.wait(timeout=120)
    reader.join(timeout=30)
    assert not reader.is_alive(), "the terminal stayed open after the run ended"
    os.close(terminal)
    err = "".join(err_parts)
    assert proc.returncode == 130, err
    assert "continue with --resume" in err
    assert all(read_config(out / k)["step"] > 0 for k in ("rnn", "gru"))


# ------------------------------------------------------------------------------ tampered training state


def _stopped_run(tunes, tmp_path) -> Path:
    from engine.data.corpus import load_corpus

    config = TrainConfig(preset="tiny", steps=40, batch_size=2, device="cpu", processes=1, threads=1, save_every=4)
    stop = threading.Event()
    out = tmp_path / "run"
    with plan_new_run(out, ["gru"], config, sources=[str(tunes)]) as plan:
        for event in train(plan.job(load_corpus([tunes])), stop):
            if event.kind == "checkpoint" and event.step == 8:
                stop.set()
    return out


@pytest.mark.parametrize("tamper, message", [
    (lambda t: t.update({"opt.0.exp_avg": torch.zeros(3, 3)}), "exp_avg has shape (3, 3)"),
    (lambda t: t.update({"opt.0.step": torch.tensor(-1.0)}), "step count must be a finite number of at least 1"),
    (lambda t: [t.pop(k) for k in [k for k in t if k.startswith("opt.")]], "holds no optimizer state"),
    (lambda t: t.update({"opt.1.exp_avg_sq": -torch.ones_like(t["opt.1.exp_avg_sq"])}), "negative values"),
])
def test_a_tampered_optimizer_state_is_refused_by_resume(tunes, tmp_path, capsys, tamper, message):
    from safetensors.torch import load_file, save_file

    out = _stopped_run(tunes, tmp_path)
    path = out / "gru" / "train_state.safetensors"
    _, meta = read_safetensors(path)
    tensors = load_file(path)
    tamper(tensors)
    save_file(tensors, path, metadata=meta)
    assert main(["train", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err


def test_a_run_file_edited_to_another_learning_rate_is_refused(tunes, tmp_path, capsys):
    out = _stopped_run(tunes, tmp_path)
    doc = json.loads((out / RUN_FILE).read_text())
    doc["training"]["lr"] = 0.5
    (out / RUN_FILE).write_text(json.dumps(doc))
    assert main(["train", "--resume", "--out", str(out)]) == 2
    assert "was trained with lr 0.006 (now 0.5)" in capsys.readouterr().err


def test_a_relative_source_resumes_from_another_folder(tunes, tmp_path, monkeypatch, capsys):
    """`train --source tunes` typed in the tunes' parent folder, stopped (Ctrl-C at its first checkpoint), resumes
    from another folder: the run recorded the source as an absolute path, and the resume reads it and trains on."""
    from engine.training.checkpoint import read_config

    monkeypatch.chdir(tunes.parent)
    out = tmp_path / "run"
    common = ["--preset", "tiny", "--steps", "60", "--batch-size", "2", "--device", "cpu", "--processes", "1",
              "--models", "gru", "--save-every", "5", "--eval-every", "1000"]
    saved = threading.Event()

    def ctrl_c_at_the_first_checkpoint():  # (a fixed delay raced the machine: a fast one finished first)
        deadline = time.monotonic() + 60
        while not (out / "gru" / "config.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.01)
        saved.set()
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=ctrl_c_at_the_first_checkpoint, daemon=True)
    watcher.start()
    assert main(["train", "--out", str(out), "--source", tunes.name, *common]) == 130
    watcher.join()
    stopped = read_config(out / "gru")["step"]
    assert saved.is_set() and 0 < stopped < 60
    monkeypatch.chdir(tmp_path / "..")
    assert main(["train", "--resume", "--out", str(out)]) == 0, capsys.readouterr().err
    assert json.loads((out / RUN_FILE).read_text())["sources"] == [str(tunes)]
    assert read_config(out / "gru")["step"] == 60


def test_a_device_that_is_missing_is_refused_before_anything_is_written(tmp_path, capsys):
    import torch as _torch

    if _torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert main(["train", "--out", str(tmp_path / "run"), "--device", "cuda", "--preset", "tiny"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
