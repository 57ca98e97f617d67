"""What the recall-by-distance plot and the horizon columns read from a report: no Qt.

Keys (docs/design.md section 5, "Recall by distance", and issue 23): `recall_by_distance.<model>` (distance
in bars) and `recall_by_distance_steps.<model>` (in steps), each `{buckets, mean, lo, hi, n, n_tunes,
control}` with one value per bucket (null where fewer than min_n tunes); `memory_horizon_bars.<model>`,
`memory_horizon_steps.<model>`, `half_recall_steps.<model>`; the same per training seed under
`seeds.<seed>`. The top level is the mean over seeds when the report has several.

A bucket is written as its label ("1", "3-4", "<16", "16-31"), as [low, high] or as {low, high, label}, with
its `edges` [low, high] beside the labels where the report gives them; a point sits at the bucket's
`distance_mean` where the report gives it, else at the middle of the bucket on the log axis. `control` is
one mean per bucket (or a series {mean, lo, hi}). A report without these keys (made before
the measure existed) has no recall curves: the tab says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .report_data import floats

MEAN_OVER_SEEDS, EACH_SEED = "", "each"  # the seed switch's two views besides one seed
STEPS_PER_BAR_4_4 = 16  # the second axis: bars of 4/4 on the 16th-note grid


@dataclass(frozen=True)
class Bucket:
    low: float
    high: float
    label: str

    @property
    def centre(self) -> float:
        """Where the bucket sits on a log axis: the geometric middle of its range."""
        return float(np.sqrt(self.low * self.high))


def bucket(value, unit: str) -> Bucket:
    """A bucket from the report's way of writing it ("<16" covers 8-15 steps: the shortest bar of a
    meter has 8 steps in 2/4, so nothing nearer occurs)."""
    if isinstance(value, dict):
        low, high = float(value["low"]), float(value["high"])
        return Bucket(low, high, str(value.get("label") or _label(low, high)))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
        return Bucket(low, high, _label(low, high))
    text = str(value).strip()
    if text.startswith("<"):
        high = float(text[1:]) - 1
        return Bucket(max(1.0, (high + 1) / 2), high, text)
    numbers = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", text)]
    if not numbers:
        raise ValueError(f"a distance bucket in {unit} must be a number or a range, not {value!r}")
    return Bucket(numbers[0], numbers[-1], text)


def _label(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


@dataclass
class Curve:
    """One model's recall excess per distance bucket, as the report gives it."""

    key: str
    buckets: list[Bucket]
    mean: np.ndarray
    lo: np.ndarray | None
    hi: np.ndarray | None
    n: np.ndarray | None  # target bars per bucket
    n_tunes: np.ndarray | None  # tunes per bucket: what the interval resamples
    control: np.ndarray | None  # the control's mean per bucket

    distance_mean: np.ndarray | None = None  # the targets' mean distance in each bucket

    @property
    def x(self) -> np.ndarray:
        centres = np.array([b.centre for b in self.buckets], dtype=float)
        if self.distance_mean is None:
            return centres
        return np.where(np.isfinite(self.distance_mean) & (self.distance_mean > 0), self.distance_mean, centres)


def has_recall(report: dict) -> bool:
    return bool(report.get("recall_by_distance_steps") or report.get("recall_by_distance"))


def seeds(report: dict) -> list[str]:
    """The training seeds the report gives figures for (empty: one model per architecture)."""
    block = report.get("seeds")
    return [str(s) for s in block] if isinstance(block, dict) else []


def _part(report: dict, seed: str) -> dict:
    """The report's recall figures for one seed, or its top level (MEAN_OVER_SEEDS)."""
    return report if seed == MEAN_OVER_SEEDS else ((report.get("seeds") or {}).get(seed) or {})


def curves(report: dict, keys: list[str], seed: str = MEAN_OVER_SEEDS, unit: str = "steps") -> dict[str, Curve]:
    """model -> its curve, for the models of `keys` that have one (in that order)."""
    name = "recall_by_distance_steps" if unit == "steps" else "recall_by_distance"
    found = _part(report, seed).get(name) or {}
    out = {}
    for key in keys:
        st = found.get(key)
        if not isinstance(st, dict) or not isinstance(st.get("mean"), list):
            continue
        edges = st.get("edges")
        labels = st.get("buckets") or []
        if isinstance(edges, list) and len(edges) == len(labels):
            buckets = [_from_edges(e, label, unit) for e, label in zip(edges, labels)]
        else:
            buckets = [bucket(b, unit) for b in labels]
        mean = floats(st["mean"])
        if len(buckets) != len(mean):
            raise ValueError(f"{name}.{key}: {len(buckets)} buckets but {len(mean)} values")
        control = st.get("control")
        if isinstance(control, dict):
            control = control.get("mean")
        out[key] = Curve(key, buckets, mean, _opt(st.get("lo")), _opt(st.get("hi")), _opt(st.get("n")),
                         _opt(st.get("n_tunes")), _opt(control), _opt(st.get("distance_mean")))
    return out


def _from_edges(edges, label, unit: str) -> Bucket:
    """A bucket from its [low, high] edges; the first bucket in steps starts at 1 ("<16"), where only a
    meter with short bars puts a distance: it is drawn from half its top, not across a decade of nothing."""
    low, high = float(edges[0]), float(edges[1])
    if unit == "steps" and low <= 1 < high:
        low = (high + 1) / 2
    return Bucket(low, high, str(label))


def _opt(values) -> np.ndarray | None:
    return None if values is None else floats(values)


@dataclass(frozen=True)
class Horizon:
    steps: float | None
    bars: float | None
    half_steps: float | None


def horizons(report: dict, seed: str = MEAN_OVER_SEEDS) -> dict[str, Horizon]:
    """model -> its memory horizon (steps, bars) and half-recall distance (None: no bucket passes)."""
    part = _part(report, seed)
    steps, bars, half = (part.get(k) or {} for k in ("memory_horizon_steps", "memory_horizon_bars",
                                                      "half_recall_steps"))
    return {key: Horizon(steps.get(key), bars.get(key), half.get(key)) for key in {*steps, *bars, *half}}


def horizon_text(h: Horizon | None) -> str:
    """"256 steps (16 bars)", "none" where no bucket's interval lies above 0, "-" without the figure."""
    if h is None or (h.steps is None and h.bars is None and h.half_steps is None):
        return "-"
    if not h.steps and not h.bars:  # 0: the nearest bucket already fails
        return "none"
    parts = [f"{h.steps:g} steps" if h.steps is not None else "", f"{h.bars:g} bars" if h.bars is not None else ""]
    first, second = parts
    return f"{first} ({second})" if first and second else first or second


@dataclass(frozen=True)
class StepMark:
    steps: float
    colour: str
    short: str  # written on the line
    tip: str  # what it is, in words
    line_style: str = "dashed"


def window_marks(report: dict, keys: list[str]) -> list[StepMark]:
    """Where a model's context ends, in steps: each attention span, a Transformer's reach through its
    layers (where it differs from its span), and the training crop; models sharing one are grouped."""
    from engine.evaluation.recall_plot import window_groups
    from engine.evaluation.report_plots import CROP_COLOUR
    from engine.metrics.table import source_style

    marks = []
    for (steps, what), who in window_groups(report, keys):
        names = " and ".join(source_style(k).label for k in who)
        if what == "training crop":
            marks.append(StepMark(steps, CROP_COLOUR, "crop", f"training crop: the models were trained on "
                                  f"sequences of {steps:g} steps ({names})", "dashdot"))
            continue
        colour = source_style(who[0]).colour if len(who) == 1 else "#555555"
        short = "span" if what == "attention span" else "reach"
        marks.append(StepMark(steps, colour, short, f"{what} of {names}: {steps:g} steps"))
    return marks


def n_label(curves_shown: list[Curve], i: int) -> str:
    """n tunes behind bucket i across the models shown: "n 118", "n 96-118", or "" without counts."""
    values = [int(c.n_tunes[i]) for c in curves_shown
              if c.n_tunes is not None and i < len(c.n_tunes) and np.isfinite(c.n_tunes[i])]
    if not values:
        return ""
    low, high = min(values), max(values)
    return f"n {low}" if low == high else f"n {low}-{high}"
