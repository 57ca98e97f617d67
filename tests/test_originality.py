"""The originality meter (issue 27) on known answers, through `main.py originality` and `generate --json`
with the bundled models and corpus, and the report's section on stand-in continuations.

Known answers: a continuation cut from a training tune is copied throughout and names that tune, in any
key; a continuation that only restates its primer copies nothing (even when the primer is itself a
training tune); a random melody copies next to nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import midi_factory

from engine.music.melody import Melody, Note

PRIMER, CUT = 8, 16  # bars


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, corpus_cache):
    """The bundled corpus (the pretrained run's) loaded through a test cache folder, and a training tune
    with at least PRIMER + CUT full bars."""
    before = os.environ.get("MELODY_MEMORY_CACHE")
    os.environ["MELODY_MEMORY_CACHE"] = str(corpus_cache)
    from engine.data.corpus import load_corpus
    from engine.data.span_index import training_indices

    corpus = load_corpus()
    train = [corpus.melodies[i] for i in training_indices(corpus)]
    tune = next(m for m in sorted(train, key=lambda m: m.tune_id) if m.n_steps // m.steps_per_bar >= PRIMER + CUT)
    yield corpus, tune, tmp_path_factory.mktemp("originality")
    if before is None:
        os.environ.pop("MELODY_MEMORY_CACHE", None)
    else:
        os.environ["MELODY_MEMORY_CACHE"] = before


def random_melody(bars: int, spb: int, seed: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    notes, step = [], 0
    while step < bars * spb:
        duration = min(int(rng.choice([1, 2, 3, 4, 6])), bars * spb - step)
        notes.append((step, int(rng.integers(60, 84)), duration))
        step += duration
    return notes


def write_piece(path: Path, tune: Melody, primer_notes, continuation: Melody, shift: int = 0) -> Path:
    """A MIDI file of `primer_notes` (PRIMER bars) then `continuation`, in the tune's meter, moved by `shift`."""
    spb = tune.steps_per_bar
    notes = [(o, p + shift, d) for o, p, d in primer_notes]
    notes += [(n.onset + PRIMER * spb, n.pitch + shift, n.duration) for n in continuation.notes]
    return midi_factory.write(path, midi_factory.track(notes, name="Melody"),
                              conductor_track=midi_factory.conductor(meters=((0, tune.numerator, tune.denominator),)))


def cli(*args) -> int:
    from main import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def measured(bundled):
    """`originality --run pretrained --json` on four files: a cut, the cut transposed, a restated primer,
    a random melody."""
    from engine.data.span_index import training_indices

    _, tune, folder = bundled
    spb = tune.steps_per_bar
    stranger = random_melody(PRIMER, spb, seed=1)  # a primer the training tunes do not hold
    cut = tune.bars(PRIMER, PRIMER + CUT)
    opening = tune.bars(0, PRIMER)
    # an AABB training tune whose A part is the primer: the continuation plays the A part three times, so each
    # seam (its last bar, then its first) is a two-bar span the training tune itself holds
    corpus = bundled[0]
    aabb = next(m for m in (corpus.melodies[i] for i in training_indices(corpus))
                if m.n_bars >= 2 * PRIMER and m.bars(0, PRIMER).notes and m.bars(PRIMER, 2 * PRIMER).notes == tuple(
                    Note(n.onset, n.pitch, n.duration) for n in m.bars(0, PRIMER).notes))
    a_part = aabb.bars(0, PRIMER)
    looped = Melody(tuple(Note(n.onset + k * PRIMER * aabb.steps_per_bar, n.pitch, n.duration)
                          for k in range(3) for n in a_part.notes), 3 * PRIMER * aabb.steps_per_bar,
                    aabb.numerator, aabb.denominator)
    files = {
        "cut": write_piece(folder / "cut.mid", tune, stranger, cut),
        "transposed": write_piece(folder / "transposed.mid", tune, stranger, cut, shift=5),
        "restated": write_piece(folder / "restated.mid", tune, [(n.onset, n.pitch, n.duration) for n in opening.notes],
                                opening),
        "looped": write_piece(folder / "looped.mid", aabb, [(n.onset, n.pitch, n.duration) for n in a_part.notes],
                              looped),
        "random": midi_factory.write(folder / "random.mid", midi_factory.track(random_melody(PRIMER + 32, 16, seed=2))),
    }
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli("originality", "--run", "pretrained", *files.values(), "--json")
    assert code == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    return tune, {name: m for name, m in zip(files, doc["melodies"], strict=True)}, doc


def test_a_continuation_cut_from_a_training_tune_is_all_copied_and_names_the_tune(measured):
    tune, by_name, _ = measured
    cut = by_name["cut"]
    assert cut["bars"] == CUT and cut["spans"] >= CUT - 3  # nearly every span has notes enough to be scored
    assert cut["copy_rate"] == 1.0 and cut["copied_spans"] == cut["spans"]
    assert cut["longest_run_bars"] == CUT  # replayed bar for bar from one tune
    run = cut["runs"][0]
    assert run["start_bar"] == 0 and run["bars"] == CUT
    assert {"tune_id": tune.tune_id, "title": tune.title, "bar": PRIMER} in [
        {k: t[k] for k in ("tune_id", "title", "bar")} for t in run["tunes"]]
    assert tune.tune_id in [t["tune_id"] for t in cut["tunes"]]
    assert cut["copied_bars"] == list(range(CUT))


def test_a_transposed_copy_is_still_found(measured):
    _, by_name, _ = measured
    cut, moved = by_name["cut"], by_name["transposed"]
    assert moved["copy_rate"] == 1.0 and moved["longest_run_bars"] == CUT
    assert moved["runs"] == cut["runs"] and moved["tunes"] == cut["tunes"]


def test_restating_the_primer_is_recall_not_copying(measured):
    """The primer here is the training tune's own opening: every span of the continuation is in the
    training tunes, and none is counted, because each restates a span of the primer."""
    _, by_name, _ = measured
    restated = by_name["restated"]
    assert restated["spans"] >= PRIMER - 3
    assert restated["copy_rate"] == 0.0 and restated["primer_spans"] == restated["spans"]
    assert restated["longest_run_bars"] == 0 and restated["runs"] == [] and restated["copied_bars"] == []


def test_playing_the_primer_again_and_again_copies_nothing(bundled, measured):
    """The primer is the A part of an AABB training tune, and the continuation plays it three times: every span
    the continuation holds, the seams included (the A part's last bar, then its first), is in that training tune,
    and none is a copy: each restates the opening it was given."""
    from engine.data.span_index import span_index_for
    from engine.music.span_keys import span_keys

    looped = measured[1]["looped"]
    assert looped["bars"] == 3 * PRIMER and looped["spans"] >= 3 * PRIMER - 4
    assert looped["copy_rate"] == 0.0 and looped["longest_run_bars"] == 0 and looped["copied_bars"] == []
    assert looped["primer_spans"] == looped["spans"]
    # what makes this a test: the seams are spans of the training tunes (as the tune plays its A part twice)
    corpus, _, folder = bundled
    from engine.music.midi_io import ExtractSettings, load_midi_melodies

    piece = load_midi_melodies(folder / "looped.mid", ExtractSettings(min_bars=1))[0]
    keys, counts = span_keys(piece.note_array(), piece.steps_per_bar, piece.n_bars)
    seams = [keys[b] for b in (2 * PRIMER - 1, 3 * PRIMER - 1) if counts[b] >= 3]
    lo, hi = span_index_for(corpus).find(seams)
    assert len(seams) == 2 and (hi > lo).all()


def test_a_random_melody_copies_next_to_nothing(measured):
    _, by_name, _ = measured
    rand = by_name["random"]
    assert rand["spans"] >= 28
    assert rand["copy_rate"] < 0.05 and rand["longest_run_bars"] <= 2


def test_the_cli_json_names_the_run_corpus_and_every_figure(measured):
    _, by_name, doc = measured
    assert doc["run"] == "pretrained" and doc["primer_bars"] == PRIMER and doc["skipped"] == []
    corpus = doc["corpus"]
    assert corpus["matches_run"] is True  # the bundled models were trained on this corpus
    assert corpus["training_tunes"] > 3000 and corpus["indexed_spans"] > 50_000
    for entry in by_name.values():
        assert {"path", "index", "title", "meter", "steps_per_bar", "primer_bars", "bars", "spans", "copied_spans",
                "primer_spans", "copy_rate", "longest_run_bars", "copied_bars", "runs", "n_tunes", "tunes"} <= set(entry)
        for run in entry["runs"]:
            assert {"start_bar", "bars", "n_tunes", "tunes"} == set(run)
            assert all({"tune_id", "title", "collection", "source", "path", "bar"} == set(t) for t in run["tunes"])
        for tune in entry["tunes"]:  # the title and the source file, as the corpus manifest records them
            assert tune["title"] and Path(tune["source"]).is_file() and tune["source"] == tune["path"]


def test_the_text_output_says_which_bars_come_from_which_tune(bundled, measured, capsys):
    tune, _, _ = measured
    _, _, folder = bundled
    assert cli("originality", "--run", "pretrained", folder / "cut.mid") == 0
    out = capsys.readouterr().out
    assert f"{CUT} bars after {PRIMER} primer bars: " in out and "copied (100.0%)" in out
    assert f"bars {PRIMER + 1}-{PRIMER + CUT}: " in out and tune.tune_id in out and f"from its bar {PRIMER + 1}" in out


def test_bad_input_is_one_error_line_naming_the_file(bundled, measured, tmp_path, capsys):
    _, _, folder = bundled  # `measured` writes cut.mid there: a valid file, so each error names the bad part
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not a MIDI file")
    assert cli("originality", "--run", tmp_path / "no-run", folder / "cut.mid") == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'no-run'}: no such run directory")
    assert cli("originality", "--run", tmp_path, folder / "cut.mid") == 2
    assert "not a run" in capsys.readouterr().err
    assert cli("originality", "--run", "pretrained", broken) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(broken) in err and "Traceback" not in err
    assert cli("originality", "--run", "pretrained", "--primer-bars", "-1", folder / "cut.mid") == 2
    assert "--primer-bars" in capsys.readouterr().err


def test_generate_json_carries_each_variations_originality(bundled, tmp_path, capsys):
    import torch

    from engine.models.registry import build_model
    from engine.music.tokens import TokenConfig
    from engine.training.checkpoint import ModelRecord, save_model
    from engine.training.train_config import TrainConfig

    corpus, _, _ = bundled
    key = "lstm"
    torch.manual_seed(0)
    model = build_model(key, "tiny", TokenConfig().vocab_size)
    with pytest.MonkeyPatch.context() as mp:  # durability is not under test
        mp.setattr("os.fsync", lambda fd: None)
        save_model(tmp_path / "run" / key, model, ModelRecord(key, model.config, TokenConfig(),
                                                              TrainConfig(preset="tiny"), 0, corpus=corpus.fingerprint))
    code = cli("generate", "--run", tmp_path / "run", "--model", key, "--bars", 4, "--variations", 2,
               "--out", tmp_path / "g.mid", "--json")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    files = json.loads(captured.out)["files"]
    assert len(files) == 2
    for entry in files:
        figures = entry["originality"]
        assert figures["bars"] == 4 and figures["primer_bars"] == PRIMER
        assert figures["copy_rate"] is None or 0.0 <= figures["copy_rate"] <= 1.0
        assert figures["longest_run_bars"] in (0, *range(2, 5))


# --- the report's section ------------------------------------------------------------------------------


class StandInCorpus:
    """What the evaluation hands the meter: melodies with their split (random 4/4 tunes)."""

    def __init__(self):
        rng = np.random.default_rng(3)
        self.melodies = []
        for i in range(24):
            split = "test" if i % 2 else "train"
            notes = tuple(Note(*n) for n in random_melody(40, 16, seed=int(rng.integers(1 << 30))))
            self.melodies.append(Melody(notes, 40 * 16, tune_id=f"{split}{i:02d}", title=f"Tune {i}",
                                        meta={"split": split}))
        self.melodies.append(Melody(self.melodies[0].notes, 40 * 16, tune_id="valid", meta={"split": "valid"}))
        # one test tune borrows bars 8-23 of a training tune: the human baseline must find it
        own, lent = self.melodies[1], self.melodies[0]
        notes = [n for n in own.notes if not 8 * 16 <= n.onset < 24 * 16]
        notes += [n for n in lent.notes if 8 * 16 <= n.onset < 24 * 16]
        self.melodies[1] = Melody(tuple(sorted(notes, key=lambda n: n.onset)), 40 * 16, tune_id=own.tune_id,
                                  meta=own.meta)

    def split(self, name):
        return [m for m in self.melodies if m.meta["split"] == name]


def test_the_report_section_reads_copying_against_the_human_baseline(tmp_path):
    """A stand-in model that plays training tunes copies everything at T 1.0 and, playing random notes,
    nothing at 0.7; the human baseline (random tunes) borrows nothing; n is the primers; the strict reader
    takes the section and refuses a share above 1; the plot is written."""
    from engine.core.errors import UserError
    from engine.evaluation.continuations import make_cases
    from engine.evaluation.originality import OriginalityMeter
    from engine.evaluation.report_file import check_report
    from engine.evaluation.report_plots import _originality_plot
    from engine.evaluation.settings import EvalSettings

    corpus = StandInCorpus()
    settings = EvalSettings(primers=None, primer_bars=PRIMER, bars=16, samples=2, min_n=3, bootstrap=200)
    cases = make_cases(corpus.split("test"), settings)
    train = corpus.split("train")
    meter = OriginalityMeter(corpus, cases, settings)
    meter.observe("1.0", "copier", [[train[i].bars(4, 20), train[(i + 1) % len(train)].bars(10, 26)] for i in range(len(cases))])
    meter.observe("0.7", "copier", [[Melody(tuple(Note(*n) for n in random_melody(16, 16, seed=50 + i)), 256)]
                                    for i in range(len(cases))])
    section = meter.report()
    assert set(section) == {"copier", "human"} and set(section["human"]) == {"0.7", "1.0"}
    copier = section["copier"]["1.0"]
    assert copier["copy_rate"]["mean"] == 1.0 and copier["copy_rate"]["n"] == len(cases) == 12
    assert copier["longest_run_bars"]["max"] == 16 and copier["longest_run_bars"]["n_continuations"] == 24
    # the distribution itself: every continuation of the copier replays 16 bars of one tune
    assert copier["longest_run_bars"]["histogram"] == {"bars": [16], "continuations": [24]}
    assert copier["tunes"][0]["tune_id"].startswith("train")
    assert section["copier"]["0.7"]["copy_rate"]["mean"] < 0.05
    human = section["human"]["1.0"]  # one real continuation in 12 is a borrowed passage, the others borrow nothing
    assert human == section["human"]["0.7"] and human["copy_rate"]["n"] == 12
    assert human["copy_rate"]["mean"] == pytest.approx(1 / 12, abs=1e-6) and human["longest_run_bars"]["max"] == 16
    assert human["tunes"][0]["tune_id"] == "train00"
    human_runs = human["longest_run_bars"]["histogram"]
    assert dict(zip(human_runs["bars"], human_runs["continuations"])) == {0: 11, 16: 1}
    assert meter.settings_entry()["training_tunes"] == 12
    # the same baseline for the app, from the engine's one call
    from engine.metrics.originality import human_baseline

    baseline = human_baseline(meter.index, corpus.split("test"), PRIMER, 16, min_n=3)
    assert {k: baseline["copy_rate"][k] for k in ("mean", "n")} == {k: human["copy_rate"][k] for k in ("mean", "n")}

    doc = {"per_bar": {}, "settings": {"bars": 16, "min_n": 3}, "models": ["copier"], "originality": section}
    check_report(doc, "r.json")
    # summary.md (and the README's results) reads it: copy rate in % and the longest run per temperature, with n
    from engine.evaluation.originality_report import originality_lines

    rows = {line.split(" | ")[0][2:]: line for line in originality_lines(doc) if line.startswith("| ")}
    assert rows["source"].startswith("| source | copy rate T 1.0 (%) | copy rate T 0.7 (%) | longest run T 1.0 |")
    assert rows["copier"].startswith("| copier | 100.00 [100.00, 100.00] | ") and "; max 16 |" in rows["copier"]
    assert rows["copier"].endswith(" | 12 |") and rows["human"].count("8.33 [") == 2
    # the longest-run distribution: all 24 continuations at 16 bars at T 1.0; the 12 of random notes at 0.7 copy nothing
    assert "- copier: T 1.0 16: 24; T 0.7 0: 12" in originality_lines(doc)
    assert "- human: T 1.0 0: 11, 16: 1; T 0.7 0: 11, 16: 1" in originality_lines(doc)
    doc["originality"]["copier"]["1.0"]["longest_run_bars"]["histogram"]["bars"].append(3)
    with pytest.raises(UserError, match=r"longest_run_bars.histogram must be a table of bars and continuations"):
        check_report(doc, "r.json")
    doc["originality"]["copier"]["1.0"]["longest_run_bars"]["histogram"]["bars"].pop()
    doc["originality"]["copier"]["1.0"]["copy_rate"]["mean"] = 1.5
    with pytest.raises(UserError, match=r"r.json: originality.copier.1.0.copy_rate.mean"):
        check_report(doc, "r.json")
    doc["originality"]["copier"]["1.0"]["copy_rate"]["mean"] = 1.0

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = []

    def save(fig, name):
        fig.savefig(tmp_path / name)
        plt.close(fig)
        saved.append(name)

    _originality_plot(plt, doc, save)
    from engine.evaluation.originality_plot import at_least, longest_run_plot

    longest_run_plot(plt, doc, save)
    assert saved == ["originality_copy_rate.png", "originality_longest_runs.png"]
    assert all((tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in saved)
    lengths, share, total = at_least(human_runs)  # what the plot draws: the tail of the distribution
    assert total == 12 and share[0] == share[15] == pytest.approx(1 / 12) and len(lengths) == 16


# --- the keys and the index ----------------------------------------------------------------------------


def test_span_keys_ignore_the_key_and_keep_the_rhythm_and_the_meter():
    from engine.music.span_keys import span_keys, span_keys_flat

    tune = np.array(random_melody(6, 16, seed=7))
    keys, counts = span_keys(tune, 16, 6)
    assert len(keys) == 5 and counts.sum() > 0
    moved = tune + np.array([0, 7, 0])
    assert (span_keys(moved, 16, 6)[0] == keys).all()  # any key, any octave
    late = tune + np.array([4, 0, 0])  # a beat later: other spans, none the same
    assert not np.isin(span_keys(late, 16, 7)[0], keys).any()
    assert not np.isin(span_keys(tune, 12, 8)[0], keys).any()  # the same notes on another bar grid
    # many melodies at once give each melody's own keys
    other = np.array(random_melody(4, 12, seed=8))
    flat, _, offsets = span_keys_flat(np.concatenate([tune, other]), [0, len(tune), len(tune) + len(other)], [16, 12], [6, 4])
    assert (flat[offsets[0]:offsets[1]] == keys).all() and (flat[offsets[1]:] == span_keys(other, 12, 4)[0]).all()


def test_the_index_is_cached_with_the_corpus_and_never_read_stale(bundled, tmp_path):
    from engine.data.span_index import span_index_for, training_indices

    corpus, _, _ = bundled
    built = span_index_for(corpus, cache_dir=tmp_path)
    again = span_index_for(corpus, cache_dir=tmp_path)
    assert (built.cache_status, again.cache_status) == ("built", "hit")
    assert (again.keys == built.keys).all() and (again.tune == built.tune).all() and (again.bar == built.bar).all()
    assert again.tunes == built.tunes and len(built.tunes) == len(training_indices(corpus))
    fewer = training_indices(corpus)[:100]  # other tunes indexed: another entry, not the cached one
    assert span_index_for(corpus, fewer, cache_dir=tmp_path).cache_status == "built"
    for entry in tmp_path.glob("*.npz"):
        entry.write_bytes(b"damaged")
    damaged = span_index_for(corpus, cache_dir=tmp_path)
    assert damaged.cache_status == "built" and (damaged.keys == built.keys).all()
