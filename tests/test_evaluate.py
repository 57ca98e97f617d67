"""The evaluation protocol and the report, on a tiny real run and a small hand-made corpus of AABB tunes.

The revised protocol's rules are checked on reports built here: null where n < min_n, the paired
excess over the model-matched floor, two temperatures, the distinct-bar rate, the per-meter
breakdown. Known answers come from stand-in models whose continuations are fixed by construction:
one copies the primer, one plays another tune, one loops a bar.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import numpy as np
import pytest
from torch import nn

from engine.core.errors import UserError
from engine.evaluation.evaluate import EvalSettings, EvaluationCancelled, bootstrap_interval, evaluate, per_bar_stats
from engine.evaluation.report import write_report
from engine.memory.probe import ProbeSettings
from engine.music.melody import Melody, Note
from engine.music.tokens import TokenConfig, encode

SECTION_BARS = 4


def _random_bars(rng, n_bars, steps_per_bar=16):
    """Bars of quarter and eighth notes on a C major scale."""
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    bars = []
    for _ in range(n_bars):
        notes, step = [], 0
        while step < steps_per_bar:
            length = min(int(rng.choice([2, 4])), steps_per_bar - step)
            notes.append((step, int(rng.choice(scale)), length))
            step += length
        bars.append(notes)
    return bars


def aabb_melody(rng, tune_id, split, numerator=4):
    """32 bars in AABB form, twice; 4/4 (16 steps a bar) or 3/4 (12)."""
    spb = numerator * 4
    a, b = _random_bars(rng, SECTION_BARS, spb), _random_bars(rng, SECTION_BARS, spb)
    bars = (a + a + b + b) * 2
    notes = tuple(Note(i * spb + on, p, d) for i, bar in enumerate(bars) for on, p, d in bar)
    return Melody(notes=notes, n_steps=len(bars) * spb, numerator=numerator, denominator=4, tune_id=tune_id,
                  title=tune_id, meta={"split": split})


class FakeCorpus:
    """What evaluate() reads of engine.data.corpus.Corpus: n_test 4/4 test tunes and n_test_34 in 3/4."""

    def __init__(self, seed=0, n_test=6, n_train=12, n_test_34=0):
        rng = np.random.default_rng(seed)
        self.melodies = [aabb_melody(rng, f"test{i:02d}", "test") for i in range(n_test)]
        self.melodies += [aabb_melody(rng, f"test34-{i:02d}", "test", numerator=3) for i in range(n_test_34)]
        self.melodies += [aabb_melody(rng, f"train{i:02d}", "train") for i in range(n_train)]
        self.melodies += [aabb_melody(rng, f"valid{i:02d}", "valid") for i in range(2)]
        self.token_config = TokenConfig()
        self.fingerprint = "fake-corpus"
        self.sources = ["hand-made"]

    def split(self, name):
        return [m for m in self.melodies if m.meta["split"] == name]

    def tokens(self, name):
        return [encode(m, self.token_config) for m in self.split(name)]


@pytest.fixture(scope="module")
def corpus():
    return FakeCorpus()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus):
    from engine.training.run_plan import TrainJob
    from engine.training.train import train
    from engine.training.train_config import TrainConfig

    out = tmp_path_factory.mktemp("run")
    job = TrainJob(
        models=["rnn", "transformer"],
        train_tokens=corpus.tokens("train"),
        valid_tokens=corpus.tokens("valid"),
        token_config=corpus.token_config,
        corpus_fingerprint=corpus.fingerprint,
        out_dir=out,
        config=TrainConfig(preset="tiny", steps=4, batch_size=4, eval_every=4, save_every=4, warmup_steps=1,
                           device="cpu"),
    )
    for _ in train(job):
        pass
    return out


def small_settings(seed=0, probe=True, min_n=2, temperatures=(1.0, 0.7), recall=False):
    # recall by distance has its own tests (tests/test_recall.py, including an `evaluate --seeds` run)
    return EvalSettings(
        recall=recall, primers=4, primer_bars=SECTION_BARS, bars=8, samples=2, seed=seed, bootstrap=200, min_n=min_n,
        temperatures=temperatures,
        memory_targets=24, memory_min_position=256, gradient_positions=4, gradient_max_k=64, device="cpu",
        probe=ProbeSettings(gaps=(1, 2), train_steps=3, batch_size=4, eval_sequences=8, seed=seed) if probe else None,
    )


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.normal(size=20)
    large = rng.normal(size=2000)
    m_small, lo_small, hi_small = bootstrap_interval(small, seed=1)
    m_large, lo_large, hi_large = bootstrap_interval(large, seed=1)
    assert lo_small <= m_small <= hi_small and lo_large <= m_large <= hi_large
    assert m_small == pytest.approx(small.mean())
    assert (hi_large - lo_large) < (hi_small - lo_small) / 4  # ~ 1/sqrt(100)
    assert bootstrap_interval(small, seed=1) == bootstrap_interval(small, seed=1)


def test_no_interval_from_one_value_and_nothing_below_min_n():
    """The audit's bug: one value gave lo = hi = mean, an interval of zero width that looked precise."""
    mean, lo, hi = bootstrap_interval([0.4], seed=1)
    assert mean == 0.4 and np.isnan(lo) and np.isnan(hi)
    matrix = np.array([[1.0, 0.0, 0.5], [1.0, np.nan, 0.7], [1.0, np.nan, np.nan]])
    st = per_bar_stats(matrix, n_boot=100, min_n=1)
    assert st["n"] == [3, 1, 2]
    assert st["mean"] == [1.0, 0.0, 0.6]
    assert st["lo"][1] is None and st["hi"][1] is None  # one value: a mean, no interval
    assert st["lo"][2] is not None and st["lo"][2] <= 0.6 <= st["hi"][2]
    strict = per_bar_stats(matrix, n_boot=100, min_n=3)
    assert strict["mean"] == [1.0, None, None] and strict["lo"][1:] == [None, None]
    assert strict["n"] == [3, 1, 2]  # n is always there, also where the mean is left out


def test_per_bar_stats_match_a_bar_by_bar_bootstrap():
    """The shared resamples of bars that the same primers reach give each bar a proper bootstrap."""
    rng = np.random.default_rng(3)
    matrix = rng.random((40, 6))
    matrix[30:, 4:] = np.nan  # 10 primers end early
    st = per_bar_stats(matrix, n_boot=2000, seed=5)
    for b in range(6):
        mean, lo, hi = bootstrap_interval(matrix[:, b], n_boot=2000, seed=b)
        assert st["mean"][b] == pytest.approx(mean, abs=1e-4)
        assert st["lo"][b] == pytest.approx(lo, abs=0.02) and st["hi"][b] == pytest.approx(hi, abs=0.02)
    assert st["n"] == [40, 40, 40, 40, 30, 30]


def test_report_measures_the_human_repeat_and_writes_every_file(run_dir, corpus, tmp_path):
    report = evaluate(run_dir, settings=small_settings(), corpus=corpus)
    assert report["models"] == ["rnn", "transformer"]
    # AABB with P = one A section: the real continuation starts with A again (TR = RR = 1), then B
    human_tr = report["per_bar"]["TR"]["human"]["mean"]
    assert human_tr[:SECTION_BARS] == pytest.approx([1.0] * SECTION_BARS)
    assert max(human_tr[SECTION_BARS:]) < 1.0
    for p in report["primers"]:
        assert p["floor_tune_id"] not in (None, p["tune_id"])
    rows = {r["source"]: r for r in report["summary"]}
    assert set(rows) == {"rnn", "transformer", "human", "floor"}
    assert rows["human"]["TR_first"] > rows["floor"]["TR_first"]
    assert rows["human"]["TR_excess_first"]["mean"] > 0.3 and rows["human"]["n_first"] == 4
    assert rows["rnn"]["valid_bpt"] is not None and rows["rnn"]["effective_memory_steps"] >= 1
    assert isinstance(rows["rnn"]["length_ok"], bool)
    em = report["effective_memory"]["rnn"]
    assert em["full_minus_best_bits"] == pytest.approx(em["nll_full"] - min(em["nll_k"]))
    assert len(report["gradient_memory"]["rnn"]["g"]) == 64
    assert report["probe"]["chance"] == pytest.approx(1 / 8)
    # the contract's keys
    assert report["settings"]["primers"] == 4 and report["settings"]["temperatures"] == [1.0, 0.7]
    assert report["settings"]["min_n"] == 2
    for src in ("rnn", "transformer", "human"):
        for key in ("TR_excess", "TR_floor"):
            assert set(report["per_bar"][key][src]) == {"mean", "lo", "hi", "n"}
        assert set(report["distinct_bar_rate"][src]) == {"mean", "lo", "hi", "n"}
    assert "floor" not in report["per_bar"]["TR_excess"]  # the shared floor has no floor of its own
    assert set(report["per_bar"]["TR"]) == {"rnn", "transformer", "human", "floor"}
    assert report["windows"]["transformer"]["primer_leaves_window_after_bars"] == {"4/4": 64 / 16}
    assert report["windows"]["rnn"]["primer_leaves_window_after_bars"] == {}  # no window: nothing leaves it
    # originality (issue 27) per model and temperature, beside the human baseline: random tunes borrow nothing
    assert {src: set(by_t) for src, by_t in report["originality"].items()} == {
        src: {"1.0", "0.7"} for src in ("rnn", "transformer", "human")}
    assert report["originality"]["human"]["1.0"]["copy_rate"]["mean"] == 0.0
    assert report["originality"]["rnn"]["0.7"]["copy_rate"]["n"] == 4

    paths = write_report(report, tmp_path / "report")
    names = {p.name for p in paths}
    for png in ("per_bar_TR_excess.png", "per_bar_TR.png", "per_bar_TR_excess_by_meter.png", "per_bar_RR.png",
                "per_bar_IK.png", "nll_k.png", "nll_per_bar.png", "gradient_memory.png", "self_similarity.png", "probe.png",
                "training_curves.png", "originality_copy_rate.png"):
        assert png in names
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "per_bar_TR__human.csv" in names and "probe__transformer.csv" in names
    assert "per_bar_TR_excess__rnn.csv" in names and "per_bar__by_meter.csv" in names
    assert report["training_curves"]["rnn"]["step"] == [4]  # the run validated once, at its last step
    assert "training_curves__rnn.csv" in names
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| model | gap 1 | gap 2 |" in summary and "| transformer |" in summary  # the probe's table
    assert "Continuations at temperature 1.0 (the report's per_bar):" in summary
    assert "Continuations at temperature 0.7:" in summary
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["run"]["models"]["rnn"]["model"]["key"] == "rnn"
    assert doc["corpus"]["fingerprint"] == "fake-corpus"
    assert "| vanilla" not in summary  # keys, as in the CLI
    assert "| rnn |" in summary
    assert doc["per_bar"] == doc["by_temperature"]["1.0"]
    assert doc["by_meter"] == doc["by_temperature_and_meter"]["1.0"]


@pytest.fixture(scope="module")
def min_n_10(run_dir, corpus) -> dict:
    """One temperature, 4 primers, influence on 3 of them, and means only from 10 primers on (read only)."""
    return evaluate(run_dir, settings=replace(small_settings(probe=False, min_n=10, temperatures=(1.0,)),
                                              influence_primers=3), corpus=corpus)


def test_a_per_bar_mean_needs_min_n_primers(min_n_10, tmp_path):
    report = min_n_10
    for metric, by_source in report["per_bar"].items():
        for src, st in by_source.items():
            assert st["n"] == [4] * 8, (metric, src)
            assert st["mean"] == [None] * 8 and st["lo"] == [None] * 8, (metric, src)
    row = report["summary"][0]
    assert row["TR_first"] is None and row["TR_excess_first"] == {"mean": None, "lo": None, "hi": None, "n": 4}
    assert list(report["by_temperature"]) == ["1.0"]
    write_report(report, tmp_path / "r")  # nothing to draw is not an error
    assert "| rnn | - | - |" in (tmp_path / "r" / "summary.md").read_text()
    lines = (tmp_path / "r" / "csv" / "per_bar_TR__rnn.csv").read_text().splitlines()
    assert lines[0] == "bar,mean,lo,hi,n" and lines[1] == "1,,,,4"


@pytest.fixture(scope="module")
def without_probe(run_dir, corpus) -> dict:
    """The evaluation at two temperatures without the probe, which the tests below only read."""
    return evaluate(run_dir, settings=small_settings(probe=False), corpus=corpus)


def test_two_temperatures_are_sampled_apart(without_probe):
    report = without_probe
    hot, cold = report["by_temperature"]["1.0"], report["by_temperature"]["0.7"]
    assert set(hot) == set(cold) == set(report["per_bar"])
    assert hot["TR"]["rnn"]["mean"] != cold["TR"]["rnn"]["mean"]  # another temperature, other music
    assert hot["TR"]["human"] == cold["TR"]["human"]  # the human reference does not sample
    rates = report["distinct_bar_rate_by_temperature"]
    assert set(rates["0.7"]) == {"rnn", "transformer", "human"} and rates["1.0"]["human"] == rates["0.7"]["human"]
    assert report["summary_by_temperature"]["1.0"] == report["summary"]


def test_every_window_mean_carries_its_interval_and_n_from_the_function_the_pairs_use(without_probe):
    """`window_means(_by_temperature)`: each theme series' bar-window mean for every model and the human, with
    its interval and n = the primers (every primer reaches all 8 bars here); the same figure as the summary
    table's, and a paired difference is the difference of the two window means when both rest on every primer."""
    from engine.evaluation.controls_section import WINDOW_SERIES

    report = without_probe
    primers = len(report["primers"])
    assert primers == 4
    assert set(report["window_means_by_temperature"]) == {"1.0", "0.7"}
    assert report["window_means"] == report["window_means_by_temperature"]["1.0"]
    for t, block in report["window_means_by_temperature"].items():
        assert set(block) == set(WINDOW_SERIES) >= {"TR_excess", "PTR_excess", "TR_phase_excess", "TR_excess_random",
                                                    "TR", "PTR", "TR_phase"}
        for series, by_source in block.items():
            assert list(by_source) == ["rnn", "transformer", "human"], (t, series)
            for src, by_window in by_source.items():
                assert list(by_window) == ["bars 1-8"]  # G = 8: the first and the last 8 bars are one window
                figure = by_window["bars 1-8"]
                assert figure["n"] == primers, (t, series, src)
                assert figure["lo"] <= figure["mean"] <= figure["hi"], (t, series, src)
        rows = {r["source"]: r for r in report["summary_by_temperature"][t]}
        for src in ("rnn", "transformer", "human"):
            assert block["TR_excess"][src]["bars 1-8"] == rows[src]["TR_excess_first"]
        for pair in ("rnn-transformer", "rnn-human"):
            a, b = pair.split("-")
            diff = report["paired_by_temperature"][t][pair]["bars 1-8"]["mean"]
            assert diff == pytest.approx(block["TR_excess"][a]["bars 1-8"]["mean"]
                                         - block["TR_excess"][b]["bars 1-8"]["mean"], abs=3e-6)


def test_a_window_mean_is_a_paired_difference_with_a_constant_zero_partner():
    """One function makes every window figure: a source's window mean and its paired difference from a source
    that is 0 everywhere are the same figure; the mean is each primer's mean over the window's bars (a primer
    missing some bars counts with the bars it has), then the mean over primers."""
    from engine.metrics.paired import paired_windows, window_means

    rng = np.random.default_rng(3)
    a = rng.normal(0.3, 0.2, size=(30, 16))
    a[:4, 10:] = np.nan  # four primers stop at bar 10
    a[4, :] = np.nan  # one has no bar at all
    windows = [(0, 8), (8, 16)]
    alone = window_means(a, windows, n_boot=300, seed=5, min_n=2)
    assert alone == paired_windows(a, np.zeros_like(a), windows, n_boot=300, seed=5, min_n=2)
    by_hand = np.nanmean(a[5:, 8:], axis=1).tolist() + np.nanmean(a[:4, 8:10], axis=1).tolist()
    assert alone["bars 9-16"]["n"] == 29 and alone["bars 9-16"]["mean"] == pytest.approx(np.mean(by_hand), abs=1e-6)
    assert alone["bars 1-8"]["lo"] < alone["bars 1-8"]["mean"] < alone["bars 1-8"]["hi"]
    assert alone != paired_windows(a, np.full_like(a, 0.1), windows, n_boot=300, seed=5, min_n=2)


def test_training_curve_says_how_much_the_last_quarter_still_gained(tmp_path):
    from engine.evaluation.evaluate import training_curve
    from engine.evaluation.report import summary_markdown

    def history(folder, valid):
        folder.mkdir()
        rows = ["step,train_bpt,valid_bpt,lr,tokens_per_s,elapsed_s"]
        for i, v in enumerate(valid):
            rows.append(f"{50 * i + 25},3.0,,0.001,100,1")  # training-only rows carry no validation
            rows.append(f"{50 * (i + 1)},{v + 0.01},{v},0.001,100,1")
        (folder / "history.csv").write_text("\n".join(rows) + "\n")
        return training_curve(folder)

    still_falling = history(tmp_path / "falling", [3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.4, 0.3])
    flat = history(tmp_path / "flat", [3.0, 2.0, 1.5, 1.2, 1.1, 1.05, 1.05, 1.05])
    assert still_falling["step"] == [50 * (i + 1) for i in range(8)]
    assert still_falling["late_from_step"] == 300 and still_falling["late_gain_bits"] == pytest.approx(0.2)
    assert flat["late_gain_bits"] == pytest.approx(0.0)
    assert history(tmp_path / "short", [3.0, 2.0])["late_gain_bits"] is None
    assert training_curve(tmp_path / "no-history")["step"] == []

    report = {"settings": {"bars": 8, "primer_bars": 4, "samples": 1}, "primers": [], "summary": [],
              "training_curves": {"rnn": still_falling, "lstm": flat}}
    assert "rnn 0.200 (steps 300-400), lstm 0.000 (steps 300-400)" in summary_markdown(report)


INFLUENCE_KEYS = {"mean", "lo", "hi", "n", "n_notes", "median", "q10", "q90", "histogram", "chance"}


def test_the_influence_distance_of_the_evaluations_own_continuations(run_dir, corpus, tmp_path):
    """report["influence"] (the Memory tab reads it): per model the distribution of how far back its notes
    reach, the human reference (the real tune's nearest repeats), the models' own repeats, and a
    summary column; over the first bars of the continuations the evaluation itself sampled."""
    from dataclasses import replace

    settings = replace(small_settings(probe=False, min_n=1), influence_primers=1)
    report = evaluate(run_dir, settings=settings, corpus=corpus)
    influence = report["influence"]
    assert influence["method"] == "gradient" and influence["temperature"] == 1.0
    assert influence["bars"] == 8 and influence["primers"] == 1  # min(16, the 8 bars composed); N as asked
    # each model's entry at influence.<model>, beside the block's own keys (design.md s.5, influence references)
    assert list(influence) == ["method", "bars", "primers", "temperature", "rnn", "transformer", "human", "repeats"]
    models = {k: influence[k] for k in ("rnn", "transformer")}
    assert set(influence["repeats"]) == {"rnn", "transformer"}
    P, G, S = SECTION_BARS, 8, 16
    for key, d in [*models.items(), ("human", influence["human"])]:
        assert set(d) >= INFLUENCE_KEYS, key
        edges, counts = d["histogram"]["edges"], d["histogram"]["counts"]
        assert edges == list(range(P + G + 1)) and len(counts) == len(edges) - 1, key  # 1-bar bins up to P + G
        assert sum(counts) == d["n_notes"] > 0, key
        assert d["n"] == 1 and d["lo"] is None and d["hi"] is None, key  # no interval from one continuation
        assert 0 <= d["q10"] <= d["median"] <= d["q90"] < P + G and 0 < d["chance"] < P + G, key
    # the very continuation the evaluation scored: its first sample of the first primer, first 8 bars
    for key in ("rnn", "transformer"):
        example = report["examples"][key]
        assert example["primer"] == report["primers"][0]["tune_id"] and example["temperature"] == 1.0
        assert influence[key]["n_notes"] == sum(1 for onset, _p, _d in example["notes"] if onset < G * S)
    # AABB, primer = one A: the real continuation plays A again, 4 bars after the primer's A
    assert influence["human"]["median"] == SECTION_BARS
    assert 0 < influence["human"]["no_repeat_share"] < 1  # then B, heard for the first time
    rows = {r["source"]: r for r in report["summary"]}
    for key, d in [*models.items(), ("human", influence["human"])]:
        assert rows[key]["influence_distance_bars"] == {k: d[k] for k in ("mean", "lo", "hi", "n")}
    assert "influence_distance_bars" not in rows["floor"]
    assert all("influence_distance_bars" not in r for r in report["summary_by_temperature"]["0.7"])

    names = {p.name for p in write_report(report, tmp_path / "r")}
    assert (tmp_path / "r" / "influence_distance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / "r" / "csv" / "influence_distance__histograms.csv").read_text().splitlines()
    assert "influence_distance.png" in names and lines[0] == "measure,source,from_bars,to_bars,notes"
    assert len(lines) == 1 + 5 * (P + G)  # influence and own repeats of two models, and the human
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "influence distance, 1 primer (bars; human: nearest repeat)" in summary
    mean = influence["rnn"]["mean"]
    assert f"| rnn | {mean:.2f} | " in summary  # the influence table: one value, so no interval


def test_influence_follows_min_n_and_can_be_left_out(run_dir, corpus, min_n_10, tmp_path):
    report = min_n_10
    for d in [report["influence"][k] for k in ("rnn", "transformer", "human")]:
        assert d["n"] == 3 and d["mean"] is d["lo"] is d["hi"] is d["median"] is d["q90"] is None
        assert sum(d["histogram"]["counts"]) == d["n_notes"] > 0  # the counts are still there
    from engine.evaluation.report import summary_markdown  # what write_report writes as summary.md

    assert "| rnn | - | - |" in summary_markdown(report).split("Influence distance")[1]

    left_out = evaluate(run_dir, settings=replace(small_settings(probe=False, temperatures=(1.0,)),
                                                  influence_primers=0), corpus=corpus)
    assert "influence" not in left_out and all("influence_distance_bars" not in r for r in left_out["summary"])
    assert "influence_distance.png" not in {p.name for p in write_report(left_out, tmp_path / "none")}
    with pytest.raises(UserError, match="--influence-primers must be a whole number from 0 to 10000, not -1"):
        evaluate(run_dir, settings=replace(small_settings(), influence_primers=-1), corpus=corpus)


@pytest.fixture(scope="module")
def seed_3(run_dir, corpus) -> tuple[EvalSettings, dict]:
    """Every part of the evaluation (recall and the probe too) with seed 3, serially: (settings, report), what two
    tests compare another evaluation with."""
    settings = small_settings(seed=3, recall=True)
    return settings, evaluate(run_dir, settings=settings, corpus=corpus)


def test_same_seed_gives_an_identical_report(run_dir, corpus, seed_3):
    settings, first = seed_3
    second = evaluate(run_dir, settings=settings, corpus=corpus)
    assert _report_text(first) == _report_text(second)
    other = evaluate(run_dir, settings=replace(small_settings(seed=4, probe=False, temperatures=(1.0,)),
                                               influence_primers=0), corpus=corpus)
    assert other["examples"] != first["examples"]  # another seed, other music


def test_cancel_stops_the_evaluation(run_dir, corpus):
    cancel = threading.Event()
    seen = []

    def progress(event):
        seen.append(event["stage"])
        if event["stage"] == "generate":
            cancel.set()

    with pytest.raises(EvaluationCancelled):
        evaluate(run_dir, settings=small_settings(), corpus=corpus, progress=progress, cancel=cancel)
    assert "memory" not in seen


def _report_text(report) -> str:
    """What report.json holds (write_report writes this text; the plots drawn from it are not compared), less
    the timings and how many worker processes made it."""
    from engine.evaluation.report import json_text

    doc = {k: v for k, v in report.items() if k != "timings"}
    doc["settings"] = {k: v for k, v in doc["settings"].items() if k != "processes"}
    return json_text(doc)


def test_worker_processes_give_the_same_report(run_dir, corpus, seed_3):
    """Sampling, the model side, recall by distance and the probe in two worker processes, each loading its
    model from the run folder: the report is the serial one to the last digit (every job seeds itself), and
    the workers' progress comes as each job ends."""
    import multiprocessing
    from dataclasses import replace

    settings, serial = seed_3
    seen = []
    parallel = evaluate(run_dir, settings=replace(settings, processes=2), corpus=corpus, progress=seen.append)
    assert _report_text(parallel) == _report_text(serial)
    assert parallel["settings"]["processes"] == 2 and "recall_by_distance" in parallel
    said = {(e["stage"], e["message"].split(":")[0]) for e in seen}
    for stage, words in (("generate", "rnn"), ("memory", "transformer"), ("recall", "recall by distance"),
                         ("probe", "probe")):
        assert (stage, words) in said
    assert any(e["message"].startswith("probe: trained transformer (2 of 2, seed 3 of 3)") for e in seen)
    assert not multiprocessing.active_children()  # every worker has left


def test_cancel_stops_the_worker_processes_promptly(run_dir, corpus):
    """The app's Cancel while probe models train in worker processes: EvaluationCancelled within seconds, the
    jobs not started dropped, no worker left running."""
    import multiprocessing
    import time
    from dataclasses import replace

    cancel = threading.Event()
    cancelled_at = []

    def fire():
        cancelled_at.append(time.monotonic())
        cancel.set()

    timer = threading.Timer(2.0, fire)

    def progress(event):
        if event["stage"] == "probe" and not timer.is_alive() and not cancelled_at:
            timer.start()

    endless = ProbeSettings(gaps=(1, 2), train_steps=100_000, batch_size=4, eval_sequences=8)
    settings = replace(small_settings(), probe=endless, influence_primers=0, processes=2)
    with pytest.raises(EvaluationCancelled):
        evaluate(run_dir, settings=settings, corpus=corpus, progress=progress, cancel=cancel)
    timer.join()
    assert time.monotonic() - cancelled_at[0] < 10
    assert not multiprocessing.active_children()


def test_bad_run_directory_and_unknown_model_are_user_errors(run_dir, corpus, tmp_path):
    with pytest.raises(UserError, match="no such run directory"):
        evaluate(tmp_path / "nope", corpus=corpus)
    with pytest.raises(UserError, match="no trained lstm"):
        evaluate(run_dir, ["lstm"], corpus=corpus)


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    import main

    assert main.main(["evaluate", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "error: " in capsys.readouterr().err
    assert main.main(["evaluate", "--run", str(tmp_path), "--primers", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--primers must be a whole number from 1 to 10000" in capsys.readouterr().err
    assert main.main(["evaluate", "--run", str(tmp_path), "--probe-gaps", "1,x", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--probe-gaps must be 1 to 16 different whole numbers from 1 to 256" in err and "('x' is not a number)" in err
    assert not (tmp_path / "r").exists()


# ---- known answers: stand-in models and hand-made continuations ------------------------------------


class ReplayModel(nn.Module):
    """A stand-in SequenceModel whose next token is fixed by `rule(history [B, T], steps_per_bar)`.

    Its logits put all the mass on that token, so every temperature samples it. prime() learns the
    steps per bar from the primer's length (P bars): the batches of evaluate are one meter each.
    """

    def __init__(self, rule, primer_bars=SECTION_BARS, vocab=TokenConfig().vocab_size):
        super().__init__()
        self.rule, self.primer_bars, self.vocab = rule, primer_bars, vocab

    def init_state(self, batch, device=None):
        return None

    def _logits(self, history, spb):
        import torch

        logits = torch.full((history.shape[0], self.vocab), -30.0)
        logits[torch.arange(history.shape[0]), self.rule(history, spb)] = 30.0
        return logits

    def prime(self, tokens, state=None):
        spb = tokens.shape[1] // self.primer_bars
        return self._logits(tokens, spb), (tokens.clone(), spb)

    def step(self, tokens, state):
        import torch

        history, spb = state
        history = torch.cat([history, tokens[:, None]], dim=1)
        return self._logits(history, spb), (history, spb)


def copier():
    """Plays the primer again and again, verbatim."""
    return ReplayModel(lambda h, spb: h[:, h.shape[1] - SECTION_BARS * spb])


def bar_looper():
    """Plays the primer's last bar again and again."""
    return ReplayModel(lambda h, spb: h[:, h.shape[1] - spb])


def other_tune_player(tunes_by_spb):
    """Plays the opening of a fixed other tune of the batch's meter, whatever the primer."""
    import torch

    def rule(h, spb):
        tokens = tunes_by_spb[spb]
        return torch.full((h.shape[0],), int(tokens[h.shape[1] - SECTION_BARS * spb]), dtype=torch.long)

    return ReplayModel(rule)


@pytest.fixture(scope="module")
def two_meter_cases():
    """20 primers: 14 in 4/4 and 6 in 3/4 (below min_n = 10), each with a partner of its meter."""
    from engine.evaluation.continuations import make_cases

    corpus = FakeCorpus(seed=7, n_test=14, n_test_34=6)
    settings = known_answer_settings()
    return corpus, make_cases(corpus.split("test"), settings)


def known_answer_settings(**kw):
    base = dict(primer_bars=SECTION_BARS, bars=16, samples=1, bootstrap=500, probe=None, min_n=10,
                temperatures=(1.0, 0.7))
    return EvalSettings(**{**base, **kw})


def _measure(models, cases, settings=None):
    from engine.evaluation.continuations import measure_continuations

    cfg = TokenConfig()
    return measure_continuations({k: (m, cfg) for k, m in models.items()}, cases, settings or known_answer_settings())


def test_a_model_that_copies_the_primer_gets_an_excess_of_one_minus_its_floor(two_meter_cases):
    _, cases = two_meter_cases
    assert len(cases) == 20 and {c.meter for c in cases} == {"4/4", "3/4"}
    parts = _measure({"copy": copier()}, cases)
    for t in ("1.0", "0.7"):
        block = parts["by_temperature"][t]
        tr, floor, excess = block["TR"]["copy"], block["TR_floor"]["copy"], block["TR_excess"]["copy"]
        assert tr["mean"] == [1.0] * 16 and tr["n"] == [20] * 16  # every bar restates a primer bar exactly
        for b in range(16):
            assert 0 < floor["mean"][b] < 0.7  # other tunes share some notes: chance is not 0
            assert excess["mean"][b] == pytest.approx(1 - floor["mean"][b], abs=2e-4)
            assert excess["lo"][b] > 0.25  # far above chance, and the interval says so
    # the primer's 4 bars come round 4 times in 16 bars; the real tune (AABB) has 8 distinct bars in 16
    assert parts["distinct_bar_rate"]["copy"]["mean"] == pytest.approx(4 / 16)
    assert parts["distinct_bar_rate"]["human"]["mean"] == pytest.approx(8 / 16)
    # by meter: 14 primers in 4/4 are enough, 6 in 3/4 are not
    assert parts["by_meter"]["4/4"]["TR"]["copy"]["mean"] == [1.0] * 16
    assert parts["by_meter"]["3/4"]["TR"]["copy"] == {"mean": [None] * 16, "lo": [None] * 16, "hi": [None] * 16,
                                                      "n": [6] * 16}
    assert parts["meters"] == {"4/4": {"primers": 14, "steps_per_bar": 16}, "3/4": {"primers": 6, "steps_per_bar": 12}}


def test_a_model_that_plays_another_tune_is_at_chance(two_meter_cases):
    corpus, cases = two_meter_cases
    rng = np.random.default_rng(99)
    others = {16: encode(corpus.split("train")[0], corpus.token_config),
              12: encode(aabb_melody(rng, "other-3/4", "none", numerator=3), corpus.token_config)}
    parts = _measure({"other": other_tune_player(others)}, cases, known_answer_settings(temperatures=(1.0,)))
    windows = parts["windows_by_temperature"]["1.0"]["other"]
    for key in ("TR_excess_first", "TR_excess_last"):
        st = windows[key]
        assert st["n"] == 20 and st["lo"] < st["hi"]
        assert st["lo"] <= 0 <= st["hi"], (key, st)
    excess = parts["per_bar"]["TR_excess"]["other"]
    covered = sum(lo <= 0 <= hi for lo, hi in zip(excess["lo"], excess["hi"]))
    assert covered >= 14  # of 16 bars; 95% intervals
    # its raw TR is well above 0: without the matched floor it would look like memory
    assert min(parts["per_bar"]["TR"]["other"]["mean"]) > 0.1


def test_a_model_that_loops_one_bar_has_a_distinct_bar_rate_of_one_over_g(two_meter_cases):
    _, cases = two_meter_cases
    parts = _measure({"loop": bar_looper(), "copy": copier()}, cases)
    for t in ("1.0", "0.7"):
        rate = parts["distinct_bar_rate_by_temperature"][t]["loop"]
        assert rate["mean"] == pytest.approx(1 / 16) and rate["n"] == 20
    assert parts["distinct_bar_rate"]["copy"]["mean"] > 3 * parts["distinct_bar_rate"]["loop"]["mean"]


def _quarter_bar(pitches, bar):
    return [Note(bar * 16 + 4 * k, p, 4) for k, p in enumerate(pitches)]


def test_the_excess_is_paired_per_primer():
    """Continuations that keep fewer notes of the primer also keep fewer of the partner's: TR and the
    matched floor rise and fall together across primers, so the per-primer difference varies far less
    than either, and its interval is far narrower than one from TR and the floor taken apart."""
    from engine.evaluation.continuations import PrimerCase, Scores, score_source, series_block

    rng = np.random.default_rng(4)
    settings = known_answer_settings(bars=8, min_n=2)
    cases, conts = [], []
    for i in range(24):
        primer = [list(rng.choice(np.arange(48, 90), size=4, replace=False)) for _ in range(4)]
        partner = [[p[0] + 1, *p[1:]] for p in primer]  # the partner differs in each bar's first note
        changed = i % 4  # the continuation changes the last `changed` notes of each primer bar, each by
        # its own interval, so that no transposition brings two of them back
        cont = [[*p[: 4 - changed], *(q + d for q, d in zip(p[4 - changed:], (5, -7, 10)))] for p in primer * 2]
        melody = Melody(tuple(n for b, p in enumerate(primer) for n in _quarter_bar(p, b)), 64, tune_id=f"t{i}")
        other = Melody(tuple(n for b, p in enumerate(partner) for n in _quarter_bar(p, b)), 64, tune_id=f"p{i}")
        cases.append(PrimerCase(melody, melody.bars(0, 4), other))
        conts.append([Melody(tuple(n for b, p in enumerate(cont) for n in _quarter_bar(p, b)), 128)])
    scores: dict[str, Scores] = {"m": score_source(cases, conts, settings, matched=True)}
    block = series_block(scores, np.arange(24), settings)

    def width(st, b):
        return st["hi"][b] - st["lo"][b]

    for b in range(8):
        tr, floor, excess = block["TR"]["m"], block["TR_floor"]["m"], block["TR_excess"]["m"]
        assert excess["mean"][b] == pytest.approx(tr["mean"][b] - floor["mean"][b], abs=2e-4)
        unpaired = np.hypot(width(tr, b), width(floor, b))
        assert width(excess, b) < 0.5 * unpaired, b


# ---- one function plus one table row: a new per-bar metric ---------------------------------------


def high_note_share(ctx):
    """Toy metric: share of each bar's notes above middle C (NaN for an empty bar)."""
    notes = ctx.notes
    bar = notes[:, 0] // ctx.steps_per_bar
    total = np.bincount(bar, minlength=ctx.n_bars)[: ctx.n_bars]
    high = np.bincount(bar, weights=notes[:, 1] > 60, minlength=ctx.n_bars)[: ctx.n_bars]
    with np.errstate(invalid="ignore", divide="ignore"):
        return high / total


def test_a_new_per_bar_metric_is_one_function_and_one_table_row(monkeypatch, run_dir, corpus, tmp_path):
    from engine.metrics import PER_BAR, PerBarMetric, continuation_metrics, piece_bar_metrics

    monkeypatch.setitem(PER_BAR, "HI", PerBarMetric("HI", "High-note share", "share of notes above middle C",
                                                    (0.0, 1.0), None, high_note_share, plot=True))
    bar = np.array([[0, 60, 4], [4, 64, 4], [8, 67, 4], [12, 72, 4]])
    assert continuation_metrics(bar, bar, 16, 1, primer_bars=1)["HI"].tolist() == [0.75]
    piece = np.concatenate([bar + np.array([16 * b, 0, 0]) for b in range(10)])  # bar b: onsets moved on b bars
    assert piece_bar_metrics(piece, 16, 10, reference_bars=8)["HI"].tolist()[8:] == [0.75, 0.75]

    report = evaluate(run_dir, settings=small_settings(probe=False, temperatures=(1.0,)), corpus=corpus)
    for src in ("rnn", "transformer", "human", "floor"):
        st = report["per_bar"]["HI"][src]
        assert st["n"][0] == 4 and st["mean"][0] is not None
    assert report["by_meter"]["4/4"]["HI"]["human"]["n"][0] == 4
    paths = {p.name for p in write_report(report, tmp_path / "r")}
    assert {"per_bar_HI.png", "per_bar_HI__human.csv", "per_bar_HI__rnn.csv"} <= paths
    assert (tmp_path / "r" / "per_bar_HI.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- the run as the user named it -----------------------------------------------------------------


def test_the_report_names_the_run_as_the_user_did(run_dir, corpus, tmp_path):
    from engine.evaluation.evaluate import run_label
    from engine.training.checkpoint import PRETRAINED_DIR

    assert run_label(PRETRAINED_DIR) == "pretrained"
    assert run_label(PRETRAINED_DIR, "pretrained") == "pretrained"
    assert run_label(run_dir, "runs/mine") == "runs/mine"
    report = evaluate(run_dir, settings=small_settings(probe=False, temperatures=(1.0,)), corpus=corpus,
                      run_name="runs/mine")
    assert report["run"]["dir"] == "runs/mine"
    from engine.evaluation.report import json_text  # what write_report writes as report.json

    assert str(run_dir) not in json_text(report)


def test_cli_checks_temperatures_and_min_n(tmp_path, capsys):
    import main

    for args, message in ((["--temperatures", "1.0,hot"], "('hot' is not a number)"),
                          (["--temperatures", "1.0,0"], "--temperatures must be 1 to 8 different numbers from 0.01 to 10"),
                          (["--temperatures", "1.0,0"], "('0' is out of range)"),
                          (["--temperatures", "0.7,0.7"], "(0.7 is listed twice)"),
                          (["--min-n", "0"], "--min-n must be a whole number from 1")):
        assert main.main(["evaluate", "--run", str(tmp_path), *args, "--out", str(tmp_path / "r")]) == 2, args
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_refuses_too_few_primers_and_a_blank_out_before_any_work(tmp_path, capsys):
    """Issue 25 item 12: fewer primers than min_n (every mean left out: a report that draws nothing) and an --out
    of spaces (a folder named by a space; train's too) are refused with the reason, before any work."""
    import main

    for args, message in ((["--primers", "3", "--min-n", "10", "--out", str(tmp_path / "r")],
                           "--primers 3 is fewer than --min-n 10"),
                          (["--out", "   "], "--out must name a folder for the report")):
        assert main.main(["evaluate", "--run", str(tmp_path / "no run"), *args]) == 2, args
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # and train's: a run saved in a folder named by spaces is refused the same way
    assert main.main(["train", "--out", "  ", "--preset", "tiny"]) == 2
    assert "--out must name a folder for the run" in capsys.readouterr().err
