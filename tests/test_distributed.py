"""Data-parallel training under torchrun: two CPU ranks (gloo) with batch B each train to the
same weights as one ordinary process with batch 2B, through the real `main.py train` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import midi_factory as mf
import numpy as np
import pytest
from safetensors.numpy import load_file

from engine.data.batches import CropSampler, validation_windows
from engine.music.tokens import PAD, TokenConfig

REPO = Path(__file__).resolve().parent.parent
MODELS = ("lstm", "transformer")
STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MELODY_MEMORY_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(REPO))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _train_args(corpus: Path, out: Path, batch: int) -> list[str]:
    return ["train", "--source", str(corpus), "--models", ",".join(MODELS), "--preset", "tiny",
            "--steps", str(STEPS), "--batch-size", str(batch), "--device", "cpu", "--threads", "1",
            "--workers", "1", "--out", str(out)]


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "tunes"
    folder.mkdir()
    # Tunes of 1 to 6 bars against the tiny window of 64 steps: many crops are PAD-padded, so each
    # rank's half of a batch holds a different number of targets (the case naive averaging gets wrong).
    for i in range(12):
        mf.simple_tune(folder / f"tune{i:02d}.mid", bars=1 + i % 6, seed=i)
    return folder


def _assert_same_weights(run_a: Path, run_b: Path) -> None:
    for key in MODELS:
        a = load_file(str(run_a / key / "model.safetensors"))
        b = load_file(str(run_b / key / "model.safetensors"))
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-6, err_msg=f"{key}: {name}")


def test_two_ranks_with_batch_b_reach_the_weights_of_one_process_with_batch_2b(tmp_path, corpus, monkeypatch,
                                                                               capsys):
    from main import main

    env = _env(tmp_path)
    monkeypatch.setenv("MELODY_MEMORY_CACHE", env["MELODY_MEMORY_CACHE"])
    assert main(_train_args(corpus, tmp_path / "one", 8)) == 0  # the plain command, in this process
    ranks = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
         "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
         str(REPO / "main.py"), *_train_args(corpus, tmp_path / "two", 4)],
        env=env, capture_output=True, text=True, timeout=120)
    assert ranks.returncode == 0, ranks.stderr
    assert "data-parallel: 2 ranks (gloo), batch 4 per rank, global batch 8" in ranks.stderr
    assert ranks.stderr.count("train bits/token") == 1, "only rank 0 prints the final table"

    _assert_same_weights(tmp_path / "one", tmp_path / "two")
    for key in MODELS:
        history = (tmp_path / "two" / key / "history.csv").read_text().splitlines()
        assert history[-1].startswith(f"{STEPS},"), history

    # --resume: a run stopped in one process continues on two ranks as long as the global batch stays
    # 8 rows, and ends where the uninterrupted run ends.
    from engine.data.corpus import load_corpus
    from engine.training.run_plan import plan_new_run
    from engine.training.train import train
    from engine.training.train_config import TrainConfig

    config = TrainConfig(preset="tiny", steps=STEPS, batch_size=8, device="cpu", threads=1, processes=1)
    stop = threading.Event()
    with plan_new_run(tmp_path / "half", list(MODELS), config, sources=[str(corpus)]) as plan:
        for event in train(plan.job(load_corpus([corpus])), stop):
            if event.kind == "step" and event.model == MODELS[-1] and event.step == STEPS - 1:
                stop.set()
    resumed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
         "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(REPO / "main.py"),
         "train", "--resume", "--out", str(tmp_path / "half"), "--batch-size", "4", "--threads", "1"],
        env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_weights(tmp_path / "one", tmp_path / "half")
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(tmp_path / "half"), "--batch-size", "8"]) == 0
    assert "nothing to resume" in capsys.readouterr().err


def test_sampler_keeps_one_compact_copy_of_the_tokens():
    cfg = TokenConfig()
    rng = np.random.default_rng(0)
    tunes = [rng.integers(3, cfg.vocab_size, size=n).astype(np.int64) for n in rng.integers(2, 300, size=500)]
    sampler = CropSampler(tunes, window=64, token_config=cfg)
    n_tokens = sum(len(t) for t in tunes)
    # one byte per token (the vocabulary fits uint8), plus the PAD tail and two int64s per tune
    assert sampler.flat.nbytes == n_tokens + 65
    assert not any(np.shares_memory(sampler.flat, t) for t in tunes[:5])
    batch = sampler.batch(7, 16)
    assert batch.dtype == np.int64 and batch.shape == (16, 65)
    assert ((batch == PAD) | ((batch >= 3) & (batch < cfg.vocab_size))).all()


def test_validation_windows_keep_only_the_chosen_subset():
    tunes = [np.arange(3, 3 + n) for n in (10, 130, 65)]
    every = validation_windows(tunes, window=64)
    some = validation_windows(tunes, window=64, max_windows=2)
    assert len(every) == 5 and len(some) == 2
    np.testing.assert_array_equal(some, every[[0, 4]])
