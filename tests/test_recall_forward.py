"""Recall by distance's fast forwards (engine/memory/recall_forward.py) pinned to the plain one they replaced.

The measure once ran one forward per scored sequence (the true past once per tune, then every ablated and control
sequence from its start, or from `reach` steps before the target bar): `reference_target_bits` below is that
code, kept as it was. The fast forwards share what the sequences have in common (a tree of blocks for the models
with a state, each Transformer layer only where the target bar needs it); they must give the same recall figures,
up to the order of float sums (a batch of another shape): within 1e-6 bits per target bar here, on tiny seeded
models of every family, on tunes of three meters (bars of 16, 12 and 8 steps) played twice through."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.memory import recall_forward
from engine.memory.recall import target_figures
from engine.memory.recall_forward import plain_bits, sequence_bits
from engine.memory.recall_plan import make_plan
from engine.memory.recall_tree import WHICH, build_tree, groups, sequence_tokens
from engine.models.registry import MODEL_KEYS, build_model
from engine.music.tokens import TokenConfig, encode
from tests.test_recall import FORM, tune

V = TokenConfig().vocab_size
TOLERANCE_BITS = 1e-6
METERS = ((4, 4), (6, 8), (2, 4))  # 16, 12 and 8 steps a bar


@pytest.fixture(scope="module")
def plan():
    rng = np.random.default_rng(3)
    tunes = [tune(rng, i, FORM, METERS[i % len(METERS)]) for i in range(9)]
    found = make_plan(tunes, [encode(t) for t in tunes], V)
    assert {m.steps_per_bar for m in found.materials} == {16, 12, 8}
    return found


def _model(key: str):
    """A tiny model of `key`, seeded, its weights scaled up so that it predicts sharply (an untrained model's
    near-uniform predictions would hide a token read at the wrong step)."""
    torch.manual_seed(7)
    model = build_model(key, "tiny", V)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def reference_target_bits(model, plan, batch_tokens: int = 1 << 16) -> dict[str, np.ndarray]:
    """The measure's forwards before the fast ones, as they were: the true past one forward over each whole tune
    (engine/memory/nll.py's token_bits), each ablated and control sequence one forward from its start, or from
    `reach` steps before the target bar, in padded batches of similar lengths."""
    from engine.memory.nll import _bits_from_logits, _pad_batch, token_bits

    true = token_bits(model, [m.tokens for m in plan.materials])
    reach = model.reach
    jobs = []
    for i, t in enumerate(plan.targets):
        material = plan.materials[t.material]
        start = 0 if reach is None else max(0, t.bar * material.steps_per_bar - 1 - reach)
        for which in ("ablated", "control"):
            jobs.append((i, which, start, t.tokens(material, which)[start:]))
    jobs.sort(key=lambda j: len(j[3]))
    found = {"ablated": np.full(len(plan.targets), np.nan), "control": np.full(len(plan.targets), np.nan)}
    done = 0
    with torch.inference_mode():
        while done < len(jobs):
            rows = max(1, batch_tokens // len(jobs[done][3]))
            chunk = jobs[done : done + rows]
            batch = torch.from_numpy(_pad_batch([j[3] for j in chunk]))
            bits = _bits_from_logits(model(batch[:, :-1]), batch[:, 1:])
            for r, (i, which, start, _tokens) in enumerate(chunk):
                t = plan.targets[i]
                S = plan.materials[t.material].steps_per_bar
                lo, hi = t.bar * S - start, (t.bar + 1) * S - start
                found[which][i] = float(np.mean(bits[r, lo - 1 : hi - 1] - true[t.material][t.bar * S : (t.bar + 1) * S]))
            done += len(chunk)
    return {"recall_bits": found["ablated"], "control_bits": found["control"],
            "excess": found["ablated"] - found["control"]}


def _unrounded_figures(plan, bits, monkeypatch) -> dict:
    from engine.evaluation.recall_section import figures
    from engine.metrics import stats

    monkeypatch.setattr(stats, "SERIES_DIGITS", 15)  # the report rounds to 4 decimals: compare before that
    return figures(plan, {"m": [bits]}, SimpleNamespace(bootstrap=200, seed=0, min_n=3))


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_the_fast_forward_gives_the_reference_figures(plan, key, monkeypatch):
    model = _model(key)
    bits = sequence_bits(model, plan)
    # every scored token as one forward per sequence scores it (the float sums' order aside); the Transformer's
    # true past is scored over the whole tune, as the reference does (RoPE's angles at the tune's own steps)
    plain = plain_bits(model, plan)
    compared = slice(1, 3) if key == "transformer" else slice(0, 3)
    assert np.array_equal(np.isnan(bits), np.isnan(plain))
    np.testing.assert_allclose(bits[:, compared], plain[:, compared], rtol=0, atol=1e-4, equal_nan=True, err_msg=key)
    fast = target_figures(plan, bits)
    reference = reference_target_bits(model, plan)
    for name in ("recall_bits", "control_bits", "excess"):
        assert np.isfinite(fast[name]).all()
        # per target bar: the float sums' order (a batch of another shape) moves a sharp tiny model's bits by a few
        # 1e-6 at most
        np.testing.assert_allclose(fast[name], reference[name], rtol=0, atol=1e-5, err_msg=f"{key} {name}")
    # and not by both being nothing: the ablation moves these sharp models' predictions
    assert np.abs(reference["recall_bits"]).max() > 0.01
    got, want = _unrounded_figures(plan, fast, monkeypatch), _unrounded_figures(plan, reference, monkeypatch)
    for name in ("recall_by_distance", "recall_by_distance_steps"):
        for field in ("mean", "lo", "hi", "control"):
            a = np.array(got[name]["m"][field], dtype=float)
            b = np.array(want[name]["m"][field], dtype=float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), (name, field)
            np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE_BITS, equal_nan=True, err_msg=f"{key} {name} {field}")
        assert got[name]["m"]["n"] == want[name]["m"]["n"]
    for name in ("memory_horizon_bars", "memory_horizon_steps"):
        assert got[name]["m"] == want[name]["m"], name


def test_small_groups_and_small_calls_change_nothing(plan, monkeypatch):
    """The trees are cut into groups of tunes and run in calls of a bounded size: neither cut changes a figure."""
    model = _model("gru")
    whole = sequence_bits(model, plan)
    monkeypatch.setattr(recall_forward, "GROUP_SEQUENCES", 40)
    monkeypatch.setattr(recall_forward, "TOKENS_PER_CALL", 64)
    assert len(groups(plan, 40)) > 3
    np.testing.assert_allclose(sequence_bits(model, plan), whole, rtol=0, atol=1e-5, equal_nan=True)


def test_the_tree_holds_every_sequence_and_shares_their_prefixes(plan):
    block = 16
    tree = build_tree(plan, list(range(len(plan.targets))), block)
    for j, path in enumerate(tree.paths):
        i = tree.targets[j // 3]
        tokens = sequence_tokens(plan, i, WHICH[j % 3])
        for level, node in enumerate(path):  # the path's blocks are the sequence's, node by node
            assert tree.level[node] == level
            assert tree.parent[node] == (path[level - 1] if level else -1)
            own = tokens[level * block : (level + 1) * block]
            assert np.array_equal(tree.tokens[node][: len(own)], own)
    every = sum(len(p) for p in tree.paths)
    assert len(tree.parent) < every / 2, (len(tree.parent), every)  # the true past once per tune, and more shared
