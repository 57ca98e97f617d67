"""Random damage to every file of a run folder (Hypothesis): loading it either works or ends in a UserError
that names the damaged file; never another exception, never a hang, never non-finite weights handed on.

The files and who reads them: model.safetensors and config.json (load_model: generate, evaluate, the app),
train_state.safetensors (read_state_record when a resume is planned, load_train_state when it starts),
history.csv (read_history) and run.json (read_manifest)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import JSON_VALUES, examples, json_leaves, set_leaf

from engine.core.errors import UserError
from engine.training import checkpoint as ckpt
from engine.training.run_plan import read_manifest
from engine.training.train import train
from tests.test_training import tiny_job

KEYS = ("lstm", "transformer")


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    out = tmp_path_factory.mktemp("intact") / "run"
    list(train(tiny_job(out, models=KEYS, steps=4)))
    return out


def _load_model(run, key):
    loaded = ckpt.load_model(run, key)
    for name, tensor in loaded.model.state_dict().items():
        assert torch.isfinite(tensor).all(), f"{name}: non-finite weights were loaded without a word"


def _load_state(run, key):
    ckpt.read_state_record(run / key)
    ckpt.load_train_state(run / key, key)


READERS = {
    "model.safetensors": _load_model,
    "config.json": _load_model,
    "train_state.safetensors": _load_state,
    "history.csv": lambda run, key: ckpt.read_history(run / key),
    "run.json": lambda run, key: read_manifest(run),
}


DAMAGE = st.one_of(
    st.tuples(st.just("replace"), st.binary(max_size=600)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("json"), st.tuples(st.integers(0, 10_000), JSON_VALUES)),
)


def _damaged(data: bytes, name: str, damage) -> bytes:
    kind, arg = damage
    if kind == "replace":
        return arg
    if kind == "truncate":
        return data[: int(len(data) * arg)]
    if kind == "flip":
        out = bytearray(data)
        for where, byte in arg:
            out[min(len(out) - 1, int(len(out) * where))] = byte
        return bytes(out)
    if not name.endswith(".json"):  # a JSON edit of a binary or CSV file: flip its first byte instead
        return bytes([data[0] ^ 0xFF]) + data[1:]
    doc = json.loads(data)
    leaves = list(json_leaves(doc))
    index, value = arg
    set_leaf(doc, leaves[index % len(leaves)], value)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("name", list(READERS))
@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(damage=DAMAGE, key=st.sampled_from(KEYS))
def test_a_damaged_file_loads_or_is_refused_naming_it(intact, tmp_path_factory, name, damage, key):
    run = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(intact, run)
    path = run / name if name == "run.json" else run / key / name
    path.write_bytes(_damaged(path.read_bytes(), name, damage))
    try:
        READERS[name](run, key)
    except UserError as exc:
        assert str(path) in str(exc), f"the message does not name {path}: {exc}"


def test_weights_edited_to_nan_are_refused_naming_the_file(intact, tmp_path):
    """A flip that lands in a float's exponent can make it NaN: such weights would make every sampling step
    fail later, far from the cause, so loading refuses them."""
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(intact, run)
    path = run / "lstm" / "model.safetensors"
    _, meta = ckpt.read_safetensors(path)
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, path, metadata=meta)
    with pytest.raises(UserError, match=f"{path}.*{name}.*not finite"):
        ckpt.load_model(run, "lstm")
