"""What the views of the sampled measures' controls read from a report (issue 24): no Qt.

Keys (docs/design.md section 5, "Controls of the sampled per-bar measures"): `summary_by_temperature.<T>`
(the late-bar TR excess of every model at each temperature of the sweep), `paired.<a>-<b>.<window>.{mean,
lo, hi, n}` (per-primer differences with a paired bootstrap; `paired_by_temperature.<T>` when the report
gives them per temperature), `distinct_bar_rate_matched.<source>` (`..._by_temperature.<T>` likewise),
`influence.<model>.{reference_previous_note, reference_uniform, share_on_primer}` (each {mean, lo, hi, n};
`influence.models.<model>` in a report written before the entries moved; a report before the references
has the uniform spread as the number `chance`), and the probe's
`settings.{seeds, steps_per_bar}` with `probe.models.<model>.{accuracy, accuracy_min, accuracy_max,
n_seeds, by_seed}`. `paired_by_series.<series>` gives the paired differences of the other excess series
(pitch-only, phase-robust, over the random floor) at the report's own temperature.
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


def paired_series(report: dict) -> list[str]:
    """The excess series the report gives paired differences of, its headline one (`paired`) first."""
    main = (report.get("settings") or {}).get("paired_series", "TR_excess")
    return [main, *(s for s in report.get("paired_by_series") or {} if s != main)] if report.get("paired") else []


def paired(report: dict, keys: list[str], temperature: str | None,
           series: str | None = None) -> tuple[list[Pair], str | None]:
    """Every pair the report gives for one series (default: its headline one), in the registry's order of
    its first and then its second model (the model-vs-human pairs last), and the temperature they were
    sampled at (None when the report does not say)."""
    by_t = report.get("paired_by_temperature") or {}
    shown = (report.get("settings") or {}).get("per_bar_temperature")
    headline = not series or series == (report.get("settings") or {}).get("paired_series", "TR_excess")
    if headline and temperature in by_t:
        block, at = by_t[temperature], temperature
    else:
        block = report.get("paired") if headline else (report.get("paired_by_series") or {}).get(series)
        block = block or {}
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
    """"<a>-<b>" -> (a, b), the two sources of a paired difference; model keys may hold a dash themselves, so
    every cut is tried."""
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
    uniform = _mean(figures.get("reference_uniform"))
    return InfluenceReferences(_mean(figures.get("reference_previous_note")),
                               uniform if uniform is not None else figures.get("chance"), share)


def _mean(figure) -> float | None:
    """A reference given as a number or as a figure {mean, lo, hi, n}."""
    return figure.get("mean") if isinstance(figure, dict) else figure


@dataclass
class ProbeSeeds:
    seeds: list[str]
    steps_per_bar: int | None
    spread: dict[str, tuple[np.ndarray, np.ndarray, int]]  # model -> (lowest, highest over seeds, n seeds)


def probe_seeds(probe: dict, report: dict | None = None) -> ProbeSeeds:
    """The probe's seeds (from its own settings, else the report's) and each model's spread over them:
    `accuracy_min`/`accuracy_max`, else the range of `by_seed`; no spread from fewer than 2 seeds."""
    settings = probe.get("settings") or ((report or {}).get("settings") or {}).get("probe") or {}
    spread = {}
    for key, record in (probe.get("models") or {}).items():
        by_seed = [r.get("accuracy") if isinstance(r, dict) else r for r in (record.get("by_seed") or {}).values()]
        n = int(record.get("n_seeds") or len(by_seed) or 1)
        if n < 2:
            continue
        if record.get("accuracy_min") is not None and record.get("accuracy_max") is not None:
            spread[key] = (floats(record["accuracy_min"]), floats(record["accuracy_max"]), n)
        elif len(by_seed) >= 2:
            values = floats(by_seed)
            spread[key] = (np.nanmin(values, axis=0), np.nanmax(values, axis=0), n)
    seeds = settings.get("seeds")
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    if not seeds:
        seeds = [settings["seed"]] if settings.get("seed") is not None else []
    return ProbeSeeds([str(s) for s in seeds], settings.get("steps_per_bar"), spread)
