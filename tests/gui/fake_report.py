"""A small memory report in the current format (docs/design.md section 5), with known numbers, for the
Memory tab's tests: seven models, four temperatures, two meters (one with fewer primers than min_n), a
human reference that thins out below min_n halfway, the windows, the length check, the distinct-bar
rate (over all bars and at matched length), the influence distance with its references (unless asked
not to), recall by distance in bars and in steps with three training seeds, the rhythm-matched and the
random floor, pitch-only and phase-robust theme recall, paired differences and the probe's three seeds.

Every value differs by temperature, meter, source, metric and seed, so a test can tell which one is
drawn. The two models beyond the seed's five stand in for the modern pair (issue 22) until the registry
has them: `stand_ins_registered()` registers them for a test, with their labels and colours.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
from pathlib import Path

from engine.models.registry import default_selection

STAND_INS = {"ssm": ("selective SSM (Mamba-style)", "#8c564b"), "mingru": ("minGRU (parallel RNN)", "#17becf")}
MODELS = [*default_selection(), *STAND_INS]  # seven
TEMPERATURES = ["0.7", "0.8", "0.9", "1.0"]
SHOWN_T = "1.0"  # settings.per_bar_temperature: the view the tab opens on
METERS = {"6/8": 30, "2/4": 6}  # primers; 2/4 has fewer than MIN_N
P, G, MIN_N = 4, 12, 10
HUMAN_REACHES = 6  # the human continuation's bars 7-12 rest on fewer than MIN_N primers
WINDOW_AFTER = {"6/8": 5.3333, "2/4": 8.0}  # where the primer leaves the attention models' window
CROP_AFTER = {"6/8": 1.3333, "2/4": 4.0}
SPAN, REACH, CROP = 64, 126, 64  # steps: the attention span, the Transformer's reach, the training crop
WINDOWS = ("bars 1-8", "bars 5-12")  # the paired differences' first and last bars
SEEDS = ["1", "2", "3"]
BASE = {"rnn": 0.1, "lstm": 0.15, "gru": 0.17, "attention": 0.3, "transformer": 0.35, "ssm": 0.2, "mingru": 0.12,
        "human": 0.6, "floor": 0.2}

# recall excess per distance bucket (bits per token) of each family; None where too few tunes
STEP_BUCKETS = ["<16", "16-31", "32-63", "64-127", "128-255", "256-511", "512-1023"]
BAR_BUCKETS = ["1", "2", "3-4", "5-8", "9-16", "17-32", "33-64"]
STEP_EDGES = [[1, 15], [16, 31], [32, 63], [64, 127], [128, 255], [256, 511], [512, 1023]]
BAR_EDGES = [[1, 1], [2, 2], [3, 4], [5, 8], [9, 16], [17, 32], [33, 64]]
STEP_DISTANCE = [12.0, 22.5, 44.0, 90.0, 180.0, 350.0, 700.0]  # the targets' mean distance per bucket
BUCKET_TUNES = [40, 60, 80, 70, 50, 20, 6]  # the last bucket has fewer than MIN_N tunes: null
RECALL = {"rnn": [0.35, 0.12, 0.02, 0.0, 0.0, 0.0], "lstm": [0.5, 0.3, 0.15, 0.06, 0.02, 0.0],
          "gru": [0.48, 0.28, 0.12, 0.05, 0.01, 0.0], "attention": [0.9, 0.8, 0.7, 0.05, 0.02, 0.0],
          "transformer": [1.0, 0.9, 0.8, 0.4, 0.03, 0.0], "ssm": [0.6, 0.4, 0.25, 0.12, 0.05, 0.02],
          "mingru": [0.4, 0.2, 0.08, 0.02, 0.0, 0.0]}
CONTROL = {"attention": 0.05, "transformer": 0.07}  # attention draws on unrelated bars too


@contextlib.contextmanager
def stand_ins_registered():
    """The registry with seven models: the stand-ins registered (as small GRUs) where it lacks them."""
    from engine.models import ModelSpec, register, unregister
    from engine.models.recurrent import RecurrentConfig, RecurrentLM
    from engine.models.registry import MODEL_KEYS

    added = []
    for key, (label, colour) in STAND_INS.items():
        if key not in MODEL_KEYS:
            sizes = {p: {"cell": "gru", "embed_dim": 16, "hidden_size": 32} for p in ("tiny", "small", "medium")}
            register(ModelSpec(key, label, colour, RecurrentConfig, RecurrentLM, sizes, group="modern"))
            added.append(key)
    try:
        yield MODELS
    finally:
        for key in added:
            unregister(key)


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
    shift = 0.1 * t + 0.03 * (m + 1)
    block = {}
    for offset, metric in enumerate(("TR", "RR", "IK", "PTR", "TR_phase")):
        block[metric] = {src: _stats(BASE[src] + shift + 0.001 * offset, n_of[src]) for src in BASE}
    sources = [*MODELS, "human"]
    block["TR_floor"] = {src: _stats(0.15 + 0.01 * i + shift / 4, n_of[src]) for i, src in enumerate(sources)}
    block["TR_floor_random"] = {src: _stats(0.1 + 0.005 * i + shift / 5, n_of[src]) for i, src in enumerate(sources)}
    block["TR_excess"] = {src: _stats(BASE[src] - 0.12 + shift / 2, n_of[src]) for src in sources}
    block["TR_excess_random"] = {src: _stats(BASE[src] - 0.05 + shift / 2, n_of[src]) for src in sources}
    for offset, metric in enumerate(("PTR", "TR_phase"), start=1):  # the companions' own floors and excess
        block[f"{metric}_floor"] = {src: _stats(0.2 + 0.01 * i + shift / 4, n_of[src]) for i, src in enumerate(sources)}
        block[f"{metric}_excess"] = {src: _stats(BASE[src] - 0.1 + 0.02 * offset + shift / 2, n_of[src])
                                     for src in sources}
    return block


def _interval(mean: float, n: int, half: float = 0.02) -> dict:
    return {"mean": mean, "lo": round(mean - half, 4), "hi": round(mean + half, 4), "n": n}


def _influence_figures(mean: float, chance: float, counts: list[int]) -> dict:
    return {"mean": mean, "lo": round(mean - 0.2, 3), "hi": round(mean + 0.3, 3), "n": 30, "n_notes": sum(counts),
            "median": round(mean * 0.8, 3), "q10": 0.25, "q90": round(mean * 2, 3),
            "histogram": {"edges": [0, 1, 2, 4, 8, 16], "counts": counts}, "chance": chance,
            "reference_previous_note": _interval(0.3, 30), "reference_uniform": _interval(chance, 30),
            "share_on_primer": _interval(round(mean / 20, 3), 30)}


INFLUENCE = {
    "method": "gradient", "bars": 16, "primers": 30, "temperature": 1.0,
    **{k: _influence_figures(round(0.8 + 0.45 * i, 2), round(5.0 + 0.1 * i, 2),
                             [700 - 80 * i, 150 + 10 * i, 40 + 20 * i, 10 + 20 * i, 5 * i])
       for i, k in enumerate(MODELS)},  # each model at influence.<model>
    "human": _influence_figures(2.9, 6.0, [350, 250, 150, 150, 100]),
    # how far back each source's bars repeat earlier ones (the report's reference for the histogram)
    "repeats": {k: _influence_figures(4.0, 6.0, [0, 20, 30, 30, 20]) for k in MODELS},
}


def _recall(key: str, seed: int, labels: list[str]) -> dict:
    """One model's recall excess per bucket for one seed (seed 0 = the mean over seeds), in the shape
    engine/memory/recall.py writes (labels, edges, the targets' mean distance, control beside)."""
    scale = 1.0 + 0.1 * (seed - 2) if seed else 1.0
    values = [round(v * scale, 4) for v in RECALL[key]] + [None]
    half = [None if v is None else round(0.03 + 0.2 / k ** 0.5, 4) for v, k in zip(values, BUCKET_TUNES)]
    control = CONTROL.get(key, 0.01)
    steps = labels == STEP_BUCKETS
    return {"buckets": labels, "edges": STEP_EDGES if steps else BAR_EDGES,
            "distance_mean": STEP_DISTANCE if steps else [float(sum(e)) / 2 for e in BAR_EDGES], "mean": values,
            "lo": [None if v is None else round(v - h, 4) for v, h in zip(values, half)],
            "hi": [None if v is None else round(v + h, 4) for v, h in zip(values, half)],
            "n": [4 * k for k in BUCKET_TUNES], "n_tunes": list(BUCKET_TUNES),
            "control": [None if v is None else round(control * (1 - 0.1 * i), 4) for i, v in enumerate(values)]}


def _horizon(curve: dict, edges: list[float]) -> float | None:
    """The design's rule: the largest bucket, every shorter one passing too, whose interval lies above 0
    and whose mean is at least max(0.05, 10% of the first bucket's)."""
    first = curve["mean"][0]
    reached = None
    for mean, lo, edge in zip(curve["mean"], curve["lo"], edges):
        if mean is None or lo <= 0 or mean < max(0.05, 0.1 * first):
            break
        reached = edge
    return reached


def _recall_part(seed: int) -> dict:
    steps = {k: _recall(k, seed, STEP_BUCKETS) for k in MODELS}
    bars = {k: _recall(k, seed, BAR_BUCKETS) for k in MODELS}
    step_edges, bar_edges = [15, 31, 63, 127, 255, 511, 1023], [1, 2, 4, 8, 16, 32, 64]
    half = {k: next((e for e, v in zip(step_edges, c["mean"]) if v is not None and v < c["mean"][0] / 2), None)
            for k, c in steps.items()}
    return {"recall_by_distance": bars, "recall_by_distance_steps": steps,
            "memory_horizon_steps": {k: _horizon(c, step_edges) for k, c in steps.items()},
            "memory_horizon_bars": {k: _horizon(c, bar_edges) for k, c in bars.items()},
            "half_recall_steps": half,
            "length_generation": {k: {"training_crop_steps": CROP, "worse_past_crop": k == "transformer"} for k in MODELS},
            "length_generation_worse": ["transformer"]}


def _windows() -> dict:
    out = {}
    for key in MODELS:
        attends = key in ("attention", "transformer")
        out[key] = {"attention_window_steps": SPAN if attends else None,
                    "reach_steps": (REACH if key == "transformer" else SPAN) if attends else None,
                    "training_crop_steps": CROP, "primer_leaves_window_after_bars": WINDOW_AFTER if attends else {},
                    "past_training_crop_after_bars": CROP_AFTER}
    return out


def _model_side(key: str, i: int) -> dict:
    gap, best, ok = (0.0106, 4, False) if key == "rnn" else (0.0012 + 0.001 * i, 8, True)
    return {"effective_memory": {"ks": [1, 2, 4, 8], "nll_k": [2.0, 1.5, 1.4, 1.4 + gap], "nll_full": 1.4 + gap,
                                 "steps": 4, "bars": 0.33, "n_targets": 384, "min_position": 256, "tolerance": 1.01,
                                 "full_minus_best_bits": gap, "best_k": best, "length_ok": ok,
                                 "length_tolerance_bits": 0.005},
            "nll_per_bar": _stats(2.0 - 0.1 * i, [30] * G),
            "gradient_memory": {"ks": [1, 2, 4, 8, 16, 32, 64], "g": [1.0 / (1 + k) ** (1.5 - 0.15 * i) for k in range(7)]},
            "repeat_gain": {"gain": 0.1 + i, "n_copyable": 100, "n_other": 300, "copyable_bits": 1.0, "other_bits": 1.1}}


def _late(src: str, s: int, i: int) -> float:
    """The late-bar TR excess at temperature index i: the Transformer falls faster with temperature than the
    others, so that its order with the gated models flips within the sweep (as in the audited report)."""
    return round(0.01 + 0.1 * (3 - i) if src == "transformer" else 0.01 + 0.02 * s + 0.04 * (3 - i), 3)


def _summary_rows(i: int, t: str, rates: dict, influence: bool) -> list[dict]:
    total = sum(METERS.values())
    out = []
    for s, src in enumerate([*MODELS, "human", "floor"]):
        row = {"source": src, "RR_first": 0.9, "RR_last": 0.8, "downbeat_rate": 0.95, "in_key_rate": 0.9,
               "n_first": total, "n_last": total if src in MODELS else MIN_N - 2}
        if src in MODELS:
            em = _model_side(src, s)["effective_memory"]
            row.update(valid_bpt=round(1.5 - 0.1 * s, 3), effective_memory_bars=0.33,
                       full_minus_best_bits=em["full_minus_best_bits"], best_k=em["best_k"],
                       length_ok=em["length_ok"], repeat_gain_bits=0.1 + s)
        if src != "floor":
            row["TR_excess_first"] = _interval(round(0.05 + 0.03 * s + 0.05 * i, 3), total)
            row["TR_excess_last"] = (_interval(_late(src, s, i), total) if src in MODELS
                                     else {"mean": None, "lo": None, "hi": None, "n": MIN_N - 2})
            row["distinct_bar_rate"] = rates[t][src]
            if influence:
                figures = INFLUENCE[src] if src in MODELS else INFLUENCE["human"]
                row["influence_distance_bars"] = {k: figures[k] for k in ("mean", "lo", "hi", "n")}
        out.append(row)
    return out


def _probe() -> dict:
    gaps = [1, 2, 4, 8]
    models = {}
    for i, key in enumerate(MODELS):
        by_seed = {str(s): [round(max(0.1, 0.95 - (0.3 - 0.03 * i) * g ** 0.5 + 0.04 * s), 3) for g in gaps]
                   for s in range(3)}
        columns = list(zip(*by_seed.values()))
        models[key] = {"accuracy": [round(sum(v) / 3, 4) for v in columns], "accuracy_min": [min(v) for v in columns],
                       "accuracy_max": [max(v) for v in columns], "n_seeds": 3,
                       "by_seed": {seed: {"accuracy": acc, "train_steps": 600} for seed, acc in by_seed.items()}}
    settings = {"gaps": gaps, "preset": "tiny", "train_steps": 600, "batch_size": 32, "learning_rate": 0.003,
                "eval_sequences": 64, "seed": 0, "seeds": [0, 1, 2], "steps_per_bar": 16}
    return {"gaps": gaps, "chance": 0.1, "settings": settings, "models": models}


PAIRED_SERIES = ("TR_excess", "PTR_excess", "TR_phase_excess", "TR_excess_random")


def _paired(t: int, shift: float = 0.0) -> dict:
    """paired.<a>-<b>.<window>: every pair of models, then each model against the human continuation."""
    total = sum(METERS.values())
    return {f"{a}-{b}": {w: _interval(round(BASE[a] - BASE[b] + 0.01 * j + 0.002 * t + shift, 4), total, 0.03)
                         for j, w in enumerate(WINDOWS)}
            for a, b in [*itertools.combinations(MODELS, 2), *((k, "human") for k in MODELS)]}


def build_report(influence: bool = True) -> dict:
    total = sum(METERS.values())
    by_t = {t: _block(i, -1, total) for i, t in enumerate(TEMPERATURES)}
    by_tm = {t: {m: _block(i, j, n) for j, (m, n) in enumerate(METERS.items())} for i, t in enumerate(TEMPERATURES)}
    sources = [*MODELS, "human"]
    rates = {t: {src: _interval(round(0.9 - 0.1 * i - 0.05 * s, 3), total) for s, src in enumerate(sources)}
             for i, t in enumerate(TEMPERATURES)}
    side = {k: _model_side(k, i) for i, k in enumerate(MODELS)}
    matched = {t: {src: _interval(round(0.7 - 0.03 * s - 0.02 * i, 3), total) for s, src in enumerate(sources)}
               for i, t in enumerate(TEMPERATURES)}
    report = {
        "format": "melody-memory-report/2",
        "settings": {"primers": total, "primer_bars": P, "bars": G, "samples": 1,
                     "temperatures": [float(t) for t in TEMPERATURES], "min_n": MIN_N, "seed": 0,
                     "per_bar_temperature": float(SHOWN_T), "floor": "rhythm_matched", "paired_series": "TR_excess",
                     "probe": {"seeds": [0, 1, 2], "steps_per_bar": 16, "gaps": [1, 2, 4, 8], "preset": "tiny",
                               "train_steps": 600}},
        "run": {"dir": "fake-run", "models": {}},
        "models": list(MODELS),
        "primers": [f"tune-{i}" for i in range(total)],
        "windows": _windows(),
        "meters": {m: {"primers": n, "steps_per_bar": 12 if m == "6/8" else 8} for m, n in METERS.items()},
        "per_bar": by_t[SHOWN_T],
        "by_temperature": by_t,
        "by_meter": by_tm[SHOWN_T],
        "by_temperature_and_meter": by_tm,
        "distinct_bar_rate": rates[SHOWN_T],
        "distinct_bar_rate_by_temperature": rates,
        "distinct_bar_rate_matched": matched[SHOWN_T],
        "distinct_bar_rate_matched_by_temperature": matched,
        "distinct_bar_rate_matched_paired": {f"{k}-human": _interval(round(0.03 * (i - 3), 3), total)
                                             for i, k in enumerate(MODELS)},
        "paired": _paired(TEMPERATURES.index(SHOWN_T)),
        "paired_by_temperature": {t: _paired(i) for i, t in enumerate(TEMPERATURES)},
        "paired_by_series": {series: _paired(TEMPERATURES.index(SHOWN_T), 0.02 * j)
                             for j, series in enumerate(PAIRED_SERIES)},
        "self_similarity": {src: [[1.0 if r == c else round(0.2 + 0.05 * ((r + c + s) % 5), 2) for c in range(P + G)]
                                  for r in range(P + G)] for s, src in enumerate([*MODELS[:3], "human"])},
        **{part: {k: side[k][part] for k in MODELS} for part in ("effective_memory", "nll_per_bar", "gradient_memory",
                                                                "repeat_gain")},
        "summary_by_temperature": {t: _summary_rows(i, t, rates, influence) for i, t in enumerate(TEMPERATURES)},
        "probe": _probe(),
        **_recall_part(0),
        "seeds": {s: _recall_part(int(s)) for s in SEEDS},
    }
    report["summary"] = report["summary_by_temperature"][SHOWN_T]
    if influence:
        report["influence"] = INFLUENCE
    # a copy: tests edit the report they get (a damaged entry, an older layout), and an edit must not reach the
    # module's tables and with them every later report built in the same worker
    return copy.deepcopy(report)


NEW_KEYS = ("recall_by_distance", "recall_by_distance_steps", "memory_horizon_bars", "memory_horizon_steps",
            "half_recall_steps", "seeds", "length_generation", "length_generation_worse", "paired",
            "paired_by_temperature", "paired_by_series",
            "distinct_bar_rate_matched", "distinct_bar_rate_matched_by_temperature", "distinct_bar_rate_matched_paired")
COMPANIONS = ("TR_floor_random", "TR_excess_random", "PTR", "PTR_floor", "PTR_excess", "TR_phase", "TR_phase_floor",
              "TR_phase_excess")


def before_recall(report: dict) -> dict:
    """The same report as evaluate wrote it before recall by distance and the controls of issue 24: one
    (random-partner) floor, no PTR or TR_phase, no paired differences, the probe with one seed."""
    old = {k: v for k, v in report.items() if k not in NEW_KEYS}
    old["settings"] = {k: v for k, v in report["settings"].items() if k not in ("floor", "probe", "paired_series")}
    old["per_bar"] = _without_companions(report["per_bar"])
    old["by_meter"] = {m: _without_companions(b) for m, b in report["by_meter"].items()}
    old["by_temperature"] = {t: _without_companions(b) for t, b in report["by_temperature"].items()}
    old["by_temperature_and_meter"] = {t: {m: _without_companions(b) for m, b in meters.items()}
                                       for t, meters in report["by_temperature_and_meter"].items()}
    old["probe"] = {k: v for k, v in report["probe"].items() if k != "settings"}
    old["probe"]["models"] = {k: {"accuracy": r["accuracy"]} for k, r in report["probe"]["models"].items()}
    old["probe"]["settings"] = {"gaps": report["probe"]["gaps"], "preset": "tiny", "train_steps": 600, "seed": 0}
    if "influence" in old:  # and the layout of then: every model's entry under influence.models
        block = json.loads(json.dumps(old["influence"]))
        old["influence"] = {**{k: block.pop(k) for k in ("method", "bars", "primers", "temperature")},
                            "models": {k: block.pop(k) for k in MODELS}, **block}
        for figures in [*old["influence"]["models"].values(), old["influence"]["human"]]:
            for reference in ("reference_previous_note", "reference_uniform", "share_on_primer"):
                figures.pop(reference)
    return old


def _without_companions(block: dict) -> dict:
    return {m: v for m, v in block.items() if m not in COMPANIONS}


def first_format(report: dict) -> dict:
    """The same report as the first protocol wrote it: one temperature, the shared floor only."""
    old = before_recall(report)
    old = {k: v for k, v in old.items() if not k.startswith(("by_", "distinct_bar_rate_", "summary_by_"))}
    old["per_bar"] = {m: v for m, v in old["per_bar"].items() if m not in ("TR_floor", "TR_excess")}
    old["settings"] = {k: v for k, v in old["settings"].items() if k not in ("min_n", "temperatures")}
    for later in ("meters", "windows", "influence"):
        old.pop(later, None)
    return old


def write_report(folder: Path, name: str = "report.json", **kw) -> Path:
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_report(**kw)), encoding="utf-8")
    return path
