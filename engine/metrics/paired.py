"""Paired differences between two sources over the same primers (docs/design.md section 5, "Controls of the
sampled per-bar measures"; issue 24 item 4).

Two series' intervals that overlap say nothing about their difference: the primers are shared, and what
varies from primer to primer (how repetitive the tune is) moves both together. The difference is taken
per primer first, then its mean and 95% bootstrap interval over the primers that both sources have a
value for (resampling primers keeps the pairs).
"""

from __future__ import annotations

import itertools

import numpy as np

from engine.metrics.stats import scalar_stats, window_stats


def window_label(start: int, stop: int) -> str:
    """The report's name of bars [start, stop) of the continuation: "bars 1-8"."""
    return f"bars {start + 1}-{stop}"


def paired_difference(a, b, n_boot: int = 1000, seed: int = 0, min_n: int = 1) -> dict:
    """{"mean", "lo", "hi", "n"} of the per-unit difference a - b (NaN in either = the unit is left out)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return scalar_stats(diff, n_boot, seed, min_n)


def window_means(a: np.ndarray, windows: list[tuple[int, int]], n_boot: int = 1000, seed: int = 0, min_n: int = 1,
                 minus: np.ndarray | None = None) -> dict:
    """{"bars 1-8": stats, ...}: per primer, the mean of a's bars in each window (minus b's, when given), then
    the mean and 95% bootstrap interval over primers (engine.metrics.stats.window_stats)."""
    return {window_label(start, stop): window_stats(a, start, stop, n_boot, seed, min_n, minus)
            for start, stop in windows}


def paired_windows(a: np.ndarray, b: np.ndarray, windows: list[tuple[int, int]], n_boot: int = 1000, seed: int = 0,
                   min_n: int = 1) -> dict:
    """{"bars 1-8": stats, ...}: per primer, the mean of a's and of b's bars in each window, differenced."""
    return window_means(a, windows, n_boot, seed, min_n, minus=b)


def source_pairs(models: list[str], reference: str = "human") -> list[tuple[str, str]]:
    """Every pair of models in the given order, then each model against the reference."""
    return [*itertools.combinations(models, 2), *((m, reference) for m in models)]
