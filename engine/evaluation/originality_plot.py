"""The report's longest-run plot (issue 27): for each temperature, the share of continuations whose longest
copied run is at least L bars, against L, one line per model in its colour and the human continuations as
the baseline (the same at every temperature). A tail, not bars of counts: nearly every continuation copies
nothing, and what matters is how fast the share falls with the length. Drawn only from reports that carry
the distribution (originality.<source>.<T>.longest_run_bars.histogram, engine/evaluation/originality.py)."""

from __future__ import annotations

import numpy as np

from engine.evaluation.originality import HUMAN
from engine.metrics.table import source_style


def at_least(histogram: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """(lengths 1 .. longest, share of continuations with a longest run >= each, continuations)."""
    bars = np.asarray(histogram["bars"], dtype=int)
    counts = np.asarray(histogram["continuations"], dtype=float)
    total = int(counts.sum())
    lengths = np.arange(1, max(int(bars.max(initial=0)), 1) + 1)
    share = np.array([counts[bars >= n].sum() for n in lengths]) / max(total, 1)
    return lengths, share, total


def longest_run_plot(plt, report: dict, save) -> None:
    section = report.get("originality") or {}
    temps = list(dict.fromkeys(t for by_t in section.values() for t in by_t))
    sources = [*[k for k in report.get("models", []) if k in section], *([HUMAN] if HUMAN in section else [])]
    hist = {(s, t): ((section[s].get(t) or {}).get("longest_run_bars") or {}).get("histogram")
            for s in sources for t in temps}
    if not temps or not any(hist.values()):
        return  # a report made before the distribution was kept
    fig, axes = plt.subplots(1, len(temps), figsize=(3.6 * len(temps), 3.8), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], temps):
        for source in sources:
            h = hist[(source, t)]
            if not h or not h["bars"]:
                continue
            lengths, share, total = at_least(h)
            keep = share > 0  # a log axis has no 0: the line ends where no continuation reaches
            style = source_style(source)
            ax.plot(lengths[keep], share[keep], marker="o", ms=3, lw=1.4, color=style.colour,
                    linestyle=style.line_style, label=f"{style.label} (n {total})")
        ax.set_yscale("log")
        ax.set_xlabel("copied run of at least L bars")
        ax.set_title(f"temperature {t}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of continuations")
    axes[0][-1].legend(fontsize=6, loc="upper right")
    fig.suptitle("Originality: how long the longest stretch replayed from one training tune is (any key; n = "
                 "continuations; the human line: the tunes' real continuations)", fontsize=9)
    save(fig, "originality_longest_runs.png")
