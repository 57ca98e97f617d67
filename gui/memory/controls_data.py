"""What the views of the sampled measures' controls read from a report (issue 24): no Qt.

Keys (docs/design.md section 5, "Controls of the sampled per-bar measures"): `summary_by_temperature.<T>`
(the late-bar TR excess of every model at each temperature of the sweep), `paired.<a>-<b>.<window>.{mean,
lo, hi, n}` (per-primer differences with a paired bootstrap; `paired_by_temperature.<T>` when the report
gives them per temperature), `distinct_bar_rate_matched.<source>` (`..._by_temperature.<T>` likewise),
`influence.models.<model>.{reference_previous_note, share_on_primer}` beside the uniform spread
(`chance`), and the probe's `settings.probe.{seeds, steps_per_bar}` with `probe.models.<model>.
accuracy_by_seed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .report_data import floats, summary_rows, temperatures


@dataclass
class Sweep:
    """One source's late-bar TR excess at each temperature of the sweep."""

    key: str
    temperatures: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray


def sweep(report: dict, sources: list[str], field: str = "TR_excess_last") -> dict[str, Sweep]:
    """source -> its summary figure `field` at every temperature, in rising temperature."""
    temps = sorted(temperatures(report), key=float)
    out = {}
    for src in sources:
        rows = [next((r for r in summary_rows(report, t) if r.get("source") == src), {}) for t in temps]
        figures = [r.get(field) if isinstance(r.get(field), dict) else {} for r in rows]
        if not any(f.get("mean") is not None for f in figures):
            continue
        out[src] = Sweep(src, np.array([float(t) for t in temps]),
                         *(floats([f.get(k) for f in figures]) for k in ("mean", "lo", "hi", "n")))
    return out


@dataclass(frozen=True)
class Pair:
    a: str
    b: str  # a model key or "human"
    windows: dict  # "bars 1-8" -> {mean, lo, hi, n}


def paired(report: dict, keys: list[str], temperature: str | None) -> tuple[list[Pair], str | None]:
    """Every pair the report gives, in the registry's order of its first and then its second model (the
    model-vs-human pairs last), and the temperature they were sampled at (None when the report does not
    say)."""
    by_t = report.get("paired_by_temperature") or {}
    if temperature in by_t:
        block, at = by_t[temperature], temperature
    else:
        block = report.get("paired") or {}
        shown = (report.get("settings") or {}).get("per_bar_temperature")
        at = None if shown is None else str(float(shown))
    order = {k: i for i, k in enumerate([*keys, "human"])}
    pairs = []
    for name, windows in block.items():
        a, b = _split(name, order)
        if a is not None and isinstance(windows, dict):
            pairs.append(Pair(a, b, windows))
    pairs.sort(key=lambda p: (p.b == "human", order[p.a], order[p.b]))
    return pairs, at


def _split(name: str, order: dict) -> tuple[str | None, str | None]:
    """"lstm-gru" -> ("lstm", "gru"); model keys may hold a dash themselves, so every cut is tried."""
    for i, ch in enumerate(name):
        if ch == "-" and name[:i] in order and name[i + 1:] in order:
            return name[:i], name[i + 1:]
    return None, None


def pair_windows(pairs: list[Pair]) -> list[str]:
    """The bar windows the pairs are given for, in the report's order ("bars 1-8", "bars 57-64")."""
    seen: dict[str, None] = {}
    for p in pairs:
        seen.update(dict.fromkeys(p.windows))
    return list(seen)


def distinct_matched(report: dict, temperature: str | None) -> tuple[dict, str | None]:
    """source -> the distinct-bar rate with model and human scored over the same bars, and the
    temperature it is given at."""
    by_t = report.get("distinct_bar_rate_matched_by_temperature") or {}
    if temperature in by_t:
        return by_t[temperature], temperature
    shown = (report.get("settings") or {}).get("per_bar_temperature")
    return report.get("distinct_bar_rate_matched") or {}, None if shown is None else str(float(shown))


@dataclass(frozen=True)
class InfluenceReferences:
    previous_note: float | None  # all weight on the note before: the short extreme
    uniform: float | None  # every earlier note weighed the same: the long extreme
    share_on_primer: dict | None  # {mean, lo, hi, n}: the share of a note's influence on primer notes


def influence_references(figures: dict) -> InfluenceReferences:
    share = figures.get("share_on_primer")
    if isinstance(share, (int, float)):
        share = {"mean": float(share), "lo": None, "hi": None, "n": figures.get("n")}
    uniform = figures.get("reference_uniform", figures.get("chance"))
    return InfluenceReferences(figures.get("reference_previous_note"), uniform, share)


@dataclass
class ProbeSeeds:
    seeds: list[str]
    steps_per_bar: int | None
    by_model: dict[str, np.ndarray]  # model -> accuracy [seed, gap]


def probe_seeds(probe: dict, report: dict | None = None) -> ProbeSeeds:
    """The probe's seeds (from its own settings, else the report's) and each model's accuracy per seed."""
    settings = probe.get("settings") or ((report or {}).get("settings") or {}).get("probe") or {}
    by_model = {}
    for key, record in (probe.get("models") or {}).items():
        per_seed = record.get("accuracy_by_seed")
        if isinstance(per_seed, dict):
            per_seed = list(per_seed.values())
        if per_seed:
            by_model[key] = floats(per_seed)
    seeds = settings.get("seeds")
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    if not seeds and by_model:
        seeds = list(range(len(next(iter(by_model.values())))))
    return ProbeSeeds([str(s) for s in seeds or []], settings.get("steps_per_bar"), by_model)
