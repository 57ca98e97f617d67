"""Influence ("what did it remember"): known answers from hand-made models, a finite-difference check of
the gradient, validity for all five families and both methods, distances, and the CLI as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples
from torch import nn

from engine.core.errors import UserError
from engine.generation.generate import SampleSettings, generate
from engine.memory.influence import (
    distance_distribution,
    influence,
    influence_distances,
    influence_distribution,
    influence_summary,
    melody_influence,
    methods_for,
    repeat_distances,
    repeat_distribution,
    uniform_distances,
)
from engine.models.base import ModelConfig, SequenceModel
from engine.models.registry import MODEL_KEYS, build_model, models_with_attention
from engine.music.melody import Melody, Note
from engine.music.tokens import FIRST_PITCH_TOKEN, HOLD, REST, TokenConfig, encode

CFG = TokenConfig()
V = CFG.vocab_size
REPO = Path(__file__).resolve().parents[1]


def melody(notes, n_steps, numerator=4) -> Melody:
    return Melody(tuple(Note(*n) for n in notes), n_steps, numerator, 4, tune_id="t", title="t")


def legato_quarters(bars: int, pitches=(60, 64, 67, 65, 62, 71, 69, 72)) -> Melody:
    """Quarter notes in 4/4, each lasting until the next starts."""
    return melody([(4 * k, pitches[k % len(pitches)], 4) for k in range(4 * bars)], 16 * bars)


def check_valid(result: dict, primer_steps: int) -> None:
    """One entry per continuation note; sources causal (j < i), weights >= 0, sum + rest = 1 (or all 0)."""
    onsets = [n[0] for n in result["notes"]]
    continuation = [i for i, o in enumerate(onsets) if o >= primer_steps]
    assert [e["note"] for e in result["influence"]] == continuation
    assert result["primer_notes"] == (continuation[0] if continuation else len(onsets))
    for entry in result["influence"]:
        weights = [w for j, w in entry["sources"]]
        assert all(j < entry["note"] for j, _ in entry["sources"])
        assert all(w >= 0 for w in weights) and entry["rest"] >= 0
        assert sum(weights) <= 1 + 1e-6
        assert sum(weights) + entry["rest"] == pytest.approx(1.0, abs=1e-6) or sum(weights) + entry["rest"] == 0


# ------------------------------------------------------------------------------ hand-made models


class PreviousTokenLM(SequenceModel):
    """Its prediction at step t depends on token t alone (a bigram table through an embedding)."""

    def __init__(self):
        super().__init__()
        self.config = ModelConfig(key="bigram", vocab_size=V, window=1)
        self.embed = nn.Embedding(V, 8)
        self.head = nn.Linear(8, V)

    def embed_tokens(self, tokens):
        return self.embed(tokens)

    def forward_embedded(self, e):
        return self.head(torch.tanh(e))

    def init_state(self, batch, device=None):
        return None

    def step(self, tokens, state):
        return self.forward(tokens[:, None])[:, 0], state


class CopyLM(SequenceModel):
    """Predicts token t + 1 = token t + 1 - k: a fixed shift of one-hot embeddings onto the logits."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.config = ModelConfig(key="copy", vocab_size=V, window=k)
        self.embed = nn.Embedding(V, V)
        self.head = nn.Linear(V, V, bias=False)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(V))
            self.head.weight.copy_(10 * torch.eye(V))

    def embed_tokens(self, tokens):
        return self.embed(tokens)

    def forward_embedded(self, e):
        shifted = torch.nn.functional.pad(e, (0, 0, self.k - 1, 0))[:, : e.shape[1]]  # step t sees e[t - k + 1]
        return self.head(shifted)


def test_a_model_that_sees_only_the_previous_token_puts_all_weight_on_the_previous_note():
    torch.manual_seed(0)
    model = PreviousTokenLM()
    primer = legato_quarters(2)
    continuation = generate(model, primer, SampleSettings(bars=2, seed=3), CFG)[0]
    result = melody_influence(model, primer, continuation, CFG)
    check_valid(result, primer.n_steps)
    assert result["influence"]
    for entry in result["influence"]:
        i = entry["note"]
        previous = result["notes"][i - 1]
        if previous[0] + previous[2] == result["notes"][i][0]:  # the previous note lasts until this one
            assert entry["sources"] == [[i - 1, pytest.approx(1.0)]] and entry["rest"] == pytest.approx(0.0)
        else:  # a rest came between: the one step it looked at is a rest
            assert entry["sources"] == [] and entry["rest"] == pytest.approx(1.0)


def test_after_a_rest_the_previous_token_model_draws_on_the_rest_not_on_a_note():
    torch.manual_seed(0)
    model = PreviousTokenLM()
    notes = [(0, 60, 4), (4, 62, 2), (8, 64, 4), (12, 65, 4), (16, 67, 2), (20, 69, 4)]  # rests at 6-7, 18-19
    tokens = encode(melody(notes, 24), CFG)
    result = influence(model, tokens, 16, CFG)
    assert [e["note"] for e in result["influence"]] == [4, 5]
    assert result["influence"][0]["sources"] == [[3, pytest.approx(1.0)]]
    assert result["influence"][1]["sources"] == [] and result["influence"][1]["rest"] == pytest.approx(1.0)


@pytest.mark.parametrize("k", [16, 12])
def test_a_copy_model_puts_its_weight_on_the_note_it_copies(k):
    """Copying k steps back: every note of the continuation repeats the note whose onset is k earlier."""
    rng = np.random.default_rng(k)
    bar = [(0, 67, 3), (4, 71, 2), (6, 74, 2), (8, 72, 4), (12, 69, 2), (14, 66, 2)]
    bar = [n for n in bar if n[0] < k]
    figure = encode(melody([(o, int(p) + int(rng.integers(-2, 3)), d) for o, p, d in bar], k), CFG)
    tokens = np.concatenate([figure] * 4)  # a primer of 2 periods, then the model's own copy
    model = CopyLM(k)
    with torch.no_grad():  # the model does copy: its most likely next token is the one k back
        predicted = model(torch.as_tensor(tokens)[None]).argmax(-1)[0, k - 1 : -1].numpy()
    assert (predicted == tokens[k:]).all()
    result = influence(model, tokens, 2 * k, CFG)
    check_valid(result, 2 * k)
    onsets = [n[0] for n in result["notes"]]
    assert len(result["influence"]) == 2 * len(bar)
    for entry in result["influence"]:
        source = onsets.index(onsets[entry["note"]] - k)
        assert entry["sources"] == [[source, pytest.approx(1.0)]]
        assert result["notes"][source][1:] == result["notes"][entry["note"]][1:]
    assert influence_summary(result, k)["mean_distance_bars"] == pytest.approx(1.0)  # one period back


# ------------------------------------------------------------------------------ the five models


def random_piece(seed: int, n_steps: int) -> np.ndarray:
    """Tokens with notes, holds and rests in a realistic mix (a REST right after a REST included)."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(3, size=n_steps, p=[0.45, 0.45, 0.10])
    pitches = rng.integers(FIRST_PITCH_TOKEN, V, size=n_steps)
    tokens = np.where(kinds == 0, pitches, np.where(kinds == 1, HOLD, REST))
    tokens[0] = pitches[0]
    return tokens.astype(np.int64)


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_weights_are_causal_and_normalised_for_every_family_and_method(key):
    torch.manual_seed(1)
    model = build_model(key, "tiny", V)
    tokens = random_piece(2, 150)  # longer than the tiny window (64): the attention window slides
    methods = methods_for(model)
    assert methods == (("gradient", "attention") if key in models_with_attention() else ("gradient",))
    for method in methods:
        result = influence(model, tokens, 60, CFG, method)
        assert result["model"] == key and result["method"] == method
        check_valid(result, 60)
        assert len(result["influence"]) > 20
        json.dumps(result, allow_nan=False)  # JSON-ready: plain lists, ints and floats
    assert model.training  # left as it was found


@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(2, 90), primer=st.integers(1, 89))
def test_any_token_sequence_gets_causal_normalised_weights(seed, length, primer):
    torch.manual_seed(0)
    model = build_model("gru", "tiny", V)
    tokens = random_piece(seed, length)
    result = influence(model, tokens, min(primer, length), CFG)
    check_valid(result, min(primer, length))


def test_attention_on_a_model_without_attention_is_a_clear_error():
    for key in ("rnn", "lstm", "gru"):
        with pytest.raises(UserError, match=f"the {key} model has no attention weights.*gradient"):
            influence(build_model(key, "tiny", V), random_piece(0, 40), 20, CFG, "attention")
    with pytest.raises(UserError, match=r"bigram.*gradient"):
        influence(PreviousTokenLM(), random_piece(0, 40), 20, CFG, "attention")
    with pytest.raises(UserError, match="unknown influence method 'saliency'"):
        influence(PreviousTokenLM(), random_piece(0, 40), 20, CFG, "saliency")


@pytest.mark.parametrize("key", models_with_attention())
def test_uniform_attention_spreads_weight_by_how_many_steps_of_each_note_lie_in_the_window(key):
    """Zero queries make every score equal: the weights are then known, steps in the window / keys."""
    torch.manual_seed(0)
    model = build_model(key, "tiny", V)
    with torch.no_grad():
        if key == "attention":
            model.attn_query.weight.zero_()
        else:
            d = model.config.d_model
            for block in model.blocks:
                block.attn.qkv.weight[:d].zero_()
    tokens = random_piece(5, 140)
    window = model.config.window
    result = influence(model, tokens, 70, CFG, "attention")
    check_valid(result, 70)
    for entry in result["influence"]:
        query = result["notes"][entry["note"]][0] - 1
        keys = np.arange(max(0, query - window + 1), query + 1)
        for j, w in entry["sources"]:
            onset, _, duration = result["notes"][j]
            inside = np.intersect1d(keys, np.arange(onset, onset + duration))
            assert w == pytest.approx(len(inside) / len(keys))


def test_the_transformers_attention_weights_are_the_ones_its_forward_applies():
    from engine.models.attention_rnn import sliding_causal_mask

    torch.manual_seed(0)
    model = build_model("transformer", "tiny", V).eval()
    x = torch.as_tensor(random_piece(3, 100))[None]
    weights = model.attention_weights(x)  # [layers, 1, heads, T, T]
    block = model.blocks[0]
    positions = torch.arange(100)
    q, k, v = block.attn.project(block.ln1(model.embed(x)), positions)
    expected = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=sliding_causal_mask(100, 100, 64))
    assert torch.allclose(weights[0] @ v, expected, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-6)


# ------------------------------------------------------------------------------ finite differences


def log_p_with_embedding_deltas(model, tokens, target_step, deltas):
    """log p(tokens[target_step] | earlier) with deltas [R, T, D] added to the input embeddings (R rows)."""
    embedding = next(m for m in model.modules() if isinstance(m, nn.Embedding))
    handle = embedding.register_forward_hook(lambda _m, _i, out: out + deltas)
    try:
        logits = model(torch.as_tensor(tokens[:target_step])[None].expand(len(deltas), -1))
    finally:
        handle.remove()
    return torch.log_softmax(logits[:, target_step - 1], dim=-1)[:, tokens[target_step]]


@pytest.mark.parametrize("key", ["gru", "transformer"])
def test_gradient_influence_agrees_with_finite_differences(key):
    torch.manual_seed(4)
    model = build_model(key, "tiny", V).double().eval()
    tokens = random_piece(7, 40)
    result = influence(model, tokens, 30, CFG)
    entry = result["influence"][-1]
    onset = result["notes"][entry["note"]][0]
    steps, dim = onset, model.embed.embedding_dim
    eps = 1e-6
    deltas = torch.zeros(2 * steps * dim, onset, dim, dtype=torch.float64)
    for t in range(steps):
        for d in range(dim):
            deltas[2 * (t * dim + d), t, d] = eps
            deltas[2 * (t * dim + d) + 1, t, d] = -eps
    with torch.no_grad():
        logp = log_p_with_embedding_deltas(model, tokens, onset, deltas).numpy()
    grad = ((logp[0::2] - logp[1::2]) / (2 * eps)).reshape(steps, dim)
    norms = np.linalg.norm(grad, axis=1)
    shares = norms / norms.sum()
    expected = {}
    for j, (o, _, duration) in enumerate(result["notes"][: entry["note"]]):
        expected[j] = shares[o : min(o + duration, onset)].sum()
    got = dict(entry["sources"])
    assert set(got) == {j for j, w in expected.items() if w > 0}
    for j, w in expected.items():
        assert got.get(j, 0.0) == pytest.approx(w, abs=1e-6)
    assert entry["rest"] == pytest.approx(1 - sum(expected.values()), abs=1e-6)


# ------------------------------------------------------------------------------ distances


def test_distances_of_a_piece_that_only_looks_one_note_back():
    """Quarter notes in 4/4 drawing only on the previous note: every note reaches 1/4 bar back."""
    torch.manual_seed(0)
    model = PreviousTokenLM()
    cases = []
    for seed in (1, 2):
        piece = legato_quarters(4, pitches=tuple(int(p) for p in np.random.default_rng(seed).integers(55, 80, 8)))
        cases.append((encode(piece, CFG), 32, 16))
    out = influence_distribution(model, cases, CFG, bars=1)
    assert out["n_continuations"] == 2 and out["n_notes"] == 8 and out["undefined"] == 0
    assert out["mean"] == pytest.approx(0.25) and out["median"] == pytest.approx(0.25)
    assert out["histogram"]["share"][0] == pytest.approx(1.0) and sum(out["histogram"]["share"]) == pytest.approx(1.0)
    # chance level: weight spread evenly over all earlier quarter notes (8 of them for the first note)
    first = influence(model, cases[0][0][:36], 32, CFG)
    assert uniform_distances(first, 16)[0] == pytest.approx(np.mean(np.arange(1, 9)) / 4)
    assert out["uniform"]["mean"] > out["mean"]
    json.dumps(out, allow_nan=False)


def test_influence_distance_is_the_weighted_mean_over_notes_and_undefined_on_rests_alone():
    result = {
        "notes": [[0, 60, 4], [16, 62, 4], [32, 64, 4], [48, 65, 4]],
        "primer_notes": 2,
        "influence": [
            {"note": 2, "sources": [[0, 0.3], [1, 0.1]], "rest": 0.6},  # (0.3 x 2 + 0.1 x 1) / 0.4 bars
            {"note": 3, "sources": [], "rest": 1.0},
        ],
    }
    d = influence_distances(result, 16)
    assert d[0] == pytest.approx(1.75) and np.isnan(d[1])
    summary = influence_summary(result, 16)
    assert summary["mean_distance_bars"] == pytest.approx(1.75) and summary["n_notes"] == 1
    assert summary["distances"] == [pytest.approx(1.75), None]


def test_repeat_distance_finds_the_nearest_repeated_figure_whole_bars_back():
    bar_a = [(0, 60, 4), (4, 62, 4), (8, 64, 4), (12, 65, 4)]
    bar_b = [(0, 67, 8), (8, 65, 8)]
    bars = [bar_a, bar_b, bar_b, bar_a]
    notes = [(16 * b + o, p, d) for b, bar in enumerate(bars) for o, p, d in bar]
    d = repeat_distances(notes, first=6, steps_per_bar=16)  # the notes of bars 2 and 3 (indexes 6..11)
    # Bar 2 opens with 67 after a half note, bar 1 with 67 after a quarter: not the same figure, no repeat.
    # Its second note repeats bar 1's (1 bar back). Bar 3 opens like bar 0, which nothing preceded: no
    # repeat; its other notes repeat bar 0's, 3 bars back, and not bar 1's or 2's (other notes).
    assert np.isnan(d[0]) and d[1] == 1.0
    assert np.isnan(d[2]) and d[3:].tolist() == [3.0, 3.0, 3.0]
    out = repeat_distribution([(np.array(notes), 48, 16)], bars=None)
    assert out["no_repeat_share"] == pytest.approx(1 / 4) and out["n_notes"] == 3
    assert distance_distribution([])["n_notes"] == 0


# ------------------------------------------------------------------------------ the command line


@pytest.fixture(scope="module")
def influence_run(tmp_path_factory):
    """A run directory with untrained tiny LSTM and Transformer checkpoints, and a 3/4 primer file."""
    from engine.training.checkpoint import ModelRecord, save_model
    from engine.training.train_config import TrainConfig

    sys.path.insert(0, str(Path(__file__).parent))
    import midi_factory

    root = tmp_path_factory.mktemp("influence")

    with pytest.MonkeyPatch.context() as mp:  # durability is not under test; fsync takes seconds here
        mp.setattr("os.fsync", lambda fd: None)
        for key in ("lstm", "transformer"):
            torch.manual_seed(0)
            model = build_model(key, "tiny", V)
            save_model(root / "run" / key, model, ModelRecord(key, model.config, CFG, TrainConfig(preset="tiny"), 0))
    primer = midi_factory.simple_tune(root / "jig.mid", bars=10, meter=(3, 4), seed=2)
    return root, primer


def test_cli_json_names_each_new_notes_sources_and_continues_as_generate_does(influence_run):
    root, primer = influence_run
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "influence", "--run", str(root / "run"), "--model", "transformer",
         "--primer", str(primer), "--primer-bars", "4", "--bars", "3", "--seed", "5", "--method", "attention",
         "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"model", "method", "notes", "primer_notes", "influence"} <= set(doc)
    assert doc["model"] == "transformer" and doc["method"] == "attention"
    assert all(len(n) == 3 and all(isinstance(v, int) for v in n) for n in doc["notes"])
    primer_steps = 4 * 12
    check_valid(doc, primer_steps)
    assert len(doc["influence"]) == len(doc["notes"]) - doc["primer_notes"] > 0
    # the continuation is the one `generate` samples with the same seed
    from engine.data.primer import load_primer_melody, take_primer
    from engine.music.midi_io import ExtractSettings
    from engine.training.checkpoint import load_model

    loaded = load_model(root / "run", "transformer")
    opening = take_primer(load_primer_melody(str(primer), settings=ExtractSettings(min_bars=1)), 4)
    expected = generate(loaded.model, opening, SampleSettings(bars=3, seed=5), CFG)[0]
    new = [[o - primer_steps, p, d] for o, p, d in doc["notes"] if o >= primer_steps]
    assert new == expected.note_array()[: len(new)].tolist()
    assert [n[0] for n in new] == [n.onset for n in expected.notes]


def run_cli(*args) -> int:
    from main import main

    return main(["influence", *map(str, args)])


def test_cli_table_shows_each_new_note_with_its_sources_and_the_mean_distance(influence_run, capsys):
    root, primer = influence_run
    assert run_cli("--run", root / "run", "--model", "lstm", "--primer", primer, "--primer-bars", 4, "--bars", 2) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert rows and all("@" in line for line in rows)  # every new note names sources and how far back
    assert "lstm (gradient): mean influence distance" in out and "bars over" in out


@pytest.mark.parametrize(
    "extra, words",
    [
        (("--bars", 0), "--bars must be a whole number from 1 to 64"),
        (("--bars", 65), "--bars must be a whole number from 1 to 64"),
        (("--primer-bars", 0), "--primer-bars must be a whole number from 1"),
        (("--primer-bars", 20), "needs 20 bars"),
        (("--seed", 2**64), "--seed must be a whole number from 0 to"),
        (("--method", "attention"), "the lstm model has no attention weights"),
    ],
)
def test_cli_bad_options_are_one_clear_error(influence_run, capsys, extra, words):
    root, primer = influence_run
    assert run_cli("--run", root / "run", "--model", "lstm", "--primer", primer, "--bars", 2, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and words in err and "Traceback" not in err


def test_cli_bad_run_as_a_subprocess_exits_2_with_one_line(influence_run):
    root, _ = influence_run
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "influence", "--run", str(root / "nothing"), "--model", "gru"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().startswith("error:") and "nothing" in proc.stderr and "Traceback" not in proc.stderr
