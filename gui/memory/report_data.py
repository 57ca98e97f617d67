"""What the Memory tab reads from a report for the view the user chose (temperature, meter, floor): no Qt.

The keys are the contract of docs/design.md section 5 ("Protocol (revised ...)" and "Controls of the
sampled per-bar measures"): `by_temperature.<T>`, `by_temperature_and_meter.<T>.<meter>`,
`distinct_bar_rate_by_temperature.<T>`, `summary_by_temperature.<T>`, `windows.<model>`, `meters`,
`settings.min_n`, `settings.floor` ("rhythm_matched"; a report without it has the random-partner floor
as its only floor) with the random floor under `per_bar.TR_floor_random`, the companions `PTR` and
`TR_phase`, and `influence` when the report has it. A report of the first format (one temperature, no
matched floor) has only `per_bar`, `summary` and `distinct_bar_rate` or less: every reader falls back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALL_METERS = ""  # the meter filter's "every meter" choice
RHYTHM_MATCHED, RANDOM = "rhythm_matched", "random"  # the floors: settings.floor names the report's own


def models(report: dict) -> list[str]:
    """The report's models in the registry's order (its labels and colours everywhere), models the
    registry does not know after them in the report's order: every per-model view lists them all."""
    from engine.models.registry import MODEL_KEYS

    keys = [k for k in report.get("models", []) if isinstance(k, str)]
    return [k for k in MODEL_KEYS if k in keys] + [k for k in keys if k not in MODEL_KEYS]


def floats(values) -> np.ndarray:
    """A report's numbers (None for NaN after JSON cleaning) as a float array with NaN."""
    return np.array([[np.nan if v is None else v for v in row] if isinstance(row, list) else (np.nan if row is None else row)
                     for row in values], dtype=float)


def temperatures(report: dict) -> list[str]:
    """The temperatures the report's per-bar curves were computed at, as its keys ("1.0", "0.7")."""
    return list(report.get("by_temperature") or {})


def default_temperature(report: dict) -> str | None:
    """The temperature shown first: the one the report's per_bar block was sampled at, else its first."""
    temps = temperatures(report)
    shown = (report.get("settings") or {}).get("per_bar_temperature")
    key = None if shown is None else str(float(shown))
    return key if key in temps else (temps[0] if temps else None)


def primary_floor(report: dict) -> str:
    """The floor of the report's TR_floor and TR_excess series: settings.floor, and the random partner
    in a report that predates the rhythm-matched floor."""
    return (report.get("settings") or {}).get("floor") or RANDOM


def floors(report: dict) -> list[str]:
    """The floors this report can show, its own first."""
    primary = primary_floor(report)
    extra = [RANDOM] if primary != RANDOM and "TR_floor_random" in (report.get("per_bar") or {}) else []
    return [primary, *extra]


def floor_key(measure: str, floor: str, report: dict) -> str:
    """The per_bar key of a measure's floor: "TR_floor" for the report's own, "TR_floor_random"."""
    return f"{measure}_floor" if floor == primary_floor(report) else f"{measure}_floor_{floor}"


def excess(block: dict, measure: str, floor: str, report: dict) -> tuple[dict, bool]:
    """source -> {mean, lo, hi, n} of a measure over a floor, and whether it is the report's paired
    figure. Where the report gives the excess (paired per primer, with its interval) that is it; else
    the difference of the two means, with no interval: an interval of a paired difference cannot be
    made from the two series' own intervals."""
    primary = floor == primary_floor(report)
    given = block.get(f"{measure}_excess" if primary else f"{measure}_excess_{floor}")
    if given:
        return given, True
    raw, base = block.get(measure) or {}, block.get(floor_key(measure, floor, report)) or {}
    out = {}
    for src in raw:
        if src in base:
            a, b = floats(raw[src]["mean"]), floats(base[src]["mean"])
            mean = [None if not np.isfinite(v) else round(float(v), 6) for v in a - b]
            out[src] = {"mean": mean, "lo": None, "hi": None, "n": raw[src].get("n")}
    return out, False


def meters(report: dict) -> dict[str, int]:
    """meter -> how many primers are in that meter."""
    return {m: int(info.get("primers", 0)) for m, info in (report.get("meters") or {}).items()}


def min_n(report: dict) -> int | None:
    """Below this many primers a report leaves a mean out (None in a report of the first format)."""
    return (report.get("settings") or {}).get("min_n")


def per_bar(report: dict, temperature: str | None, meter: str = ALL_METERS) -> dict:
    """metric -> source -> {mean, lo, hi, n} for the temperature and meter shown ({} when the report has
    no breakdown for them)."""
    if meter:
        by_tm = report.get("by_temperature_and_meter") or {}
        if temperature in by_tm:
            return by_tm[temperature].get(meter, {})
        return (report.get("by_meter") or {}).get(meter, {})
    return (report.get("by_temperature") or {}).get(temperature) or report["per_bar"]


def distinct_bar_rates(report: dict, temperature: str | None) -> dict:
    """source -> {mean, lo, hi, n}: distinct non-empty bars / non-empty bars of a continuation."""
    by_t = report.get("distinct_bar_rate_by_temperature") or {}
    return by_t.get(temperature) or report.get("distinct_bar_rate") or {}


def summary_rows(report: dict, temperature: str | None) -> list[dict]:
    return (report.get("summary_by_temperature") or {}).get(temperature) or report.get("summary", [])


def first_last_bars(report: dict) -> tuple[str, str]:
    """The bars the summary's "first" and "last" figures average over ("1-8", "57-64")."""
    G = int(report["settings"]["bars"])
    k = min(8, G)
    return f"1-{k}", f"{G - k + 1}-{G}"


@dataclass(frozen=True)
class Mark:
    """A vertical line on the per-bar plots: where something happens, in bars of the continuation."""

    after_bars: float  # the line sits between bar floor(after) and the next: x = after_bars + 0.5
    colour: str
    short: str  # on the line: the meters it holds for ("2/2 4/4") or what it is
    what: str  # what happens there: "primer leaves the 256-step window of RNN + attention and Transformer"
    where: str  # "after 16 bars (2/2, 4/4)"
    line_style: str = "dashed"

    @property
    def tip(self) -> str:
        return f"{self.what} {self.where}"


def window_marks(report: dict, meter: str = ALL_METERS) -> list[Mark]:
    """Where the primer leaves each attention window, for the meter shown (every meter of the report
    when none is chosen, one line per distinct bar); and, for one meter, where the piece outgrows the
    models' longest training sequence. The recurrent models have no window: nothing is marked for them."""
    # the report's own grouping of models by window, and its colour for the training-crop line
    from engine.evaluation.report_plots import CROP_COLOUR, window_groups

    shown = [meter] if meter else list(meters(report))
    G = int(report["settings"]["bars"])
    marks = []
    for label, colour, after in window_groups(report):
        by_bars: dict[float, list[str]] = {}
        for m in shown:
            if m in after and after[m] < G:
                by_bars.setdefault(float(after[m]), []).append(m)
        for bars, names in sorted(by_bars.items()):
            marks.append(Mark(bars, colour, " ".join(names) if not meter else "window", label,
                              f"after {bars:.3g} bars ({', '.join(names)})"))
    if meter:
        crops = {w.get("training_crop_steps"): w.get("past_training_crop_after_bars") or {}
                 for w in (report.get("windows") or {}).values()}
        for steps, after in crops.items():
            if meter in after and 0 < after[meter] < G:
                marks.append(Mark(float(after[meter]), CROP_COLOUR, "crop",
                                  f"the piece outgrows the longest training sequence ({steps} steps): beyond it the "
                                  "models run on longer sequences than they were trained on",
                                  f"after {after[meter]:.3g} bars ({meter})", "dashdot"))
    return marks


def influence(report: dict) -> dict | None:
    """report["influence"] when it has the distance of at least one source, else None."""
    block = report.get("influence")
    if not isinstance(block, dict) or not influence_sources(block):
        return None
    return block


def influence_sources(block: dict) -> dict[str, dict]:
    """source -> its influence distance figures, the models first and the human reference last: each model's
    `influence.<model>` (`influence.models.<model>` in a report written before the entries moved; both are
    read), leaving out an entry that is not a table (a hand edit may leave one null)."""
    from engine.evaluation.report_file import influence_models

    out = {k: d for k, d in influence_models(block).items() if isinstance(d, dict) and d}
    if isinstance(block.get("human"), dict) and block["human"]:
        out["human"] = block["human"]
    return out
