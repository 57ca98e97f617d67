"""Recall by distance (issue 23) on known answers: hand-built models whose memory is fixed by construction,
scored on a handful of synthetic tunes whose bars restate earlier bars at distances 1, 2, 6, 7 and 11 (and
16, the second time through). Plus the foreign bars' two promises, and `evaluate` writing the report keys."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from engine.evaluation.recall_section import figures
from engine.memory.recall import target_bits
from engine.memory.recall_plan import make_plan
from engine.metrics.bars import bar_sets, transposed_similarity
from engine.models.base import ModelConfig, SequenceModel
from engine.music.melody import Melody, Note, steps_per_bar_for
from engine.music.tokens import TokenConfig, encode

S = 16  # 4/4 on the 16th grid
V = TokenConfig().vocab_size
# restatements at 1 and 2 (B), 6 (A), 7 (B) and 11 (C) bars, each with unrelated bars further back for the control;
# 16 bars the second time through
FORM = "XABBCBDAEFGHBIJC"
SETTINGS = SimpleNamespace(bootstrap=200, seed=0, min_n=3)


def _bar(rng, steps: int):
    notes, step = [], 0
    while step < steps:
        length = min(int(rng.choice([2, 4])), steps - step)
        notes.append((step, int(rng.choice([60, 62, 64, 65, 67, 69, 71, 72, 74, 76])), length))
        step += length
    return notes


def tune(rng, i, form=FORM, meter: tuple[int, int] = (4, 4)) -> Melody:
    """A random tune whose bars follow `form` (one letter, one bar; a repeated letter restates its bar)."""
    bar_steps = steps_per_bar_for(*meter)
    letters = {c: _bar(rng, bar_steps) for c in dict.fromkeys(form)}
    notes = tuple(Note(b * bar_steps + on, p, d) for b, c in enumerate(form) for on, p, d in letters[c])
    return Melody(notes=notes, n_steps=len(form) * bar_steps, numerator=meter[0], denominator=meter[1],
                  tune_id=f"t{i}", title=f"t{i}")


@pytest.fixture(scope="module")
def plan():
    rng = np.random.default_rng(1)
    tunes = [tune(rng, i) for i in range(8)]
    return make_plan(tunes, [encode(t) for t in tunes], V)


class HandBuilt(SequenceModel):
    """One-hot inputs; `logits(tokens [B, T])` says what it predicts. No training, no randomness."""

    def __init__(self, reach=None):
        super().__init__()
        self.config = ModelConfig(key="hand-built", window=64)
        self._reach = reach

    @property
    def reach(self):
        return self._reach

    def embed_tokens(self, tokens):
        return F.one_hot(tokens, V).float()

    def forward_embedded(self, e):
        return self.logits(e.argmax(-1))


class CopyBarBack(HandBuilt):
    """Predicts the token one bar back, sure of it: nothing but the previous bar matters."""

    def __init__(self):
        super().__init__(reach=S - 1)

    def logits(self, tokens):
        out = torch.zeros(*tokens.shape, V)
        out[:, S - 1 :] = 8.0 * F.one_hot(tokens[:, : tokens.shape[1] - (S - 1)], V)
        return out


class Bigram(HandBuilt):
    """The next token from the current one only (a fixed, mild table)."""

    def __init__(self):
        super().__init__(reach=0)
        self.table = 0.3 * torch.randn(V, V, generator=torch.Generator().manual_seed(0))

    def logits(self, tokens):
        return self.table[tokens]


class Oracle(HandBuilt):
    """Copies the nearest earlier bar that agrees with the current bar so far (uniform where none does),
    within `span` bars when given."""

    def __init__(self, span=None):
        super().__init__()
        self.span = span

    def logits(self, tokens):
        out = torch.zeros(*tokens.shape, V)
        for row, seq in enumerate(tokens.numpy()):
            n_bars = -(-(len(seq) + 1) // S)
            bars = np.full(n_bars * S, -1)
            bars[: len(seq)] = seq
            bars = bars.reshape(n_bars, S)
            eq = bars[:, None, :] == bars[None, :, :]  # [a, b, position]
            prefix = np.concatenate([np.ones((n_bars, n_bars, 1), bool), np.cumprod(eq, axis=2)[:, :, :-1] > 0], 2)
            for q in range(1, len(seq)):  # the token at q, predicted at q - 1
                b, pos = divmod(q, S)
                earlier = [a for a in range(b - 1, -1, -1) if prefix[a, b, pos]
                           and (self.span is None or b - a <= self.span)]
                if earlier:
                    out[row, q - 1, bars[earlier[0], pos]] = 8.0
        return out


def measured(model, plan):
    return figures(plan, {"m": [target_bits(model, plan)]}, SETTINGS)


def test_the_tunes_give_targets_at_every_distance_the_form_has(plan):
    found = {t.distance_bars for t in plan.targets}
    assert {1, 2, 6, 7, 11} <= found, found
    assert any(t.distance_bars >= 16 for t in plan.targets)  # the second time through


def test_copying_one_bar_back_recalls_at_distance_one_only(plan):
    out = measured(CopyBarBack(), plan)
    st = out["recall_by_distance"]["m"]
    assert st["lo"][0] > 1.0  # bar 1 replaced: the copy is gone
    assert all(m == 0 for m in st["mean"][1:] if m is not None)  # further back it never looked
    assert all(c == 0 for c in st["control"] if c is not None)  # the control never touches bar b-1
    assert out["memory_horizon_bars"]["m"] == 1
    assert out["memory_horizon_steps"]["m"] == 31  # 16 steps back, the bucket 16-31


def test_a_bigram_recalls_nothing(plan):
    out = measured(Bigram(), plan)
    st = out["recall_by_distance"]["m"]
    means = [m for m in st["mean"] if m is not None]
    assert means and all(abs(m) < 0.05 for m in means)
    assert all(m == 0 for m in st["mean"][1:] if m is not None)  # only bar b-1's last token reaches it
    assert out["memory_horizon_bars"]["m"] == 0


def test_an_oracle_that_copies_the_restatement_recalls_at_every_distance(plan):
    out = measured(Oracle(), plan)
    st = out["recall_by_distance"]["m"]
    measured_buckets = [i for i, m in enumerate(st["mean"]) if m is not None]
    assert len(measured_buckets) >= 4
    assert all(st["lo"][i] > 0.5 for i in measured_buckets), st
    assert out["memory_horizon_bars"]["m"] == st["edges"][measured_buckets[-1]][1]


def test_a_transformer_loses_recall_beyond_its_layers_reach(plan):
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("transformer", "tiny", V, window=20)  # 2 layers: reach 38 steps, under 3 bars
    assert model.reach < 3 * S
    st = measured(model, plan)["recall_by_distance"]["m"]
    assert abs(st["mean"][0]) > 1e-4  # a random model still draws on the bar before
    far = [i for i, (lo, _hi) in enumerate(st["edges"]) if lo * S > model.reach and st["mean"][i] is not None]
    assert far and all(abs(st["mean"][i]) < 1e-4 and abs(st["control"][i]) < 1e-4 for i in far), st
    # the same copying oracle, limited to 2 bars: its recall ends there
    out = measured(Oracle(span=2), plan)
    near = out["recall_by_distance"]["m"]
    assert near["lo"][0] > 0.5 and near["lo"][1] > 0.5
    assert all(abs(m) < 1e-6 for m in near["mean"][2:] if m is not None)
    assert out["memory_horizon_bars"]["m"] == 2


@given(seed=st.integers(0, 10_000), forms=st.lists(st.text("ABCD", min_size=4, max_size=12), min_size=3, max_size=5))
def test_a_foreign_bar_has_the_targets_steps_and_never_resembles_it(seed, forms):
    rng = np.random.default_rng(seed)
    tunes = [tune(rng, i, form) for i, form in enumerate(forms)]
    plan = make_plan(tunes, [encode(t) for t in tunes], V, seed)
    for t in plan.targets:
        material = plan.materials[t.material]
        target = bar_sets(tunes[material.tune].note_array(), S, material.tune_bars)
        own = t.bar % material.tune_bars
        for (which, bar), (source, source_bar, shift) in t.origins.items():
            tokens = (t.replaced if which == "ablated" else t.control)[bar]
            assert len(tokens) == S
            assert source != material.tune
            notes = tunes[source].note_array()
            notes[:, 1] += shift
            foreign = bar_sets(notes, S, tunes[source].n_bars)
            sim = transposed_similarity(foreign, target, max_shift=0)[source_bar, own]
            assert sim < 0.2
        assert t.distance_bars == t.bar - max(t.replaced)
        assert all(t.bar - c >= t.distance_bars and c != t.bar - 1 for c in t.control)


def test_evaluate_writes_recall_by_distance_per_seed(midi_folder, corpus_cache, tmp_path, monkeypatch):
    """Two untrained tiny runs with seeds 3 and 4: the report has every key per model, per seed and as
    their mean, and the report folder the plot."""
    import main
    from engine.data.corpus import load_corpus
    from engine.models import build_model
    from engine.training.checkpoint import ModelRecord, save_model
    from engine.training.train_config import TrainConfig

    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
    corpus = load_corpus([midi_folder])
    runs = []
    for seed in (3, 4):
        for key in ("lstm", "transformer"):
            torch.manual_seed(seed)
            model = build_model(key, "tiny", V)
            save_model(tmp_path / f"run{seed}" / key, model, ModelRecord(
                key, model.config, TokenConfig(), TrainConfig(preset="tiny", seed=seed), 6, corpus=corpus.fingerprint))
        runs.append(str(tmp_path / f"run{seed}"))
    out = tmp_path / "report"
    assert main.main(["evaluate", "--run", runs[0], "--seeds", runs[1], "--source", str(midi_folder), "--no-probe",
                      "--primers", "2", "--primer-bars", "2", "--bars", "2", "--samples", "1", "--temperatures", "1",
                      "--influence-primers", "0", "--min-n", "2", "--bootstrap", "50", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    for part in (report, report["seeds"]["3"], report["seeds"]["4"]):
        for key in ("lstm", "transformer"):
            for name in ("recall_by_distance", "recall_by_distance_steps"):
                st = part[name][key]
                assert set(st) >= {"buckets", "mean", "lo", "hi", "n", "n_tunes", "control"}
                assert len(st["mean"]) == len(st["buckets"]) == 7
            for name in ("memory_horizon_bars", "memory_horizon_steps", "half_recall_steps", "length_generation"):
                assert key in part[name]
    assert report["settings"]["recall"]["seeds"] == [3, 4]
    assert (out / "recall_by_distance.png").is_file()
    # the summary a reader opens leads with it: the mean over the two seeds, then each seed's horizon
    summary = (out / "summary.md").read_text()
    assert "Recall by distance" in summary and "the mean over training seeds 3, 4" in summary
    assert "Per seed (3, 4): lstm " in summary and "| transformer | " in summary


def test_the_memory_tab_says_when_too_few_tunes_run_past_the_crop():
    """Twice-through tunes that rarely outgrow the training crop give no verdict: the caption says so and
    names n, instead of claiming that no model gets worse."""
    from gui.memory.model_side import _generation_sentence

    few = {"training_crop_steps": 2048, "past_crop_warm_minus_cut_bits": {"mean": None, "lo": None, "hi": None, "n": 2},
           "worse_past_crop": False}
    enough = {**few, "past_crop_warm_minus_cut_bits": {"mean": 0.001, "lo": -0.01, "hi": 0.01, "n": 40}}
    text = _generation_sentence({"length_generation": {"lstm": few}, "length_generation_worse": []})
    assert "Too few tunes" in text and "n 2" in text and "no model gets worse" not in text
    text = _generation_sentence({"length_generation": {"lstm": enough}, "length_generation_worse": []})
    assert "no model gets worse" in text and "Too few" not in text
