"""The evaluation protocol and the report, on a tiny real run and a small hand-made corpus of AABB tunes."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from engine.errors import UserError
from engine.evaluate import EvalSettings, EvaluationCancelled, bootstrap_interval, evaluate, per_bar_stats
from engine.melody import Melody, Note
from engine.memory.probe import ProbeSettings
from engine.report import write_report
from engine.tokens import TokenConfig, encode

SECTION_BARS = 4


def _random_bars(rng, n_bars):
    """Bars of quarter and eighth notes on a C major scale (a bar = 16 steps)."""
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    bars = []
    for _ in range(n_bars):
        notes, step = [], 0
        while step < 16:
            length = min(int(rng.choice([2, 4])), 16 - step)
            notes.append((step, int(rng.choice(scale)), length))
            step += length
        bars.append(notes)
    return bars


def aabb_melody(rng, tune_id, split):
    a, b = _random_bars(rng, SECTION_BARS), _random_bars(rng, SECTION_BARS)
    bars = (a + a + b + b) * 2  # 32 bars, 512 steps
    notes = tuple(Note(i * 16 + on, p, d) for i, bar in enumerate(bars) for on, p, d in bar)
    return Melody(notes=notes, n_steps=len(bars) * 16, tune_id=tune_id, title=tune_id, meta={"split": split})


class FakeCorpus:
    """What evaluate() reads of engine.corpus.Corpus."""

    def __init__(self, seed=0, n_test=6, n_train=12):
        rng = np.random.default_rng(seed)
        self.melodies = [aabb_melody(rng, f"test{i:02d}", "test") for i in range(n_test)]
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
    from engine.training import TrainConfig, TrainJob, train

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


def small_settings(seed=0, probe=True):
    return EvalSettings(
        primers=4, primer_bars=SECTION_BARS, bars=8, samples=2, seed=seed, bootstrap=200,
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


def test_per_bar_stats_ignore_missing_bars():
    matrix = np.array([[1.0, 0.0], [1.0, np.nan], [1.0, np.nan]])
    st = per_bar_stats(matrix, n_boot=100)
    assert st["mean"] == [1.0, 0.0]
    assert st["n"] == [3, 1]


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
    assert rows["rnn"]["valid_bpt"] is not None and rows["rnn"]["effective_memory_steps"] >= 1
    assert len(report["gradient_memory"]["rnn"]["g"]) == 64
    assert report["probe"]["chance"] == pytest.approx(1 / 8)

    paths = write_report(report, tmp_path / "report")
    names = {p.name for p in paths}
    for png in ("per_bar_TR.png", "per_bar_RR.png", "per_bar_IK.png", "nll_k.png", "nll_per_bar.png",
                "gradient_memory.png", "ssm.png", "probe.png", "training_curves.png"):
        assert png in names
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "per_bar_TR__human.csv" in names and "probe__transformer.csv" in names
    assert report["training_curves"]["rnn"]["step"] == [4]  # the run validated once, at its last step
    assert "training_curves__rnn.csv" in names
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| model | gap 1 | gap 2 |" in summary and "| transformer |" in summary  # the probe's table
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["run"]["models"]["rnn"]["model"]["key"] == "rnn"
    assert doc["corpus"]["fingerprint"] == "fake-corpus"
    assert "| vanilla" not in (tmp_path / "report" / "summary.md").read_text()  # keys, as in the CLI
    assert "| rnn |" in (tmp_path / "report" / "summary.md").read_text()


def test_training_curve_says_how_much_the_last_quarter_still_gained(tmp_path):
    from engine.evaluate import training_curve
    from engine.report import summary_markdown

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


def test_same_seed_gives_an_identical_report(run_dir, corpus, tmp_path):
    settings = small_settings(seed=3)
    first = evaluate(run_dir, settings=settings, corpus=corpus)
    second = evaluate(run_dir, settings=settings, corpus=corpus)
    write_report(first, tmp_path / "a")
    write_report(second, tmp_path / "b")
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()
    other = evaluate(run_dir, settings=small_settings(seed=4, probe=False), corpus=corpus)
    assert other["examples"] != first["examples"]


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
    assert "--primers must be between 1" in capsys.readouterr().err
    assert main.main(["evaluate", "--run", str(tmp_path), "--probe-gaps", "1,x", "--out", str(tmp_path / "r")]) == 2
    assert "--probe-gaps must be whole numbers" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
