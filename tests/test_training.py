"""The training engine: shared batches, interleaved models, stop within a step, exact resume, the CLI."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.core.errors import UserError
from engine.data.batches import CropSampler, validation_windows
from engine.music.tokens import FIRST_PITCH_TOKEN, PAD, TokenConfig
from engine.training.run_plan import TrainJob
from engine.training.train import train
from engine.training.train_config import TrainConfig, lr_at

TOKENS = TokenConfig()


def synthetic_tunes(n: int, seed: int = 0) -> list[np.ndarray]:
    """Tunes that repeat a one-bar motif (so there is something to learn), of varied lengths."""
    rng = np.random.default_rng(seed)
    tunes = []
    for _ in range(n):
        motif = rng.integers(FIRST_PITCH_TOKEN + 10, FIRST_PITCH_TOKEN + 30, size=16)
        motif[rng.random(16) < 0.5] = 1  # HOLD
        tunes.append(np.tile(motif, int(rng.integers(2, 12))))
    return tunes


def tiny_job(out, models=("rnn", "transformer"), steps=12, resume=False, **overrides) -> TrainJob:
    """A tiny job trained in this process (processes=1, one thread) unless overrides say otherwise."""
    settings = dict(preset="tiny", steps=steps, batch_size=4, eval_every=4, save_every=4, log_every=2,
                    device="cpu", seed=7, processes=1, threads=1)
    cfg = TrainConfig(**{**settings, **overrides})
    return TrainJob(list(models), synthetic_tunes(30), synthetic_tunes(4, seed=1), TOKENS, "corpus-hash", out, cfg,
                    resume=resume)


# ------------------------------------------------------------------------------------------------ batches


def test_batches_are_a_deterministic_stream_of_in_range_crops():
    tunes = [*synthetic_tunes(20), np.array([5, 1, 2])]  # one tune shorter than the window
    sampler = CropSampler(tunes, window=64, token_config=TOKENS, transpose=5, seed=3)
    a = sampler.batch(step=10, batch_size=16)
    assert a.shape == (16, 65)
    assert np.array_equal(a, sampler.batch(step=10, batch_size=16))
    assert not np.array_equal(a, sampler.batch(step=11, batch_size=16))
    assert a.min() >= PAD and a.max() <= TOKENS.vocab_size - 1
    # Ranks of a data-parallel job take disjoint rows that together make the global batch.
    parts = [sampler.batch(10, 16, rank=r, world=4) for r in range(4)]
    assert sorted(map(tuple, np.concatenate(parts))) == sorted(map(tuple, a))


def test_short_tunes_are_padded_and_transposition_keeps_pitches_in_range():
    edge = np.array([FIRST_PITCH_TOKEN, 1, TOKENS.vocab_size - 1, 1, 2, FIRST_PITCH_TOKEN + 3])  # lowest+highest
    sampler = CropSampler([edge], window=16, token_config=TOKENS, transpose=5, seed=0)
    for step in range(20):
        crop = sampler.batch(step, 2)
        assert np.array_equal(crop[:, :6], np.stack([edge, edge]))  # no room to move: never transposed
        assert (crop[:, 6:] == PAD).all()
    middle = np.full(30, FIRST_PITCH_TOKEN + 20)  # one pitch: the crop start does not matter
    shifts = {int(CropSampler([middle], 16, TOKENS, 5, seed=s).batch(0, 1)[0, 0]) - middle[0] for s in range(60)}
    assert shifts == set(range(-5, 6))


def test_validation_windows_predict_every_token_once():
    tunes = [np.arange(1, 150) % 50 + 1, np.array([4, 5, 6])]
    windows = validation_windows(tunes, window=64)
    targets = (windows[:, 1:] != PAD).sum()
    assert targets == (149 - 1) + (3 - 1)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=1000, lr=1e-3, warmup_steps=100, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(550, cfg) == pytest.approx(0.55e-3, rel=1e-3)
    assert lr_at(999, cfg) == pytest.approx(1e-4, rel=1e-2)


# ---------------------------------------------------------------------------------------------- training


def test_models_train_interleaved_on_the_same_steps_and_get_better(tmp_path):
    events = list(train(tiny_job(tmp_path / "run", models=("rnn", "lstm", "transformer"), steps=40)))
    steps = [(e.model, e.step) for e in events if e.kind == "step"]
    assert steps[:6] == [("rnn", 1), ("lstm", 1), ("transformer", 1), ("rnn", 2), ("lstm", 2), ("transformer", 2)]
    evals = [e for e in events if e.kind == "eval"]
    assert {e.model for e in evals} == {"rnn", "lstm", "transformer"}
    assert all(e.valid_bpt is not None and np.isfinite(e.valid_bpt) for e in evals)
    done = events[-1]
    assert done.kind == "done" and done.step == 40
    for key in ("rnn", "lstm", "transformer"):
        first = next(e.valid_bpt for e in evals if e.model == key)
        assert done.summary[key]["valid_bpt"] < first < np.log2(TOKENS.vocab_size) + 1
        assert (tmp_path / "run" / key / "model.safetensors").is_file()
    assert any(e.kind == "checkpoint" for e in events)
    assert all(e.tokens_per_s and e.tokens_per_s > 0 for e in events if e.kind == "step")


def test_stop_takes_effect_within_one_step_and_saves(tmp_path):
    stop = threading.Event()
    seen = []
    for event in train(tiny_job(tmp_path / "run", steps=50), stop):
        seen.append(event)
        if event.kind == "step" and event.model == "rnn" and event.step == 5:
            stop.set()
    steps_after = [e for e in seen if e.kind == "step" and seen.index(e) > next(
        i for i, x in enumerate(seen) if x.kind == "step" and x.model == "rnn" and x.step == 5)]
    assert steps_after == []  # not even the transformer's step 5 ran
    assert seen[-1].kind == "stopped"
    from engine.training.checkpoint import read_config

    assert read_config(tmp_path / "run" / "rnn")["step"] == 5
    assert read_config(tmp_path / "run" / "transformer")["step"] == 4


def test_resume_ends_bit_for_bit_where_an_uninterrupted_run_ends(tmp_path):
    models = ("rnn", "lstm", "gru", "attention", "transformer")
    list(train(tiny_job(tmp_path / "whole", models=models, steps=12)))
    stop = threading.Event()
    for event in train(tiny_job(tmp_path / "split", models=models, steps=12), stop):
        if event.kind == "step" and event.model == "transformer" and event.step == 6:
            stop.set()
    list(train(tiny_job(tmp_path / "split", models=models, steps=12, resume=True)))
    for key in models:
        for name in ("model.safetensors", "train_state.safetensors"):
            whole = load_file(tmp_path / "whole" / key / name)
            split = load_file(tmp_path / "split" / key / name)
            assert whole.keys() == split.keys()
            for tensor_name in whole:
                assert torch.equal(whole[tensor_name], split[tensor_name]), f"{key} {name} {tensor_name}"


def test_training_into_an_existing_run_without_resume_is_refused(tmp_path):
    list(train(tiny_job(tmp_path / "run", models=("rnn",), steps=2)))
    with pytest.raises(UserError, match="already holds a trained model"):
        list(train(tiny_job(tmp_path / "run", models=("rnn",), steps=2)))


def test_resume_with_another_seed_is_refused(tmp_path):
    list(train(tiny_job(tmp_path / "run", models=("rnn",), steps=2)))
    job = tiny_job(tmp_path / "run", models=("rnn",), steps=4, resume=True)
    job.config.seed = 8
    with pytest.raises(UserError, match="seed 7"):
        list(train(job))


# ------------------------------------------------------------------------------------------------- CLI


def test_train_command_runs_end_to_end_on_a_folder_of_midi_files(tmp_path, monkeypatch, capsys):
    from main import main
    from tests import midi_factory

    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "tunes"
    folder.mkdir()
    for i in range(6):
        midi_factory.simple_tune(folder / f"tune{i}.mid", bars=8, seed=i)
    out = tmp_path / "run"
    argv = ["train", "--models", "rnn,transformer", "--preset", "tiny", "--steps", "6", "--source", str(folder),
            "--out", str(out), "--device", "cpu", "--batch-size", "4", "--eval-every", "3", "--threads", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "valid bits/token" in err and "transformer" in err
    assert re.search(r" eta \d+s", err) and "step budget" not in err  # no early stopping: the budget is the end
    from engine.training.checkpoint import list_run_models, load_model

    assert list_run_models(out) == ["rnn", "transformer"]
    assert load_model(out, "rnn").config["step"] == 6
    # A finished run is never extended or overwritten: a resume says so and changes nothing.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["train", "--out", str(out), "--resume", "--source", str(folder)]) == 0
    assert "finished (6/6 steps): left as it is" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--steps", "8", "--source", str(folder)]) == 2
    assert "a resume keeps the run's settings" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["train", "--models", "rnn,cnn", "--out", str(tmp_path / "x"), "--source", str(folder)]) == 2
    assert "unknown model(s) cnn" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ctrl_c_stops_training_with_a_checkpoint_that_resumes(tmp_path, monkeypatch, capsys):
    import os
    import signal

    from engine.training.checkpoint import read_config
    from main import main
    from tests import midi_factory

    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "tunes"
    folder.mkdir()
    for i in range(4):
        midi_factory.simple_tune(folder / f"tune{i}.mid", bars=8, seed=i)
    out = tmp_path / "run"
    from engine.training import train as train_module

    training = train_module.train

    def ctrl_c_after_a_step(*args, **kwargs):  # the person presses Ctrl-C once training has stepped
        pressed = False
        for event in training(*args, **kwargs):
            yield event
            if event.kind == "step" and not pressed:
                pressed = True
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(train_module, "train", ctrl_c_after_a_step)
    code = main(["train", "--models", "rnn", "--preset", "tiny", "--steps", "100000", "--source", str(folder),
                 "--out", str(out), "--device", "cpu", "--batch-size", "2", "--threads", "1"])
    assert code == 130
    assert f"continue with --resume --out {out}" in capsys.readouterr().err
    stopped_at = read_config(out / "rnn")["step"]
    assert 0 < stopped_at < 100000
    # The form the message suggests continues the run (its source and settings come from run.json).
    assert main(["train", "--resume", "--out", str(out)]) == 130
    assert read_config(out / "rnn")["step"] > stopped_at


# ---------------------------------------------------------------------------------- parallel processes


def test_parallel_processes_end_with_the_same_weights_as_one_process(tmp_path):
    models = ("rnn", "lstm", "gru", "attention", "transformer")
    serial = list(train(tiny_job(tmp_path / "serial", models=models, steps=10)))
    parallel = list(train(tiny_job(tmp_path / "parallel", models=models, steps=10, processes=2)))
    assert parallel[-1].kind == "done" and set(parallel[-1].summary) == set(models)
    # Events of both processes arrive merged: every model's every step, evaluation and checkpoint.
    assert sorted((e.model, e.step) for e in parallel if e.kind == "step") == sorted(
        (e.model, e.step) for e in serial if e.kind == "step")
    assert {e.model for e in parallel if e.kind == "checkpoint"} == set(models)
    for key in models:
        a = load_file(tmp_path / "serial" / key / "train_state.safetensors")
        b = load_file(tmp_path / "parallel" / key / "train_state.safetensors")
        for name in a:
            assert torch.equal(a[name], b[name]), f"{key} {name}"


def test_models_are_split_between_processes_to_balance_the_load():
    from engine.training.train_workers import assign

    costs = {"rnn": 3.0, "lstm": 2.0, "gru": 2.0, "attention": 2.5, "transformer": 2.6}
    groups = assign(list(costs), costs, 2)
    loads = sorted(sum(costs[k] for k in g) for g in groups)
    assert loads == [5.6, 6.5] and sorted(k for g in groups for k in g) == sorted(costs)
    assert assign(["rnn", "gru"], {"rnn": 1.0, "gru": 1.0}, 4) == [["rnn"], ["gru"]]


def test_stop_reaches_every_process_and_each_checkpoints(tmp_path):
    stop = threading.Event()
    events = []
    reached = set()
    for event in train(tiny_job(tmp_path / "run", models=("rnn", "lstm", "transformer"), steps=100000,
                                processes=2), stop):
        events.append(event)
        if event.kind == "step" and event.step >= 5:
            reached.add(event.model)
            if len(reached) == 3:
                stop.set()
    assert events[-1].kind == "stopped"
    from engine.training.checkpoint import read_config

    for key in ("rnn", "lstm", "transformer"):
        assert 0 < read_config(tmp_path / "run" / key)["step"] < 100000


# --------------------------------------------------------------------------------------------- bf16


def test_bf16_is_off_where_the_cpu_lacks_it(monkeypatch):
    from engine.core.device import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(UserError, match="no native bfloat16"):
        resolve_precision("bf16", cpu)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("fp32", cpu) == "fp32"


# ------------------------------------------------------------------------------------------- early stopping


def test_early_stopping_replays_from_the_validation_history():
    from engine.training.early_stop import EarlyStop

    history = [{"step": 10 * i, "valid_bpt": v} for i, v in enumerate((3.0, 2.5, 2.499, None, 2.6, 2.4995))]
    state = EarlyStop.replay(3, 0.01, history)  # one real improvement, then flat
    assert (state.best, state.since_best) == (2.5, 3)
    assert EarlyStop.replay(None, 0.01, history).update(60, 9.9) is False  # off: never stops


def test_a_plateau_lowers_the_learning_rate_before_a_later_one_stops_the_model():
    from engine.training.early_stop import EarlyStop

    state = EarlyStop(2, 0.01, lr_drop=0.3, lr_drops=2)
    seen = [(state.update(i, v), state.drops) for i, v in enumerate((3.0, 3.0, 3.0, 2.9, 2.95, 2.95, 2.95, 2.95))]
    # flat twice: a drop (not a stop); an improvement; flat twice: the second drop; flat twice: stop
    assert seen == [(False, 0), (False, 0), (False, 1), (False, 1), (False, 1), (False, 2), (False, 2), (True, 2)]
    assert state.lr_scale == pytest.approx(0.09)
    replayed = EarlyStop.replay(2, 0.01, [{"step": i, "valid_bpt": v} for i, v in
                                         enumerate((3.0, 3.0, 3.0, 2.9, 2.95, 2.95))], 0.3, 2)
    assert (replayed.drops, replayed.since_best, replayed.best) == (2, 0, 2.9)  # a resume continues from here


def test_the_last_plateau_stops_a_model_only_once_its_last_quarter_is_flat():
    """Validations every 100 steps; patience 2, one drop. The drop comes at step 800 and the plateau after it
    at 1,100, when validation at step 800 (nearest 75% of 1,100) is 0.06 above: on at the last rate. The next
    validation, 1,200, is 0 below its quarter's (step 900): the stop. The report's late_gain_bits is this
    same function (engine/evaluation/evaluate.training_curve)."""
    from engine.training.early_stop import EarlyStop, late_gain

    curve = [3.0, 2.5, 2.2, 2.1, 2.05, 2.03, 2.03, 2.03, 1.97, 1.97, 1.97, 1.97, 1.97]
    steps = [100 * (i + 1) for i in range(len(curve))]
    flat = EarlyStop(2, 0.01, lr_drop=0.3, lr_drops=1, flat_gain=0.01)
    assert next(s for s, v in zip(steps, curve) if flat.update(s, v)) == 1200
    without = EarlyStop(2, 0.01, lr_drop=0.3, lr_drops=1)
    assert next(s for s, v in zip(steps, curve) if without.update(s, v)) == 1100
    assert late_gain(steps[:11], curve[:11]) == (pytest.approx(0.06), 800)  # why 1,100 did not stop it
    assert late_gain(steps[:12], curve[:12]) == (pytest.approx(0.0), 900)
    assert late_gain(steps[:3], curve[:3]) is None  # too few validations: no curve
    replayed = EarlyStop.replay(2, 0.01, [{"step": s, "valid_bpt": v} for s, v in zip(steps[:11], curve[:11])],
                                0.3, 1, 0.01)
    assert replayed.update(1200, 1.97) is True  # a resumed run stops where the uninterrupted one did


def test_a_model_on_a_plateau_trains_on_at_the_lower_rate_and_then_stops(tmp_path):
    """patience 2, min_delta 1 bit (nothing after the first validation counts as better), one drop to half:
    validations at 3, 6, 9 ... ; the plateau at step 9 halves the rate, the one at step 15 stops the model."""
    from engine.training.checkpoint import read_history, read_record
    from engine.training.train_config import TrainConfig, lr_at

    list(train(tiny_job(tmp_path / "run", steps=40, patience=2, min_delta=1.0, lr_drop=0.5, lr_drops=1,
                        min_lr_ratio=1.0, eval_every=3, save_every=3, log_every=3)))
    record = read_record(tmp_path / "run" / "rnn")
    assert record.stopped_early and record.step == 15
    rows = {r["step"]: r["lr"] for r in read_history(tmp_path / "run" / "rnn")}
    peak = lr_at(20, TrainConfig(steps=40, min_lr_ratio=1.0))  # past the warm-up: the held peak
    assert rows[9] == pytest.approx(peak) and rows[12] == pytest.approx(peak / 2) and rows[15] == pytest.approx(peak / 2)


def test_a_model_whose_validation_stops_improving_stops_early_and_is_finished(tmp_path):
    """min_delta 1 bit: no validation after the first is an improvement, so with patience 2 the models
    stop at their third validation (step 12 of 40), are recorded as finished, and a resume leaves them."""
    from engine.training.checkpoint import read_history, read_record
    from engine.training.run_plan import plan_resume

    events = list(train(tiny_job(tmp_path / "run", steps=40, patience=2, min_delta=1.0)))
    assert events[-1].kind == "done"
    for key in ("rnn", "transformer"):
        record = read_record(tmp_path / "run" / key)
        assert record.stopped_early and record.finished and record.step == 12
        assert [r["valid_bpt"] is not None for r in read_history(tmp_path / "run" / key)].count(True) == 3
    with plan_resume(tmp_path / "run") as plan:
        assert plan.nothing_to_do and any("stopped early at step 12" in note for note in plan.notes)


def test_the_converged_recipe_is_one_flag_and_given_flags_override_it(tmp_path, midi_folder, capsys):
    """`train --recipe converged` starts from the memory measures' recipe (early stopping on); --steps still wins.
    Its progress line says its estimate runs to the step budget: early stopping may end a model long before
    it, and the estimate cannot know when."""
    import json

    from main import main

    out = tmp_path / "run"
    code = main(["train", "--recipe", "converged", "--preset", "tiny", "--steps", "6", "--eval-every", "3",
                 "--models", "rnn", "--source", str(midi_folder), "--out", str(out)])
    assert code == 0
    training = json.loads((out / "run.json").read_text())["training"]
    assert (training["patience"], training["min_delta"], training["steps"]) == (4, 0.002, 6)
    assert (training["min_lr_ratio"], training["lr_drop"], training["lr_drops"]) == (1.0, 0.3, 3)
    assert training["flat_gain"] == 0.01
    assert re.search(r"eta to the step budget \d+s", capsys.readouterr().err)
    # validation decides when such a run's models stop: a resume keeps its cadence
    assert main(["train", "--resume", "--out", str(out), "--eval-every", "2"]) == 2
    assert "with early stopping, validation decides when a model stops" in capsys.readouterr().err


def test_a_resumed_run_stops_where_an_uninterrupted_one_does_when_the_last_quarter_defers_the_stop(tmp_path):
    """Without flat_gain the plateau after the drop stops the model (here at step 30); flat_gain 0.001 defers the
    stop past it, to where the last quarter has flattened. A run stopped after that plateau and resumed replays
    the deferral from its history: same stop, same weights."""
    from engine.training.checkpoint import read_record

    settings = dict(models=("rnn",), steps=120, eval_every=3, save_every=3, log_every=3, patience=2, min_delta=0.001,
                    lr_drop=0.5, lr_drops=1, min_lr_ratio=1.0)
    list(train(tiny_job(tmp_path / "plain", **settings)))
    list(train(tiny_job(tmp_path / "whole", **settings, flat_gain=0.001)))
    plain, whole = (read_record(tmp_path / run / "rnn") for run in ("plain", "whole"))
    assert plain.stopped_early and whole.stopped_early and plain.step + 3 < whole.step < 120
    stop = threading.Event()
    for event in train(tiny_job(tmp_path / "split", **settings, flat_gain=0.001), stop):
        if event.kind == "step" and event.step == plain.step + 3:  # past the plateau that no longer stops it
            stop.set()
    assert read_record(tmp_path / "split" / "rnn").step == plain.step + 3
    list(train(tiny_job(tmp_path / "split", **settings, flat_gain=0.001, resume=True)))
    split = read_record(tmp_path / "split" / "rnn")
    assert split.stopped_early and split.step == whole.step
    a, b = load_file(tmp_path / "whole" / "rnn" / "model.safetensors"), load_file(tmp_path / "split" / "rnn" / "model.safetensors")
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_model_whose_plateau_comes_at_its_last_step_ran_its_budget_not_stopped_early(tmp_path):
    """patience 1, nothing counts as better: the validation at step 8, the budget's last, is a plateau. The model
    ran its steps; the record says so rather than that early stopping ended it."""
    from engine.training.checkpoint import read_record

    list(train(tiny_job(tmp_path / "run", models=("rnn",), steps=8, patience=1, min_delta=1.0)))
    record = read_record(tmp_path / "run" / "rnn")
    assert record.step == 8 and record.finished and not record.stopped_early
