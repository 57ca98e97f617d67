"""Checkpoints: a round trip gives the same model; damage gives a clear error naming the file."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import pytest
import torch

from engine.core.errors import UserError
from engine.models import MODEL_KEYS
from engine.training import checkpoint as ckpt
from engine.training.train import train
from tests.test_training import tiny_job


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    list(train(tiny_job(out, models=MODEL_KEYS, steps=4)))
    return out


def fresh_copy(run_dir, tmp_path, key):
    import shutil

    shutil.copytree(run_dir / key, tmp_path / key)
    return tmp_path


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_round_trip_gives_the_same_predictions_and_config(run_dir, key):
    loaded = ckpt.load_model(run_dir, key)
    again = ckpt.load_model(run_dir, key)
    x = torch.randint(1, loaded.token_config.vocab_size, (2, 30))
    with torch.no_grad():
        assert torch.equal(loaded.model(x), again.model(x))
    assert not loaded.model.training
    cfg = loaded.config
    assert cfg["key"] == key and cfg["step"] == 4 and cfg["corpus"] == "corpus-hash"
    assert cfg["params"] == loaded.model.num_params()
    assert cfg["tokens"]["vocab_size"] == loaded.token_config.vocab_size
    assert cfg["training"]["seed"] == 7 and cfg["valid_bpt"] > 0
    history = ckpt.read_history(run_dir / key)
    assert [r["step"] for r in history] == [2, 4] and history[-1]["valid_bpt"] == pytest.approx(cfg["valid_bpt"])


def test_saved_weights_are_the_trained_weights(tmp_path):
    job = tiny_job(tmp_path / "run", models=("gru",), steps=3)
    events = list(train(job))
    assert events[-1].kind == "done"
    loaded = ckpt.load_model(tmp_path / "run", "gru")
    model2, doc, opt, _ = ckpt.load_train_state(tmp_path / "run" / "gru", "gru")
    for (name, a), (_, b) in zip(loaded.model.state_dict().items(), model2.state_dict().items()):
        assert torch.equal(a, b), name
    assert doc.step == 3 and doc.finished and any(k.endswith("exp_avg_sq") for k in opt)


def test_list_run_models_in_registry_order(run_dir, tmp_path):
    assert ckpt.list_run_models(run_dir) == list(MODEL_KEYS)
    assert ckpt.list_run_models(tmp_path) == []


def test_truncated_weights_give_an_error_naming_the_file(run_dir, tmp_path):
    run = fresh_copy(run_dir, tmp_path, "lstm")
    path = run / "lstm" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"model\.safetensors: corrupted or truncated"):
        ckpt.load_model(run, "lstm")


def test_garbage_and_pickles_are_refused_without_unpickling(run_dir, tmp_path):
    run = fresh_copy(run_dir, tmp_path, "rnn")
    path = run / "rnn" / "model.safetensors"
    path.write_bytes(b"\x00" * 5)
    with pytest.raises(UserError, match=str(path)):
        ckpt.load_model(run, "rnn")

    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("a checkpoint was unpickled",))

    path.write_bytes(pickle.dumps({"weights": Boom()}))
    with pytest.raises(UserError, match="corrupted or truncated"):
        ckpt.load_model(run, "rnn")


def test_missing_or_broken_config_gives_an_error_naming_it(run_dir, tmp_path):
    run = fresh_copy(run_dir, tmp_path, "gru")
    config = run / "gru" / "config.json"
    config.write_text("{ not json")
    with pytest.raises(UserError, match=r"gru/config\.json: not a readable config"):
        ckpt.load_model(run, "gru")
    config.unlink()
    with pytest.raises(UserError, match=r"gru/config\.json: missing"):
        ckpt.load_model(run, "gru")


def test_weights_that_do_not_fit_the_config_give_a_clear_error(run_dir, tmp_path):
    run = fresh_copy(run_dir, tmp_path, "attention")
    config = run / "attention" / "config.json"
    doc = json.loads(config.read_text())
    doc["model"]["hidden_size"] += 4
    config.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"model\.safetensors: weight .* has shape"):
        ckpt.load_model(run, "attention")


def test_a_checkpoint_of_another_model_is_refused(run_dir, tmp_path):
    import shutil

    shutil.copytree(run_dir / "transformer", tmp_path / "lstm")
    with pytest.raises(UserError, match="holds model 'transformer', expected 'lstm'"):
        ckpt.load_model(tmp_path, "lstm")


def test_a_crash_while_saving_leaves_the_last_checkpoint_readable(run_dir, tmp_path, monkeypatch):
    run = fresh_copy(run_dir, tmp_path, "rnn")
    before = (run / "rnn" / "model.safetensors").read_bytes()
    import engine.core.atomic

    real_replace = os.replace

    def crash(src, dst):
        if str(dst).endswith("model.safetensors"):
            raise KeyboardInterrupt  # the process dies mid-checkpoint
        real_replace(src, dst)

    monkeypatch.setattr(engine.core.atomic.os, "replace", crash)
    loaded = ckpt.load_model(run, "rnn")
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(run / "rnn", loaded.model, torch.optim.AdamW(loaded.model.parameters()),
                             dataclasses.replace(loaded.record, step=99), [])
    monkeypatch.undo()
    assert (run / "rnn" / "model.safetensors").read_bytes() == before
    assert ckpt.load_model(run, "rnn").config["step"] == 4
    assert not [p for p in (run / "rnn").iterdir() if p.name.endswith(".tmp")]  # no litter
