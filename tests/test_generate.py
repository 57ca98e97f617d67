"""Sampling: seeds, temperature, top-k / top-p, PAD, cancel, bad settings, primers, real tiny models."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from engine.core.errors import UserError
from engine.data.primer import load_primer_melody, take_primer
from engine.generation.generate import GenerationCancelled, SampleSettings, generate, sample_tokens
from engine.music.melody import Melody, Note
from engine.music.tokens import HOLD, PAD, TokenConfig, encode

CFG = TokenConfig()
V = CFG.vocab_size


class BigramModel(nn.Module):
    """A stand-in model with known next-token logits: row `prev` of a table. No prime(): the primer
    goes through step() one token at a time."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table.float())
        self.window = 1

    def forward(self, tokens):
        return self.table[tokens]

    def init_state(self, batch, device=None):
        return None

    def step(self, tokens, state):
        return self.table[tokens], state


def scale_primer(bars=2, numerator=4, denominator=4, tempo=96.0, key=7) -> Melody:
    steps = bars * (numerator * 16 // denominator)
    notes = tuple(Note(i * 4, 60 + (i * 2) % 12, 3) for i in range(steps // 4))
    return Melody(notes, steps, numerator, denominator, tempo, key, tune_id="t1", title="Scale")


def random_table(seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(V, V, generator=g) * 3


def test_same_seed_same_tokens_and_other_seed_differs():
    model = BigramModel(random_table())
    primer = encode(scale_primer(), CFG)
    s = SampleSettings(bars=4, variations=3, seed=7)
    a = sample_tokens(model, primer, 64, s)
    b = sample_tokens(model, primer, 64, s)
    c = sample_tokens(model, primer, 64, replace(s, seed=8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the variations of one batch are different melodies, not copies
    assert not torch.equal(a[0], a[1])


def test_temperature_near_zero_follows_the_most_likely_path():
    table = random_table(1)
    model = BigramModel(table)
    primer = encode(scale_primer(), CFG)
    out = sample_tokens(model, primer, 40, SampleSettings(temperature=1e-4, variations=2, seed=3))
    masked = table.clone()
    masked[:, PAD] = -float("inf")
    expected, prev = [], int(primer[-1])
    for _ in range(40):
        prev = int(torch.argmax(masked[prev]))
        expected.append(prev)
    assert out[0].tolist() == expected
    assert out[1].tolist() == expected


def test_a_batch_of_primers_continues_each_primer_in_its_own_rows():
    """evaluate feeds every primer of one meter at once: rows i * variations + v belong to primer i."""
    table = random_table(2)
    model = BigramModel(table)
    first = encode(scale_primer(), CFG)
    second = first.copy()
    second[-1] = first[-1] + 1  # another last token: the bigram path differs from the first step
    argmax = SampleSettings(temperature=1e-4, variations=2, seed=0)
    batch = sample_tokens(model, np.stack([first, second]), 30, argmax)
    assert batch.shape == (4, 30)
    assert torch.equal(batch[0], sample_tokens(model, first, 30, argmax)[0])
    assert torch.equal(batch[2], sample_tokens(model, second, 30, argmax)[0])
    assert torch.equal(batch[0], batch[1]) and not torch.equal(batch[1], batch[2])
    # one primer as a 1-row batch is the same call as the 1-D primer `generate` makes
    s = SampleSettings(variations=3, seed=11)
    assert torch.equal(sample_tokens(model, first[None, :], 50, s), sample_tokens(model, first, 50, s))


def test_top_p_never_samples_outside_the_nucleus_and_top_k_one_is_argmax():
    # Every row: token 10 has p=0.5, token 11 p=0.3, token 12 p=0.15, the rest share 0.05.
    probs = torch.full((V,), 0.05 / (V - 3))
    probs[10], probs[11], probs[12] = 0.5, 0.3, 0.15
    model = BigramModel(probs.log().expand(V, V).clone())
    primer = encode(scale_primer(), CFG)
    out = sample_tokens(model, primer, 256, SampleSettings(top_p=0.7, variations=8, seed=0))
    seen = set(out.flatten().tolist())
    assert seen == {10, 11}  # the nucleus of 0.7 is {0.5, 0.3}; both are drawn, nothing else
    wide = sample_tokens(model, primer, 256, SampleSettings(top_p=1.0, variations=8, seed=0))
    assert len(set(wide.flatten().tolist())) > 3  # without the cut the tail does get sampled
    k1 = sample_tokens(model, primer, 64, SampleSettings(top_k=1, variations=2, seed=0))
    assert set(k1.flatten().tolist()) == {10}


def test_pad_is_never_sampled_even_when_the_model_prefers_it():
    table = torch.zeros(V, V)
    table[:, PAD] = 5.0
    model = BigramModel(table)
    primer = encode(scale_primer(), CFG)
    for settings in (SampleSettings(variations=4), SampleSettings(temperature=1e-5)):
        out = sample_tokens(model, primer, 128, settings)
        assert (out != PAD).all()


@pytest.mark.parametrize(
    "settings, words",
    [
        (SampleSettings(bars=0), "bars"),
        (SampleSettings(bars=100000), "bars"),
        (SampleSettings(temperature=0), "temperature"),
        (SampleSettings(temperature=-1), "temperature"),
        (SampleSettings(top_p=0), "top-p"),
        (SampleSettings(top_p=1.5), "top-p"),
        (SampleSettings(top_k=-2), "top-k"),
        (SampleSettings(variations=0), "variations"),
    ],
)
def test_bad_settings_get_a_clear_error(settings, words):
    with pytest.raises(UserError, match=words):
        generate(BigramModel(random_table()), scale_primer(), settings, CFG)


def test_cancel_stops_generation_cleanly():
    model = BigramModel(random_table())
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()  # the user presses Stop after the first progress report

    with pytest.raises(GenerationCancelled):
        generate(model, scale_primer(), SampleSettings(bars=16), CFG, cancel=cancel, progress=progress)
    assert seen == [64]


@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8)])
def test_continuations_keep_the_primer_meter_tempo_and_key(meter):
    primer = scale_primer(2, *meter, tempo=132.0, key=21)
    out = generate(BigramModel(random_table()), primer, SampleSettings(bars=3, variations=2), CFG)
    assert len(out) == 2
    for melody in out:
        assert (melody.numerator, melody.denominator) == meter
        assert melody.tempo_qpm == 132.0 and melody.key_number == 21
        assert melody.n_steps == 3 * primer.steps_per_bar
        assert all(CFG.min_pitch <= n.pitch <= CFG.max_pitch for n in melody.notes)
        assert len(melody.meta["tokens"]) == melody.n_steps


@pytest.mark.parametrize("key", ["rnn", "lstm", "gru", "attention", "transformer"])
def test_every_tiny_model_generates_reproducibly(key):
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(key, "tiny", V)
    primer = scale_primer(4)
    s = SampleSettings(bars=6, variations=2, seed=5, top_p=0.95)  # 96 steps: past the tiny window
    a = generate(model, primer, s, CFG)
    b = generate(model, primer, s, CFG)
    assert [m.notes for m in a] == [m.notes for m in b]
    assert all(m.n_steps == 96 for m in a)
    tokens = np.stack([m.meta["tokens"] for m in a])
    assert ((tokens >= HOLD) & (tokens < V)).all()
    assert model.training  # generation leaves the model's mode as it found it


def test_primer_takes_the_first_bars_and_rejects_a_short_tune():
    tune = scale_primer(bars=5)
    primer = take_primer(tune, 4)
    assert primer.n_steps == 64 and all(n.onset < 64 for n in primer.notes)
    with pytest.raises(UserError, match=r"Scale|t1") as err:
        take_primer(tune, 8)
    assert "8 bars" in str(err.value)


def test_primer_from_a_midi_file_and_from_a_corpus_like_lookup(tmp_path):
    from engine.music.midi_io import melody_to_pretty_midi

    path = tmp_path / "tune.mid"
    melody_to_pretty_midi(scale_primer(bars=8, tempo=100.0), 73, "tune").write(str(path))
    melody = load_primer_melody(str(path))
    assert melody.n_bars >= 8 and melody.notes[0].pitch == 60
    primer = take_primer(melody, 8, str(path))
    assert primer.n_steps == 128

    class FakeCorpus:
        def find(self, spec):
            return tune if spec == "t1" else None

        def split(self, name):
            return [tune]

    tune = scale_primer(6)
    assert load_primer_melody("t1", lambda: FakeCorpus()) is tune
    assert load_primer_melody(None, lambda: FakeCorpus()) is tune
    with pytest.raises(UserError, match="no tune"):
        load_primer_melody("nope", lambda: FakeCorpus())
    with pytest.raises(UserError, match=r"missing\.mid"):
        load_primer_melody(str(tmp_path / "missing.mid"))


def test_the_default_primer_is_the_first_test_tune_by_title_long_enough_for_the_primer_twice():
    from dataclasses import replace

    from engine.data.primer import default_primer, primer_choices

    class Corpus:
        melodies = ()

        def split(self, name):
            return tunes if name == "test" else []

    tunes = [replace(scale_primer(bars), tune_id=tid, title=title)
             for bars, tid, title in ((20, "a", "Zebra"), (12, "b", "Apple"), (16, "c", "banana"), (30, "d", "Cherry"))]
    assert [m.tune_id for m in primer_choices(Corpus())] == ["b", "c", "d", "a"]
    assert load_primer_melody(None, lambda: Corpus()).tune_id == "c"  # Apple is too short for 8 + 8 bars
    assert load_primer_melody(None, lambda: Corpus(), primer_bars=12).tune_id == "d"
    assert default_primer(primer_choices(Corpus()), primer_bars=40).tune_id == "b"  # none is long enough: the first
    assert default_primer([]) is None


def test_a_primer_outside_the_vocabulary_is_folded_by_octaves_not_refused():
    from engine.generation.generate import fold_into_range

    primer = Melody((Note(0, 40, 4), Note(8, 100, 4)), 16)
    assert [n.pitch for n in fold_into_range(primer, CFG).notes] == [52, 88]
    out = generate(BigramModel(random_table()), primer, SampleSettings(bars=1), CFG)
    assert out[0].n_steps == 16


# ------------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory holding an untrained tiny LSTM, and a 3/4 primer file in G major at 132 qpm."""
    import sys
    from pathlib import Path

    from engine.models.registry import build_model
    from engine.training.checkpoint import ModelRecord, save_model
    from engine.training.train_config import TrainConfig

    sys.path.insert(0, str(Path(__file__).parent))
    import midi_factory

    root = tmp_path_factory.mktemp("gen")
    torch.manual_seed(0)
    model = build_model("lstm", "tiny", V)
    with pytest.MonkeyPatch.context() as mp:  # durability is not under test; fsync takes seconds here
        mp.setattr("os.fsync", lambda fd: None)
        save_model(root / "run" / "lstm", model, ModelRecord("lstm", model.config, CFG, TrainConfig(preset="tiny"), 0))
    primer = midi_factory.simple_tune(root / "jig.mid", bars=10, meter=(3, 4), seed=2,
                                      tempos=((0, 132.0),), key="G")
    return root, primer


def run_cli(*args) -> int:
    from main import main

    return main(["generate", *map(str, args)])


def test_cli_writes_numbered_variations_that_keep_the_primer_meter_tempo_and_key(tiny_run, capsys):
    import pretty_midi

    root, primer = tiny_run
    out = root / "song.mid"
    code = run_cli("--run", root / "run", "--model", "lstm", "--primer", primer, "--primer-bars", 4,
                   "--bars", 3, "--variations", 2, "--seed", 1, "--out", out, "--wav", root / "song.wav")
    assert code == 0
    err = capsys.readouterr().err
    assert "FluidSynth" in err or "built-in synth" in err  # the CLI says which synth it used
    for i in (1, 2):
        pm = pretty_midi.PrettyMIDI(str(root / f"song-{i}.mid"))
        assert [(t.numerator, t.denominator) for t in pm.time_signature_changes] == [(3, 4)]
        assert pm.get_tempo_changes()[1][0] == pytest.approx(132.0, rel=1e-5)
        assert [k.key_number for k in pm.key_signature_changes] == [7]
        assert pm.instruments[0].name == "LSTM" and pm.instruments[0].program == 73
        assert (root / f"song-{i}.wav").stat().st_size > 44
    assert not out.exists()  # with variations the files are numbered, never the bare name


@pytest.mark.parametrize(
    "extra, words",
    [
        (("--bars", 0), "bars"),
        (("--bars", 100000), "bars"),
        (("--temperature", 0), "temperature"),
        (("--primer-bars", 20), "needs 20 bars"),
        (("--out", "/nonexistent-folder/x.mid"), "does not exist"),
    ],
)
def test_cli_bad_input_is_one_clear_error_and_no_file(tiny_run, capsys, extra, words):
    root, primer = tiny_run
    out = root / "bad" / "x.mid"
    out.parent.mkdir(exist_ok=True)
    args = ["--run", root / "run", "--model", "lstm", "--primer", primer, "--bars", 2, "--out", out, *extra]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and words in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_cli_names_a_missing_run_and_a_primer_file_without_a_melody(tiny_run, capsys):
    root, _ = tiny_run
    assert run_cli("--run", root / "nothing", "--model", "lstm", "--out", root / "y.mid") == 2
    assert "nothing" in capsys.readouterr().err
    junk = root / "junk.mid"
    junk.write_bytes(b"not a midi file at all")
    assert run_cli("--run", root / "run", "--model", "lstm", "--primer", junk, "--out", root / "y.mid") == 2
    assert "junk.mid" in capsys.readouterr().err
    assert not (root / "y.mid").exists()


def test_run_pretrained_means_the_repo_pretrained_folder(capsys):
    from pathlib import Path

    from engine.training.checkpoint import resolve_run_dir

    repo = Path(__file__).resolve().parents[1]
    assert resolve_run_dir("pretrained") == repo / "pretrained"
    assert resolve_run_dir("runs/a") == Path("runs/a")


@pytest.mark.parametrize("primer_len", [10, 64, 130])  # shorter than, equal to, longer than the tiny window
@pytest.mark.parametrize("key", ["attention", "transformer"])
def test_one_pass_prime_leaves_the_state_stepping_would(key, primer_len):
    """The attention models keep their window in ring buffers; prime() fills them in one pass."""
    from engine.models.base import SequenceModel
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(key, "tiny", V).eval()
    x = torch.randint(1, V, (2, primer_len + 40))
    with torch.no_grad():
        full = model(x)
        fast, state = model.prime(x[:, :primer_len])
        slow, _ = SequenceModel.prime(model, x[:, :primer_len])  # token by token
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)
        after = []
        for t in range(primer_len, x.shape[1]):
            logits, state = model.step(x[:, t], state)
            after.append(logits)
    torch.testing.assert_close(torch.stack(after, 1), full[:, primer_len:], atol=1e-4, rtol=0)


@pytest.mark.parametrize("key", ["gru", "lstm", "ssm", "mingru"])
def test_variations_continue_from_copies_of_one_primed_state(key):
    """A stateful model primes each distinct primer once and its variations start from copies of that state
    (generate's prefill): the copies are the state that priming every variation's row would have given,
    row by row, and the next step from them gives the same logits."""
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(key, "tiny", V).eval()
    primers = torch.randint(1, V, (2, 37))
    step_tokens = torch.randint(1, V, (6,))
    with torch.inference_mode():
        once_logits, once = model.prime(primers, model.init_state(2))
        each_logits, each = model.prime(primers.repeat_interleave(3, dim=0), model.init_state(6))
        copied = model.repeat_state(once, 3)
        torch.testing.assert_close(once_logits.repeat_interleave(3, dim=0), each_logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(copied, each, atol=1e-5, rtol=0)  # a tensor or a tuple of them, row by row
        torch.testing.assert_close(model.step(step_tokens, copied)[0], model.step(step_tokens, each)[0], atol=1e-5,
                                   rtol=0)
