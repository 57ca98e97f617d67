"""Means and 95% bootstrap intervals over primers, with the counts they rest on (docs/design.md s.5).

Rules of the revised protocol, applied here once for every series of the report:
- every statistic carries n, the primers (units) with a value;
- where n < min_n the mean, lo and hi are None (nothing is drawn or tabled);
- no interval from fewer than 2 values (a one-value "interval" would have zero width and look precise).

Primers are the independent units: a paired quantity (TR_excess = TR - matched floor of the same
primer) is bootstrapped as the per-primer difference, so that resampling keeps the pairs.
Values are rounded (per-bar series to 4 decimals, single figures to 6): the report is committed and
holds thousands of series, and a bootstrap over ~100 primers is not that precise.
"""

from __future__ import annotations

import numpy as np

DIGITS = 6  # single figures (the summary's)
SERIES_DIGITS = 4  # per-bar series


def _round(x: float, digits: int = DIGITS) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def bootstrap_interval(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """(mean, lo, hi) of the mean of `values` (NaNs dropped): percentile bootstrap, seeded.

    NaN for all three without values; lo and hi are NaN with a single value.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return mean, float(min(lo, mean)), float(max(hi, mean))


def scalar_stats(values, n_boot: int = 1000, seed: int = 0, min_n: int = 1) -> dict:
    """{"mean", "lo", "hi", "n"} of one value per unit (NaN = no value)."""
    values = np.asarray(values, dtype=float).ravel()
    n = int(np.count_nonzero(~np.isnan(values)))
    mean, lo, hi = bootstrap_interval(values, n_boot, seed)
    if n < min_n:
        mean = lo = hi = float("nan")
    return {"mean": _round(mean), "lo": _round(lo), "hi": _round(hi), "n": n}


def per_bar_stats(matrix, n_boot: int = 1000, seed: int = 0, min_n: int = 1, level: float = 0.95) -> dict:
    """matrix [units, bars] (NaN = missing) -> {"mean", "lo", "hi", "n"} lists over bars.

    Bars that the same units reach share one set of bootstrap resamples (the resample counts times
    the matrix gives every bar's resampled mean at once): the same numbers a bar-by-bar bootstrap
    would give with those resamples, at a fraction of the cost for hundreds of series.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        m = m.reshape(0, 0)
    units, bars = m.shape
    present = ~np.isnan(m)
    n = present.sum(axis=0)
    mean = np.full(bars, np.nan)
    lo = np.full(bars, np.nan)
    hi = np.full(bars, np.nan)
    filled = np.where(present, m, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean[:] = filled.sum(axis=0) / n
    groups: dict[bytes, list[int]] = {}
    for b in range(bars):
        groups.setdefault(present[:, b].tobytes(), []).append(b)
    tail = (1 - level) / 2 * 100
    for cols in groups.values():
        rows = np.flatnonzero(present[:, cols[0]])
        k = len(rows)
        if k < max(2, min_n):
            continue
        rng = np.random.default_rng([seed, cols[0]])
        picks = rows[rng.integers(0, k, size=(n_boot, k))] + units * np.arange(n_boot)[:, None]
        counts = np.bincount(picks.ravel(), minlength=n_boot * units).reshape(n_boot, units)
        boot = counts @ filled[:, cols] / k  # [n_boot, len(cols)]
        q_lo, q_hi = np.percentile(boot, [tail, 100 - tail], axis=0)
        lo[cols] = np.minimum(q_lo, mean[cols])
        hi[cols] = np.maximum(q_hi, mean[cols])
    mean[n < min_n] = np.nan
    return {
        "mean": [_round(v, SERIES_DIGITS) for v in mean],
        "lo": [_round(v, SERIES_DIGITS) for v in lo],
        "hi": [_round(v, SERIES_DIGITS) for v in hi],
        "n": [int(v) for v in n],
    }


def window_values(matrix, start: int, stop: int) -> np.ndarray:
    """Per unit, the mean of its values in bars [start, stop) (NaN for a unit with none there)."""
    m = np.asarray(matrix, dtype=float)[:, start:stop]
    present = ~np.isnan(m)
    count = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(present, m, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)


def window_stats(matrix, start: int, stop: int, n_boot: int = 1000, seed: int = 0, min_n: int = 1,
                 minus=None) -> dict:
    """{"mean", "lo", "hi", "n"} of a bar window: per unit the mean of its values in bars [start, stop), then
    the mean and 95% bootstrap interval over units (the primers), n = the units with a value there.

    With `minus` (a second [units, bars] matrix over the same units), the per-unit difference of the two
    window means: a paired difference, the bootstrap resampling units and keeping each pair (a unit missing
    from either side is left out). The one way the report makes a window figure: the summary table's
    (TR_excess_first ...), the window means (`window_means`) and the paired differences (`paired...`).
    """
    values = window_values(matrix, start, stop)
    if minus is not None:
        values = values - window_values(minus, start, stop)
    return scalar_stats(values, n_boot, seed, min_n)
