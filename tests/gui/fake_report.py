"""A small memory report in the revised format (docs/design.md section 5), with known numbers, for the
Memory tab's tests: two models, two temperatures, two meters (one with fewer primers than min_n), a
human reference that thins out below min_n halfway, the windows, the length check, the distinct-bar
rate and, unless asked not to, the influence distance (the shape engine/influence adds to a report).

Every value differs by temperature, meter, source and metric, so a test can tell which one is drawn.
"""

from __future__ import annotations

import json
from pathlib import Path

MODELS = ["rnn", "attention"]
TEMPERATURES = ["1.0", "0.7"]
METERS = {"6/8": 30, "2/4": 6}  # primers; 2/4 has fewer than MIN_N
P, G, MIN_N = 4, 12, 10
HUMAN_REACHES = 6  # the human continuation's bars 7-12 rest on fewer than MIN_N primers
WINDOW_AFTER = {"6/8": 5.3333, "2/4": 8.0}  # where the primer leaves the attention model's window
CROP_AFTER = {"6/8": 1.3333, "2/4": 4.0}


def _stats(value: float, n: list[int]) -> dict:
    """mean/lo/hi/n per bar as a report keeps them: the mean null where n < MIN_N, the interval null
    where n < 2 (and, here, wherever the mean is)."""
    mean = [round(value + 0.01 * b, 4) if k >= MIN_N else None for b, k in enumerate(n)]
    return {"mean": mean,
            "lo": [None if m is None else round(m - 0.02, 4) for m in mean],
            "hi": [None if m is None else round(m + 0.03, 4) for m in mean],
            "n": list(n)}


def _block(t: int, m: int, primers: int) -> dict:
    """Every per-bar series for one temperature (index t) and meter (index m; -1 = all meters)."""
    full = [primers] * G
    human_n = [primers] * HUMAN_REACHES + [min(primers, MIN_N - 2)] * (G - HUMAN_REACHES)
    n_of = {**{k: full for k in MODELS}, "human": human_n, "floor": human_n}
    base = {"rnn": 0.1, "attention": 0.3, "human": 0.6, "floor": 0.2}
    shift = 0.2 * t + 0.05 * (m + 1)
    block = {}
    for offset, metric in enumerate(("TR", "RR", "IK")):
        block[metric] = {src: _stats(base[src] + shift + 0.001 * offset, n_of[src]) for src in base}
    block["TR_floor"] = {src: _stats(0.15 + 0.01 * i + shift / 4, n_of[src])
                         for i, src in enumerate([*MODELS, "human"])}
    block["TR_excess"] = {src: _stats(base[src] - 0.12 + shift / 2, n_of[src]) for src in [*MODELS, "human"]}
    return block


def _interval(mean: float, n: int) -> dict:
    return {"mean": mean, "lo": round(mean - 0.02, 4), "hi": round(mean + 0.02, 4), "n": n}


def _influence_figures(mean: float, chance: float, counts: list[int]) -> dict:
    return {"mean": mean, "lo": round(mean - 0.2, 3), "hi": round(mean + 0.3, 3), "n": 30, "n_notes": sum(counts),
            "median": round(mean * 0.8, 3), "q10": 0.25, "q90": round(mean * 2, 3),
            "histogram": {"edges": [0, 1, 2, 4, 8, 16], "counts": counts}, "chance": chance}


INFLUENCE = {
    "method": "gradient", "bars": 16, "primers": 30, "temperature": 1.0,
    "models": {"rnn": _influence_figures(0.8, 5.0, [700, 150, 40, 10, 0]),
               "attention": _influence_figures(3.5, 5.5, [300, 200, 150, 200, 50])},
    "human": _influence_figures(2.9, 6.0, [350, 250, 150, 150, 100]),
}


def build_report(influence: bool = True) -> dict:
    total = sum(METERS.values())
    by_t = {t: _block(i, -1, total) for i, t in enumerate(TEMPERATURES)}
    by_tm = {t: {m: _block(i, j, n) for j, (m, n) in enumerate(METERS.items())} for i, t in enumerate(TEMPERATURES)}
    sources = [*MODELS, "human"]
    rates = {t: {src: _interval(round(0.9 - 0.3 * i - 0.1 * s, 3), total) for s, src in enumerate(sources)}
             for i, t in enumerate(TEMPERATURES)}
    lengths = {"rnn": (0.0106, 4, False), "attention": (0.0012, 8, True)}
    effective_memory = {
        k: {"ks": [1, 2, 4, 8], "nll_k": [2.0, 1.5, 1.4, 1.4 + gap], "nll_full": 1.4 + gap, "steps": 4, "bars": 0.33,
            "n_targets": 384, "min_position": 256, "tolerance": 1.01, "full_minus_best_bits": gap, "best_k": best,
            "length_ok": ok, "length_tolerance_bits": 0.005}
        for k, (gap, best, ok) in lengths.items()}

    def rows(i: int, t: str) -> list[dict]:
        out = []
        for s, src in enumerate([*sources, "floor"]):
            row = {"source": src, "RR_first": 0.9, "RR_last": 0.8, "downbeat_rate": 0.95, "in_key_rate": 0.9,
                   "n_first": total, "n_last": total if src in MODELS else MIN_N - 2}
            if src in MODELS:
                gap, best, ok = lengths[src]
                row.update(valid_bpt=1.5 - 0.3 * s, effective_memory_bars=0.33, full_minus_best_bits=gap,
                           best_k=best, length_ok=ok, repeat_gain_bits=0.1 + s)
            if src in sources:
                row["TR_excess_first"] = _interval(round(0.05 + 0.1 * s + 0.2 * i, 3), total)
                row["TR_excess_last"] = (_interval(round(0.01 + 0.05 * s + 0.1 * i, 3), total) if src in MODELS
                                         else {"mean": None, "lo": None, "hi": None, "n": MIN_N - 2})
                row["distinct_bar_rate"] = rates[t][src]
                if influence:
                    figures = INFLUENCE["models"].get(src) or INFLUENCE["human"]
                    row["influence_distance_bars"] = {k: figures[k] for k in ("mean", "lo", "hi", "n")}
            out.append(row)
        return out

    report = {
        "format": "melody-memory-report",
        "settings": {"primers": total, "primer_bars": P, "bars": G, "samples": 1,
                     "temperatures": [float(t) for t in TEMPERATURES], "min_n": MIN_N, "seed": 0,
                     "per_bar_temperature": float(TEMPERATURES[0])},
        "run": {"dir": "fake-run", "models": {}},
        "models": list(MODELS),
        "primers": [f"tune-{i}" for i in range(total)],
        "windows": {
            "rnn": {"attention_window_steps": None, "reach_steps": None, "training_crop_steps": 64,
                    "primer_leaves_window_after_bars": {}, "past_training_crop_after_bars": CROP_AFTER},
            "attention": {"attention_window_steps": 64, "reach_steps": 64, "training_crop_steps": 64,
                          "primer_leaves_window_after_bars": WINDOW_AFTER, "past_training_crop_after_bars": CROP_AFTER},
        },
        "meters": {m: {"primers": n, "steps_per_bar": 12 if m == "6/8" else 8} for m, n in METERS.items()},
        "per_bar": by_t[TEMPERATURES[0]],
        "by_temperature": by_t,
        "by_meter": by_tm[TEMPERATURES[0]],
        "by_temperature_and_meter": by_tm,
        "distinct_bar_rate": rates[TEMPERATURES[0]],
        "distinct_bar_rate_by_temperature": rates,
        "effective_memory": effective_memory,
        "repeat_gain": {k: {"gain": 0.1 + i, "n_copyable": 100, "n_other": 300} for i, k in enumerate(MODELS)},
        "summary_by_temperature": {t: rows(i, t) for i, t in enumerate(TEMPERATURES)},
    }
    report["summary"] = report["summary_by_temperature"][TEMPERATURES[0]]
    if influence:
        report["influence"] = INFLUENCE
    return report


def first_format(report: dict) -> dict:
    """The same report as the first protocol wrote it: one temperature, the shared floor only."""
    old = {k: v for k, v in report.items() if not k.startswith(("by_", "distinct_bar_rate_", "summary_by_"))}
    old["per_bar"] = {m: v for m, v in report["per_bar"].items() if m not in ("TR_floor", "TR_excess")}
    old["settings"] = {k: v for k, v in report["settings"].items() if k not in ("min_n", "temperatures")}
    for later in ("meters", "windows", "influence"):
        old.pop(later, None)
    return old


def write_report(folder: Path, name: str = "report.json", **kw) -> Path:
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_report(**kw)), encoding="utf-8")
    return path
