"""The controls of the sampled per-bar readings (issue 24, docs/design.md section 5 "Controls of the sampled
per-bar measures"), on hand-made melodies and stand-in models whose answers are known by construction, and
one quick evaluation of a tiny run through the command line that checks the report's keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from engine.evaluation.settings import EvalSettings
from engine.music.melody import Melody, Note
from engine.music.tokens import TokenConfig, encode

S = 16  # 4/4 on the 16th grid


def melody(bars: list[list[tuple[int, int, int]]], tune_id: str, numerator: int = 4, denominator: int = 4) -> Melody:
    """A melody from bars of (onset in the bar, pitch, duration) on the meter's grid."""
    spb = numerator * 16 // denominator
    notes = tuple(Note(b * spb + on, p, d) for b, bar in enumerate(bars) for on, p, d in bar)
    return Melody(notes=notes, n_steps=len(bars) * spb, numerator=numerator, denominator=denominator,
                  tune_id=tune_id, title=tune_id)


def quarters(pitches) -> list[tuple[int, int, int]]:
    return [(4 * i, p, 4) for i, p in enumerate(pitches)]


def eighths(pitches) -> list[tuple[int, int, int]]:
    return [(2 * i, p, 2) for i, p in enumerate(pitches)]


# --- 1. the rhythm-matched partner -----------------------------------------------------------------------


def test_the_rhythm_matched_partner_is_the_same_meter_tune_with_the_closest_onset_pattern():
    from engine.metrics.rhythm_floor import rhythm_matched_partner

    primer = melody([quarters([60, 62, 64, 65])] * 2, "a-primer")
    close = melody([quarters([70, 71, 72, 73]), eighths([60] * 8)], "b-close")  # bar 1 the same rhythm, bar 2 not
    same_rhythm = melody([quarters([50, 52, 53, 55])] * 2, "c-same")  # every onset the same, other pitches
    far = melody([eighths([60] * 8)] * 2, "d-far")
    other_meter = melody([[(0, 60, 4), (4, 62, 4), (8, 64, 4)]] * 2, "e-waltz", numerator=3)  # not 4/4: never picked
    test = [primer, close, same_rhythm, far, other_meter]
    for index in range(5):
        assert rhythm_matched_partner(primer, test, 2, seed=0, index=index).tune_id == "c-same"
    # two partners equally close: the seed decides, and each is picked for some primer index
    twin = melody([quarters([40, 41, 42, 43])] * 2, "f-twin")
    picks = {rhythm_matched_partner(primer, [*test, twin], 2, seed=3, index=i).tune_id for i in range(20)}
    assert picks == {"c-same", "f-twin"}
    assert rhythm_matched_partner(primer, [*test, twin], 2, seed=3, index=5).tune_id == \
        rhythm_matched_partner(primer, [*test, twin], 2, seed=3, index=5).tune_id  # seeded: the same again
    assert rhythm_matched_partner(other_meter, test, 2, seed=0, index=0) is None  # alone in its meter


# --- 2. phase-robust theme recall ---------------------------------------------------------------------


def test_a_continuation_one_beat_late_keeps_full_phase_robust_recall_but_low_bar_grid_recall():
    from engine.metrics.bars import bar_sets
    from engine.metrics.phase import beat_steps, phase_theme_recall
    from engine.metrics.table import continuation_metrics

    theme = [eighths([60, 62, 64, 65, 67, 69, 71, 72]), eighths([72, 71, 69, 67, 65, 64, 62, 60])]
    primer = melody(theme, "p").note_array()
    # the theme played twice more, shifted one beat (4 steps) late: every bar straddles two theme bars
    shifted = melody(theme * 2, "c").note_array() + np.array([4, 0, 0])
    n = 4
    tr = continuation_metrics(primer, shifted, S, n, primer_bars=2)["TR"]
    phase = phase_theme_recall(bar_sets(primer, S, 2), shifted, S, n, beat_steps(4, 4))
    assert beat_steps(4, 4) == 4 and beat_steps(6, 8) == 6 and beat_steps(2, 2) == 8 and beat_steps(3, 4) == 4
    assert tr.max() < 0.6  # on the bar grid the restatement looks half forgotten
    assert phase[:3] == pytest.approx(1.0)  # shifted back one beat, each window is a theme bar again
    assert (phase >= tr).all()  # k = 0 is the bar itself


# --- 3. pitch-only recall ---------------------------------------------------------------------------------


def test_pitch_only_recall_ignores_onsets_and_allows_transposition():
    from engine.metrics.pitch_recall import edit_distances, pitch_recall
    from engine.metrics.table import continuation_metrics

    primer = melody([quarters([60, 62, 64, 65])], "p").note_array()
    # the same pitches a fifth up, in a different rhythm (dotted, then eighths)
    moved = melody([[(0, 67, 6), (6, 69, 2), (8, 71, 2), (10, 72, 6)]], "c").note_array()
    assert pitch_recall(primer, moved, S, 1, 1)[0] == pytest.approx(1.0)
    assert continuation_metrics(primer, moved, S, 1, primer_bars=1)["TR"][0] < 0.5  # onsets differ: TR is low
    # one pitch changed out of four: 1 - 1/4; one note dropped: 1 - 1/4 (the longer sequence normalises)
    assert pitch_recall(primer, melody([quarters([67, 69, 70, 72])], "c").note_array(), S, 1, 1)[0] == pytest.approx(0.75)
    assert pitch_recall(primer, melody([quarters([62, 64, 65])], "c").note_array(), S, 1, 1)[0] == pytest.approx(0.75)
    assert pitch_recall(primer, np.zeros((0, 3), dtype=np.int64), S, 1, 1)[0] == 0.0  # an empty bar
    pad = -1000
    d = edit_distances(np.array([[1, 2, 3], [1, 2, pad]]), np.array([3, 2]), np.array([[1, 3, pad], [2, 1, 9]]),
                       np.array([2, 3]))
    assert d.tolist() == [1, 2]  # "123"->"13": one deletion; "12"->"219": insert 2, keep 1, 2 -> 9


# --- 4. paired differences --------------------------------------------------------------------------------


def test_the_paired_interval_finds_a_small_known_difference_that_overlapping_intervals_hide():
    from engine.metrics.paired import paired_windows, source_pairs
    from engine.metrics.stats import scalar_stats

    rng = np.random.default_rng(0)
    primers, bars = 60, 16
    tune_effect = rng.normal(0.5, 0.2, size=(primers, 1))  # how repetitive each tune is: moves both sources
    a = tune_effect + rng.normal(0, 0.01, size=(primers, bars))
    b = tune_effect + rng.normal(0, 0.01, size=(primers, bars)) - 0.02  # b is 0.02 lower in every bar
    b[:5, 8:] = np.nan  # five primers do not reach the last window for b: only pairs count
    figures = paired_windows(a, b, [(0, 8), (8, 16)], n_boot=1000, seed=0, min_n=10)
    assert list(figures) == ["bars 1-8", "bars 9-16"]
    first, last = figures["bars 1-8"], figures["bars 9-16"]
    assert first["n"] == 60 and last["n"] == 55
    for f in (first, last):
        assert 0 < f["lo"] < 0.02 < f["hi"] < 0.03 and f["mean"] == pytest.approx(0.02, abs=0.003)
    alone = [scalar_stats(x[:, :8].mean(axis=1), 1000, 0) for x in (a, b)]
    assert alone[1]["hi"] > alone[0]["lo"]  # the two intervals overlap: they would have said "no difference"
    assert source_pairs(["x", "y", "z"]) == [("x", "y"), ("x", "z"), ("y", "z"), ("x", "human"), ("y", "human"),
                                             ("z", "human")]


# --- 5. distinct-bar rate at matched length ---------------------------------------------------------------


def test_the_matched_distinct_bar_rate_scores_model_and_human_over_the_shorter_length():
    from engine.evaluation.continuations import PrimerCase, score_source
    from engine.evaluation.controls_section import controls_block

    bars = [quarters([60 + i, 62, 64, 65]) for i in range(12)]  # 12 different bars
    tune = melody(bars[:4] + bars, "t")
    settings = EvalSettings(primer_bars=4, bars=12, samples=1, bootstrap=50, min_n=1, probe=None)
    case = PrimerCase(tune, tune.bars(0, 4), None)
    human = tune.bars(4, 10)  # a real continuation of 6 bars, all different: rate 1
    # the model: those 6 bars' first 3 played twice (rate 0.5 over 6 bars), then 6 new bars (over 12: 9/12)
    model = melody(bars[:3] * 2 + bars[6:12], "m")
    lengths = [human.n_bars]
    scores = {"m": score_source([case], [[model]], settings, matched=True, matched_lengths=lengths),
              "human": score_source([case], [[human]], settings, matched=True, matched_lengths=lengths)}
    assert scores["m"].distinct[0] == pytest.approx(9 / 12)  # over all 12 bars it composed
    assert scores["m"].distinct_matched[0] == pytest.approx(3 / 6)  # over the human's 6 bars only
    assert scores["human"].distinct_matched[0] == pytest.approx(1.0)
    block = controls_block({"1.0": scores}, ["m"], "1.0", settings)
    assert block["distinct_bar_rate_matched"]["m"]["mean"] == pytest.approx(0.5)
    assert block["distinct_bar_rate_matched_paired"]["m-human"]["mean"] == pytest.approx(-0.5)


# --- 6. influence references --------------------------------------------------------------------------------


class PreviousToken(nn.Module):
    """Logits depend on the current token only: every note's gradient falls on the step just before its
    onset, which belongs to the previous note (there are no rests)."""

    window = None
    reach = None
    has_attention = False  # the declared interface (engine/models/base.py): gradient influence only

    def __init__(self, vocab: int):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, 8)
        self.embedding_tap = nn.Identity()
        self.out = nn.Linear(8, vocab)

    def forward(self, tokens):
        return self.out(self.embedding_tap(self.embed(tokens)))


def test_a_previous_note_model_sits_on_the_previous_note_reference_far_below_the_uniform_spread():
    from engine.evaluation.controls_section import influence_references
    from engine.memory.influence import influence_distribution

    cfg = TokenConfig()
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(4):
        bars = [[(on, int(rng.integers(60, 72)), d) for on, d in ((0, 4), (4, 2), (6, 2), (8, 8))] for _ in range(6)]
        tune = melody(bars, "t")
        cases.append((encode(tune, cfg), 2 * S, S))
    dist = influence_distribution(PreviousToken(cfg.vocab_size), cases, cfg, "gradient", "previous", bars=4)
    refs = influence_references(dist, EvalSettings(bootstrap=50, min_n=2))
    # the model's own distance is the previous-note reference: the mean gap between onsets, in bars
    assert dist["mean"] == pytest.approx(refs["reference_previous_note"]["mean"], rel=1e-6)
    assert refs["reference_previous_note"]["mean"] == pytest.approx((4 + 2 + 2 + 8) / 4 / S)
    assert refs["reference_uniform"]["mean"] > 5 * refs["reference_previous_note"]["mean"]
    assert refs["reference_previous_note"]["n"] == 4
    # only the first continuation note draws on a primer note (the primer's last): a share of 1 in 16 notes
    assert refs["share_on_primer"]["mean"] == pytest.approx(1 / 16)


# --- 7. the probe in real bars -----------------------------------------------------------------------------


def test_the_probe_counts_its_gaps_in_bars_of_the_meter_and_runs_three_seeds():
    from engine.memory import probe

    settings = probe.ProbeSettings(gaps=(1, 2), train_steps=2, batch_size=2, eval_sequences=4)
    assert settings.steps_per_bar == 16 and settings.seeds == 3
    _, first, _ = probe.make_batch(np.random.default_rng(0), np.array([1, 2]), settings.length,
                                   settings.token_config, settings.steps_per_bar)
    assert first[:, 0].tolist() == [2 * 16, 3 * 16]  # the motif returns after g bars of 16 steps of filler
    assert settings.length == (1 + 3) * 16
    result = probe.run_probe(["gru"], settings)
    record = result["models"]["gru"]
    assert result["settings"]["seeds"] == [0, 1, 2] and result["settings"]["steps_per_bar"] == 16
    assert record["n_seeds"] == 3 and list(record["by_seed"]) == ["0", "1", "2"]
    table = np.array([r["accuracy"] for r in record["by_seed"].values()])
    assert record["accuracy"] == pytest.approx(table.mean(axis=0).tolist(), abs=1e-6)  # rounded to 6 places
    assert record["accuracy_min"] == table.min(axis=0).tolist() and record["accuracy_max"] == table.max(axis=0).tolist()


# --- the report through the command line ----------------------------------------------------------------


def test_a_quick_evaluation_writes_every_key_the_memory_tab_reads(tmp_path, midi_folder, corpus_cache, monkeypatch):
    """evaluate() on a tiny run, as `main.py evaluate` calls it with the default temperatures: the floors, the
    companions, the sweep, the pairs, the matched rate, the influence references, the probe's seeds and bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.data.corpus import load_corpus
    from engine.evaluation.controls_report import write_controls_plots
    from engine.evaluation.evaluate import evaluate
    from engine.evaluation.report import json_text, summary_markdown
    from engine.evaluation.report_file import check_report
    from engine.memory.probe import ProbeSettings
    from engine.training.run_plan import TrainJob
    from engine.training.train import train
    from engine.training.train_config import TrainConfig

    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
    corpus = load_corpus([midi_folder])
    models = ["rnn", "lstm"]
    job = TrainJob(models=models, train_tokens=corpus.tokens("train"), valid_tokens=corpus.tokens("valid"),
                   token_config=corpus.token_config, corpus_fingerprint=corpus.fingerprint, out_dir=tmp_path / "run",
                   config=TrainConfig(preset="tiny", steps=2, batch_size=2, eval_every=2, save_every=2,
                                      warmup_steps=1, device="cpu"))
    for _ in train(job):
        pass
    settings = EvalSettings(primer_bars=4, bars=8, samples=1, min_n=2, bootstrap=50, influence_primers=2,
                            memory_targets=16, gradient_positions=2, gradient_max_k=16, nll_bars=8,
                            probe=ProbeSettings(gaps=(1,), train_steps=1, batch_size=2, eval_sequences=4),
                            recall=False)  # recall by distance has its own tests (test_recall.py)
    report = json.loads(json_text(evaluate(tmp_path / "run", models, settings, corpus=corpus)))
    settings = report["settings"]
    assert settings["floor"] == "rhythm_matched" and settings["temperatures"] == [1.0, 0.9, 0.8, 0.7]  # the default
    assert settings["paired_series"] == "TR_excess"
    sources = [*models, "human"]
    for block in [report["per_bar"], *report["by_temperature"].values()]:
        for series in ("TR_floor_random", "TR_excess_random", "PTR", "PTR_floor", "PTR_excess", "TR_phase",
                       "TR_phase_floor", "TR_phase_excess", "TR_floor", "TR_excess"):
            assert set(block[series]) == set(sources), series
            assert set(block[series]["human"]) == {"mean", "lo", "hi", "n"}
    assert set(report["by_temperature"]) == set(report["summary_by_temperature"]) == {"1.0", "0.9", "0.8", "0.7"}
    pairs = {"rnn-lstm", "rnn-human", "lstm-human"}
    assert set(report["paired"]) == pairs
    for t in report["by_temperature"]:
        assert set(report["paired_by_temperature"][t]) == pairs
        assert set(report["distinct_bar_rate_matched_by_temperature"][t]) == set(sources)
    assert set(report["paired_by_series"]) == {"TR_excess", "PTR_excess", "TR_phase_excess", "TR_excess_random"}
    assert set(report["paired"]["rnn-human"]) == {"bars 1-8"}  # G = 8: the first and the last 8 bars coincide
    assert set(report["paired"]["rnn-human"]["bars 1-8"]) == {"mean", "lo", "hi", "n"}
    assert set(report["distinct_bar_rate_matched_paired"]) == {"rnn-human", "lstm-human"}
    for key in models:
        figures = report["influence"][key]  # influence.<model>, the path of issue 24's done-when
        for reference in ("reference_previous_note", "reference_uniform", "share_on_primer"):
            assert set(figures[reference]) == {"mean", "lo", "hi", "n"}
        assert report["probe"]["models"][key]["n_seeds"] == 3
    assert report["probe"]["settings"]["steps_per_bar"] == 16 and len(report["probe"]["settings"]["seeds"]) == 3
    assert any(p["rhythm_partner_tune_id"] not in (None, p["tune_id"]) for p in report["primers"])
    drawn = []
    write_controls_plots(plt, report, lambda fig, name: (drawn.append(name), plt.close(fig)))
    assert drawn == ["per_bar_theme_controls.png", "temperature_sweep.png"]
    text = summary_markdown(report)
    assert "Paired differences" in text
    assert set(report["window_means_by_temperature"]) == set(report["by_temperature"])
    for block in report["window_means_by_temperature"].values():  # test_evaluate.py checks their figures
        assert set(block["PTR_excess"]) == set(sources) and set(block["TR_phase"]["human"]) == {"bars 1-8"}
    human = report["window_means"]["TR_phase_excess"]["human"]["bars 1-8"]
    companions = text.split("Theme recall and its companions")[1].split("\n\n", 2)[1]
    assert next(line for line in companions.splitlines() if line.startswith("| human |")).count(" [") == 4
    assert f"(n {human['n']})" in companions
    check_report(report, "report.json")  # the app reads it back strictly


# --- the summary and the plots read from the shipped report (no evaluation) -----------------------------------


@pytest.fixture(scope="module")
def shipped():
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.json").read_text())


def test_the_summary_gives_every_paired_difference_at_every_temperature_of_the_sweep(shipped):
    from engine.evaluation.controls_report import _figure, paired_sweep_lines

    text = "\n".join(paired_sweep_lines(shipped))
    for window in ("bars 1-8", "bars 57-64"):
        table = text.split(f"TR excess, {window}, at each temperature")[1].split("\n\n", 2)[1]
        rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()[2:]}
        for t, pairs in shipped["paired_by_temperature"].items():
            for name, by_window in pairs.items():
                if by_window[window]["mean"] is not None:
                    assert _figure(by_window[window]) in rows[name], (t, name, window)
        assert "lstm-human" not in rows or window == "bars 1-8"  # 5 tunes reach bars 57-64: no row of dashes


def test_the_summary_shows_pitch_only_and_phase_robust_recall_beside_tr_with_their_n(shipped):
    from engine.evaluation.controls_report import _figure, companion_lines

    text = "\n".join(companion_lines(shipped))
    assert "TR_phase (phase-robust) bars 1-8" in text and "PTR (pitch only) bars 57-64" in text
    human = next(line for line in text.splitlines() if line.startswith("| human |"))
    # over the rhythm-matched / the random floor, each with its interval (the report keeps window_means)
    assert "+0.568 [+0.531, +0.604] (n 138)" in human and "+0.618 [+0.580, +0.657] (n 138)" in human
    assert "window_means" in shipped and "the next evaluate gives each with its 95% interval" not in text
    from engine.evaluation.controls_report import _distinct_sweep_lines

    sweep = "\n".join(_distinct_sweep_lines(shipped))  # the matched-length rate at every temperature, paired
    assert "| transformer | 0.500; -0.044 [-0.079, -0.010] (n 138) |" in sweep  # at 0.7: below the tunes' 0.544
    pitch = shipped["paired_by_series"]["PTR_excess"]["rnn-gru"]["bars 1-8"]
    assert _figure(pitch) in next(line for line in text.splitlines() if line.startswith("| rnn-gru |"))


def test_a_report_with_window_means_shows_each_companion_with_its_interval_and_n(shipped):
    """Where the report keeps `window_means` (every evaluate since they were added), the companion table
    prints each cell as mean [95% interval] (n primers) from it, not from the per-bar series."""
    from engine.evaluation.controls_report import companion_lines

    series = ("TR_excess", "TR_phase_excess", "PTR_excess", "TR_excess_random", "TR", "PTR", "TR_phase")
    sources = [*shipped["models"], "human"]

    def figure(i, j, w):
        mean = round(0.01 * (i + 1) + 0.1 * j + 0.001 * w, 6)
        return {"mean": mean, "lo": round(mean - 0.05, 6), "hi": round(mean + 0.05, 6), "n": 130 + w}

    means = {s: {src: {w: figure(i, j, k) for k, w in enumerate(("bars 1-8", "bars 57-64"))}
                 for j, src in enumerate(sources)} for i, s in enumerate(series)}
    means["TR_excess"]["human"]["bars 57-64"] = {"mean": None, "lo": None, "hi": None, "n": 5}  # below min_n
    text = "\n".join(companion_lines({**shipped, "window_means": means}))
    assert "the next evaluate" not in text and "mean [95% bootstrap interval] over primers (n primers)" in text
    table = text.split("\n\n")[1].splitlines()[2:]
    rows = {cells[0]: cells[1:] for cells in (line.strip("| ").split(" | ") for line in table)}
    assert list(rows) == sources
    human = len(sources) - 1
    assert rows["human"][:4] == [f"+{0.01 + 0.1 * human:.3f} [+{0.01 + 0.1 * human - 0.05:.3f}, "
                                 f"+{0.01 + 0.1 * human + 0.05:.3f}] (n 130)", "-",
                                 f"+{0.02 + 0.1 * human:.3f} [+{0.02 + 0.1 * human - 0.05:.3f}, "
                                 f"+{0.02 + 0.1 * human + 0.05:.3f}] (n 130)",
                                 f"+{0.021 + 0.1 * human:.3f} [+{0.021 + 0.1 * human - 0.05:.3f}, "
                                 f"+{0.021 + 0.1 * human + 0.05:.3f}] (n 131)"]
    assert rows["rnn"][0] == "+0.010 [-0.040, +0.060] (n 130)"


def test_the_human_fade_is_read_part_by_part_with_the_tunes_that_reach_each(shipped):
    from engine.evaluation.controls_report import human_part_line

    line = human_part_line(shipped)[-1]
    assert "bars 1-8 +0.568 (n 138), bars 9-16 +0.167 (n 138), bars 17-24 +0.172 (n 134-119)" in line
    assert "bars 41-48" not in line  # 18 to 1 tunes reach it: fewer than min_n at its end


def test_the_nearest_repeat_says_how_many_notes_it_rests_on_and_the_uniform_spread_is_not_called_chance(shipped):
    from engine.evaluation.report import _influence_lines

    text = "\n".join(_influence_lines(shipped["influence"]))
    rnn = next(line for line in text.splitlines() if line.startswith("| rnn |"))
    repeat = shipped["influence"]["repeats"]["rnn"]
    assert f"({repeat['n_notes']} notes; {repeat['no_repeat_share']:.0%} have none)" in rnn
    assert "(128 notes; 93% have none)" in rnn  # the measure leaves out 93% of the bundled RNN's notes
    assert "chance (bars)" not in text and "uniform spread (bars)" in text


def test_an_influence_entry_left_null_is_skipped_with_its_name_and_the_old_layout_reads_the_same(shipped):
    """A hand-edited report whose model entry is null: the summary's influence tables leave the model out and
    name it, the CSV skips it, the app's reader accepts it. A report written before the entries moved to
    influence.<model> (influence.models.<model>) renders the very same summary."""
    from engine.evaluation.controls_report import influence_reference_lines
    from engine.evaluation.report import _influence_and_repeat_series, _influence_lines, summary_markdown
    from engine.evaluation.report_file import INFLUENCE_KEYS, check_report, influence_models

    influence = shipped["influence"]
    models = [k for k in influence if k not in INFLUENCE_KEYS]
    assert models == shipped["models"] and "models" not in influence  # the shipped report, migrated in place
    nulled = {**shipped, "influence": {**influence, "rnn": None}}
    check_report(nulled, "report.json")
    text = "\n".join([*_influence_lines(nulled["influence"]), *influence_reference_lines(nulled["influence"])])
    assert "| rnn |" not in text and text.count("| lstm |") == 2 and text.count("| human") == 2
    assert "Left out of the influence tables, with no figures in the report: rnn." in text
    summary_markdown(nulled)
    rows = next(rows for plot, *_, rows in _influence_and_repeat_series(nulled) if plot == "influence_distance")
    assert {(m, src) for m, src, *_ in rows} == {*(("influence", k) for k in models[1:]),
                                                  *(("repeat", k) for k in [*models, "human"])}

    old = {**shipped, "influence": {**{k: v for k, v in influence.items() if k not in models},
                                    "models": {k: influence[k] for k in models}}}
    assert influence_models(old["influence"]) == {k: influence[k] for k in models}
    check_report(old, "report.json")
    assert summary_markdown(old) == summary_markdown(shipped)


def test_the_influence_plot_draws_both_references_and_the_probe_plot_its_seed_range(shipped):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.evaluation.report_plots import _influence_plot, _probe_plot

    figures = {}

    def keep(fig, name):
        figures[name] = fig

    influence = shipped["influence"]
    others = [k for k in influence if k not in ("method", "bars", "primers", "temperature", "human", "repeats", "rnn")]
    one_model = {**shipped, "influence": {**{k: v for k, v in influence.items() if k not in others},
                                          "repeats": {"rnn": influence["repeats"]["rnn"]}}}  # two panels: quick
    _influence_plot(plt, one_model, keep)
    _probe_plot(plt, shipped["probe"], keep)
    try:
        rnn = figures["influence_distance.png"].axes[0]
        labels = [line.get_label() for line in rnn.get_lines()]
        previous = shipped["influence"]["rnn"]["reference_previous_note"]["mean"]
        assert f"previous note {previous:.2f}" in labels and any(la.startswith("uniform spread") for la in labels)
        probe = figures["probe.png"].axes[0]
        assert len(probe.collections) >= len(shipped["probe"]["models"])  # one band (min-max over seeds) per model
        assert "bars of 16 steps" in probe.get_title() and "seeds 0, 1, 2" in probe.get_title()
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_each_seeds_horizon_is_given_in_steps_too_where_the_seeds_disagree(shipped):
    from engine.evaluation.recall_report import recall_lines

    line = recall_lines(shipped)[-1]
    assert "lstm 4/8/4 bars (127/127/63 steps)" in line and "attention 32/32/32 bars (511/511/255 steps)" in line
