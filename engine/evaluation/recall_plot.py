"""The report's recall-by-distance plot (issue 23): recall_excess against the distance in steps on a log axis,
one line per model in its colour with its 95% band, each model's control dotted, bars of 4/4 on a second axis,
where each model's context ends (attention span, reach through its layers, the training crop) and n tunes
under each bucket. The Memory tab draws the same keys (gui/memory/recall_section.py)."""

from __future__ import annotations

import numpy as np

from engine.metrics.table import source_style

STEPS_PER_BAR_4_4 = 16


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _x(st: dict) -> np.ndarray:
    """Each bucket's targets' mean distance, else its geometric middle (the shortest bucket from half its top)."""
    centres = []
    for lo, hi in st["edges"]:
        lo = (hi + 1) / 2 if lo <= 1 < hi else lo
        centres.append(np.sqrt(lo * hi))
    at = _arr(st.get("distance_mean") or [None] * len(centres))
    return np.where(np.isfinite(at) & (at > 0), at, centres)


def window_groups(report: dict, keys: list[str]) -> list[tuple[tuple[float, str], list[str]]]:
    """[((steps, what), models)] sorted by steps: each attention span, a reach through layers beyond it, the
    training crop; models sharing one are grouped (the report plot and the Memory tab draw these)."""
    found: dict[tuple[float, str], list[str]] = {}
    for key in keys:
        w = (report.get("windows") or {}).get(key) or {}
        span, reach = w.get("attention_window_steps"), w.get("reach_steps")
        if span:
            found.setdefault((float(span), "attention span"), []).append(key)
        if reach and reach != span:
            found.setdefault((float(reach), "reach through its layers"), []).append(key)
        if w.get("training_crop_steps"):
            found.setdefault((float(w["training_crop_steps"]), "training crop"), []).append(key)
    return sorted(found.items())


def window_marks(report: dict, keys: list[str], crop_colour: str) -> list[tuple[float, str, str, str]]:
    """[(steps, colour, label, line style)]: attention spans, reaches beyond them, the training crop."""
    marks = []
    for (steps, what), who in window_groups(report, keys):
        names = " and ".join(source_style(k).label for k in who)
        if what == "training crop":
            marks.append((steps, crop_colour, f"training crop {steps:g} steps", "-."))
        else:
            colour = source_style(who[0]).colour if len(who) == 1 else "#555555"
            marks.append((steps, colour, f"{what} of {names}: {steps:g} steps", "--"))
    return marks


def recall_plot(plt, report: dict, save, crop_colour: str) -> None:
    found = report.get("recall_by_distance_steps") or {}
    keys = [k for k in report.get("models", []) if isinstance(found.get(k), dict)]
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(9, 4.8))
    first = found[keys[0]]
    for key in keys:
        st = found[key]
        s = source_style(key)
        x = _x(st)
        ax.plot(x, _arr(st["mean"]), marker="o", lw=1.6, color=s.colour, label=s.label)
        ax.fill_between(x, _arr(st["lo"]), _arr(st["hi"]), color=s.colour, alpha=0.12, lw=0)
        ax.plot(x, _arr(st["control"]), lw=1.0, ls=":", color=s.colour)
    ax.axhline(0.0, color="#555555", lw=0.8)
    ax.set_xscale("log")
    for steps, colour, label, style in window_marks(report, keys, crop_colour):
        ax.axvline(steps, color=colour, lw=1.0, ls=style, alpha=0.8, label=label)
    x = _x(first)
    n_tunes = [max((found[k]["n_tunes"][i] for k in keys), default=0) for i in range(len(x))]
    ax.set_xticks(x)
    ax.set_xticklabels([f"{b}\nn {n}" for b, n in zip(first["buckets"], n_tunes)], fontsize=7)
    ax.minorticks_off()
    top = ax.secondary_xaxis("top", functions=(lambda s: s / STEPS_PER_BAR_4_4, lambda b: b * STEPS_PER_BAR_4_4))
    top.set_xlabel("bars of 4/4")
    seeds = report.get("settings", {}).get("recall", {}).get("seeds") or []
    which = f"mean over {len(seeds)} training seeds" if len(seeds) > 1 else "one training seed"
    ax.set_title(f"Recall by distance (teacher-forced on the test tunes, {which}); dotted: the control", fontsize=9)
    ax.set_xlabel("distance back to the nearest resembling bar (16th-note steps, log scale; n tunes, the most "
                  "of any model)", fontsize=8)
    ax.set_ylabel("recall excess (bits/token)")
    ax.legend(fontsize=7, loc="upper right")
    save(fig, "recall_by_distance.png")
