"""The rules behind the bench's classroom figures, on known curves (the figures themselves are measured
by `main.py bench`, never in tests)."""

from __future__ import annotations

from engine.bench.classroom_bench import reached_quality, separated
from engine.models.registry import MODEL_KEYS

ORDERED = {"rnn": [2.0, 1.9, 1.85], "lstm": [1.7, 1.6, 1.55], "gru": [1.7, 1.58, 1.5],
           "attention": [1.2, 1.1, 1.05], "transformer": [1.3, 1.2, 1.1]}


def test_curves_count_as_separated_only_when_the_last_three_do_not_overlap():
    assert separated(ORDERED)
    assert not separated({**ORDERED, "rnn": [2.0, 1.9]})  # too few validations
    assert not separated({**ORDERED, "lstm": [1.7, 1.9, 1.55]})  # an LSTM value above one of the RNN's
    assert not separated({**ORDERED, "transformer": [1.3, 1.5, 1.1]})  # overlaps the GRU's
    # LSTM and GRU may cross each other, and so may the two attention models
    assert separated({**ORDERED, "attention": [1.0, 1.15, 1.12]})


def test_quality_means_every_model_within_the_margin_of_its_bundled_figure():
    bundled = {k: v[-1] for k, v in ORDERED.items()}
    assert reached_quality(ORDERED, bundled)
    assert reached_quality({**ORDERED, "rnn": [1.899]}, bundled)  # 0.049 above
    assert not reached_quality({**ORDERED, "rnn": [1.91]}, bundled)
    assert not reached_quality({k: v for k, v in ORDERED.items() if k != "gru"}, bundled)


def test_quick_bench_times_generation_and_influence_for_every_model(monkeypatch):
    """`bench` is where the speed targets live: its generation section reports, per model, the generation time
    and the influence time of a 16-bar continuation (attention too where a model has it). Run here on tiny
    models and short pieces (the bench's own figures are of the small preset and its full lengths; the code
    is the same)."""
    from engine.bench import generate_bench

    for name, value in (("BARS", 8), ("VARIATIONS", 2), ("INFLUENCE_BARS", 4)):
        monkeypatch.setattr(generate_bench, name, value)

    models = generate_bench.measure(quick=True, preset="tiny")["models"]
    assert list(models) == list(MODEL_KEYS)  # the modern models too (issue 22)
    for key, figures in models.items():
        assert figures["generate_s"] > 0 and figures["influence_s"] > 0 and figures["influence_notes"] > 0, key
        assert ("influence_attention_s" in figures) == (key in ("attention", "transformer")), key
    kv = models["transformer"]
    # a ratio is the median of at least five turns of its two sides, with their min-max beside it
    assert kv["kv_speedup_n"] >= 5 and kv["kv_speedup_range"][0] <= kv["kv_speedup"] <= kv["kv_speedup_range"][1]
    assert kv["kv_speedup"] > 0


def test_a_ratio_is_the_median_of_its_turns_with_their_min_max():
    from engine.bench.ratios import ALTERNATIONS, ratio_fields

    assert ALTERNATIONS >= 5
    assert ratio_fields("r", [1.2, 0.8, 1.0, 0.9, 5.0]) == {"r": 1.0, "r_range": [0.8, 5.0], "r_n": 5}  # one outlier
    assert ratio_fields("r", []) == {"r": None, "r_range": None, "r_n": 0}


def test_bench_command_runs_a_section_and_prints_json():
    """The command itself, once, in a process as a user starts it: a quick section, --only and --json."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "main.py", "bench", "--quick", "--only", "originality_bench", "--json"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["originality_index_s"] > 0 and figures["originality_query_ms"] > 0
    # the machine is named beside its figures (a time means nothing without the CPU it ran on)
    from engine.core.device import cpu_cores, cpu_model

    assert figures["machine"]["cpu"] == cpu_model() and figures["machine"]["cores"] == cpu_cores()
    assert figures["machine"]["torch"] and figures["machine"]["device"] in ("cpu", "cuda", "mps")


def test_the_modern_models_are_timed_beside_the_gru_each_after_an_untimed_step(monkeypatch):
    """Issue 22's per-parameter ratio comes from steps taken in turn (the order turning each round), never one model
    after the other, and the first step after a switch of model is not timed."""
    from engine.bench import train_bench

    log: list[tuple[str, str]] = []
    firsts: dict[str, list[int]] = {}  # the first step each timed turn counts the tokens of

    def engine_steps(key, cfg, corpus, out_dir):
        while True:
            log.append((key, "step"))
            yield key

    def engine_rate(steps, n, sampler, cfg, first_step):
        key = next(steps)
        log.append((key, "timed"))
        firsts.setdefault(key, []).append(first_step)
        return {"gru": 100.0, "ssm": 30.0, "mingru": 80.0}[key], first_step + n

    monkeypatch.setattr(train_bench, "_engine_steps", engine_steps)
    monkeypatch.setattr(train_bench, "_engine_rate", engine_rate)
    ratios = train_bench._per_param_vs_gru(None, None, None, "/nowhere", 3, 1, {"gru": 100, "ssm": 50, "mingru": 200})
    assert ratios == {"ssm": [0.6] * 3, "mingru": [0.4] * 3}  # (30 / 50) / (100 / 100), (80 / 200) / 1
    timed = [key for key, what in log if what == "timed"]
    assert timed[:3] == ["gru", "ssm", "mingru"] and timed[3:6] == ["ssm", "mingru", "gru"]  # the order turns
    # the engine trains on batch s at step s (one warm step each turn): each timed step's tokens are its own batch's
    assert firsts == {key: [1, 3, 5] for key in ("gru", "ssm", "mingru")}
    for i, (key, what) in enumerate(log):
        if what == "timed":  # right after an untimed step of the same model
            assert log[i - 2] == (key, "step"), log[i - 2:i + 1]
