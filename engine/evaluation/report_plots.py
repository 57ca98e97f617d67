"""The report's PNG plots (matplotlib figures on Agg canvases, never pyplot: no display, the GUI's Qt is never
touched, and the app can write them from a background thread).

Per-bar plots follow the revised protocol (docs/design.md section 5):
- nothing is drawn where a series has n < min_n (its mean is null in the report), and an interval
  only where n >= 2 (lo/hi are null otherwise);
- a thin strip under each per-bar plot shows n per bar and the min_n line;
- the bar where each meter's primer leaves an attention window is marked. rnn / lstm / gru have no
  window (their state carries the primer to the end), so nothing is marked for them; where the piece
  outgrows the longest training sequence (a crop's window, or the cut length of whole tunes: 2,048
  steps for the bundled models, beyond 64 bars) is marked on the per-meter plot as a grey dash-dot line.

Labels, colours and line styles come from engine.metrics.table (metrics and reference sources) and
the model registry (models).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.core.atomic import atomic_write
from engine.evaluation.report_file import influence_models
from engine.metrics.table import PER_BAR, REFERENCES, series_info, source_style

CROP_COLOUR = "#777777"


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _style(source: str) -> dict:
    s = source_style(source)
    return {"color": s.colour, "linestyle": s.line_style, "label": s.label}


def _draw(ax, st: dict, style: dict, band: bool = True, lw: float = 1.6) -> None:
    x = np.arange(1, len(st["mean"]) + 1)
    ax.plot(x, _arr(st["mean"]), lw=lw, **style)
    if band:
        ax.fill_between(x, _arr(st["lo"]), _arr(st["hi"]), color=style["color"], alpha=0.12, lw=0)


def _n_strip(ax, by_source: dict, min_n: int | None, P: int) -> None:
    """n per bar of each source (sources with the same n share one line), and the min_n line."""
    seen: dict[tuple, list[str]] = {}
    for src, st in by_source.items():
        seen.setdefault(tuple(st["n"]), []).append(src)
    models = {s for s in by_source if s not in REFERENCES}
    for n, sources in seen.items():
        style = _style(sources[0]) if len(sources) == 1 else {"color": "#444444", "linestyle": "solid"}
        if len(sources) > 1 and set(sources) == models:
            label = "every model"
        elif len(sources) > 3:
            label = f"{len(sources)} models" if models.issuperset(sources) else f"{len(sources)} sources"
        else:
            label = ", ".join(source_style(s).label for s in sources)
        ax.step(np.arange(1, len(n) + 1), n, where="mid", lw=1.0, color=style["color"],
                linestyle=style["linestyle"], label=label)
    if min_n:
        ax.axhline(min_n, color="#d62728", lw=0.8, alpha=0.7)
        ax.annotate(f"min_n = {min_n}: below it nothing is drawn", (1, min_n), xytext=(2, 2),
                    textcoords="offset points", fontsize=7, color="#d62728")
    ax.set_ylabel("n primers", fontsize=8)
    ax.set_xlabel(f"bar of the continuation (after {P} primer bars)")
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def window_groups(report: dict) -> list[tuple[str, str, dict]]:
    """[(label, colour, {meter: after_bars})] for attention windows, models sharing a window grouped."""
    groups: dict[int, list[str]] = {}
    for key, w in report.get("windows", {}).items():
        if w.get("attention_window_steps"):
            groups.setdefault(w["attention_window_steps"], []).append(key)
    out = []
    for window, keys in groups.items():
        colour = source_style(keys[0]).colour if len(keys) == 1 else "#555555"
        label = f"primer leaves the {window}-step window of {' and '.join(source_style(k).label for k in keys)}"
        out.append((label, colour, report["windows"][keys[0]]["primer_leaves_window_after_bars"]))
    return out


def _mark_windows(ax, report: dict, meters: list[str], G: int, crop: bool = False, legend: bool = True,
                  labels: bool = True) -> None:
    """Vertical lines where the primer leaves each attention window, for each meter shown."""
    for label, colour, after in window_groups(report):
        xs: dict[float, list[str]] = {}
        for meter in meters:
            if meter in after and after[meter] < G:
                xs.setdefault(after[meter] + 0.5, []).append(meter)
        for i, (x, names) in enumerate(sorted(xs.items())):
            ax.axvline(x, color=colour, lw=1.0, ls=(0, (6, 3)), alpha=0.8, label=label if (i == 0 and legend) else None)
            if labels and len(meters) > 1:
                ax.annotate(" ".join(names), (x, 1), xycoords=("data", "axes fraction"), xytext=(0, 2),
                            textcoords="offset points", fontsize=7, color=colour, ha="center", va="bottom")
    if crop:
        crops = {w.get("training_crop_steps"): w["past_training_crop_after_bars"]
                 for w in report.get("windows", {}).values() if w.get("past_training_crop_after_bars")}
        for i, (steps, after) in enumerate(crops.items()):
            for meter in meters:
                if meter in after and 0 < after[meter] < G:
                    ax.axvline(after[meter] + 0.5, color=CROP_COLOUR, lw=0.9, ls="-.",
                               label=f"piece outgrows the longest training sequence ({steps} steps)" if (i == 0 and legend) else None)


def _window_sentence(report: dict, meters: list[str]) -> str:
    """'dashed: the primer leaves the 256-step attention window after 16 bars (2/2, 4/4), ...'."""
    parts = []
    for label, _colour, after in window_groups(report):
        by_bars: dict[float, list[str]] = {}
        for m in meters:
            if m in after:
                by_bars.setdefault(after[m], []).append(m)
        where = ", ".join(f"{b:.3g} bars ({', '.join(ms)})" for b, ms in sorted(by_bars.items()))
        parts.append(f"dashed: {label} after {where}")
    return "; ".join(parts)


def _ylim(ax, blocks: list[dict], value_range) -> None:
    values = [v for st in blocks for k in ("mean", "lo", "hi") for v in st[k] if v is not None]
    if not values:
        ax.set_ylim(*value_range)
        return
    lo, hi = min(values), max(values)
    pad = 0.05 * max(hi - lo, 0.1)
    ax.set_ylim(max(value_range[0] - 0.02, lo - pad), min(value_range[1] + 0.02, hi + pad))


def _bars(report: dict) -> tuple[int, int, int | None]:
    """(P, G, min_n) of a report (min_n None in a report of the first format; P 0 where a report leaves it out)."""
    settings = report["settings"]
    return settings.get("primer_bars") or 0, settings["bars"], settings.get("min_n")


def _panels(plt, n: int, size: tuple[float, float], **kw):
    """A grid of up to 3 columns for n panels; panels left over are switched off by the caller."""
    cols = min(3, max(1, n))
    rows = -(-max(1, n) // cols)
    return plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, **kw)


def _too_little(ax, n_max: int, min_n: int) -> None:
    ax.text(0.5, 0.5, f"too little data:\nat most {n_max} primers here,\nfewer than min_n = {min_n}",
            transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555",
            bbox={"facecolor": "white", "edgecolor": "#cccccc"})


class _Figures:
    """What the plot functions need of pyplot (`subplots`), without pyplot: each figure is a bare
    `Figure` with an Agg canvas, owned by nobody. pyplot keeps global state and picks a GUI backend when
    Qt is loaded; neither is safe in the app's background export thread (matplotlib's docs: use the
    object-oriented API off the main thread)."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, layout=None, **kw):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout=layout)
        FigureCanvasAgg(fig)
        return fig, fig.subplots(nrows, ncols, **kw)


def write_plots(report: dict, out: Path, on_file: Callable[[Path], None] | None = None) -> list[Path]:
    plt = _Figures  # the plot functions below take it where they once took pyplot

    paths: list[Path] = []

    def save(fig, name, dpi=110, tight=True):
        path = out / name
        if tight:
            fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        atomic_write(path, buf.getvalue())
        paths.append(path)
        if on_file is not None:
            on_file(path)

    revised = "TR_excess" in report["per_bar"]
    if revised:
        _excess_plot(plt, report, save)
        _tr_with_own_floor(plt, report, save)
        _excess_by_meter(plt, report, save)
    for metric, info in PER_BAR.items():
        if info.plot and metric in report["per_bar"] and not (revised and metric == "TR"):
            _metric_plot(plt, report, metric, save)
    _model_side_plots(plt, report, save)
    from engine.evaluation.recall_plot import recall_plot

    recall_plot(plt, report, save, CROP_COLOUR)  # issue 23: nothing without the recall keys
    from engine.evaluation.controls_report import write_controls_plots

    write_controls_plots(plt, report, save)  # issue 24: theme measures over the rhythm-matched floor, the sweep
    if report.get("influence"):
        _influence_plot(plt, report, save)
    if report.get("originality"):
        _originality_plot(plt, report, save)
        from engine.evaluation.originality_plot import longest_run_plot

        longest_run_plot(plt, report, save)  # the longest-run distribution, where the report keeps it
    return paths


def _temperature_note(report: dict) -> str:
    t = report["settings"].get("per_bar_temperature")
    return "" if t is None else f", temperature {float(t)}"


def _excess_plot(plt, report, save) -> None:
    """The central plot: TR over each source's matched floor, one panel per temperature, n underneath."""
    P, G, min_n = _bars(report)
    by_t = report.get("by_temperature") or {str(report["settings"].get("per_bar_temperature")): report["per_bar"]}
    meters = list(report.get("meters", {}))
    info = series_info("TR_excess")
    fig, axes = plt.subplots(len(by_t) + 1, 1, figsize=(10, 3.4 * len(by_t) + 1.6), sharex=True,
                             gridspec_kw={"height_ratios": [3] * len(by_t) + [1]})
    for i, (t, block) in enumerate(by_t.items()):
        ax = axes[i]
        series = block["TR_excess"]
        for src, st in series.items():
            _draw(ax, st, _style(src))
        ax.axhline(0, color=source_style("floor").colour, lw=1.0, ls="dotted", label="matched floor (chance) = 0")
        _mark_windows(ax, report, meters, G, legend=(i == 0))
        _ylim(ax, list(series.values()), info.value_range)
        ax.set_title(f"temperature {t}", fontsize=10, loc="left", pad=12)
        ax.set_ylabel(info.axis_label, fontsize=8)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7, ncol=3, loc="upper right")
    first = next(iter(by_t.values()))["TR_excess"]
    _n_strip(axes[-1], first, min_n, P)
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{info.label}: TR minus the source's own floor, mean and 95% bootstrap interval over "
                 f"{len(report.get('primers', []))} primers", fontsize=11)
    save(fig, "per_bar_TR_excess.png")


def _tr_with_own_floor(plt, report, save) -> None:
    """Raw TR of each source with its own matched floor, one panel per source."""
    _, G, min_n = _bars(report)
    tr, floor = report["per_bar"]["TR"], report["per_bar"]["TR_floor"]
    sources = [s for s in floor if s in tr]
    fig, axes = _panels(plt, len(sources), (4.4, 3.2), sharey=True)
    meters = list(report.get("meters", {}))
    for ax, src in zip(axes.flat, sources):
        style = _style(src)
        _draw(ax, tr[src], {**style, "label": "TR"})
        _draw(ax, floor[src], {"color": style["color"], "linestyle": "dotted", "label": "its matched floor"}, lw=1.2)
        if (report.get("windows", {}).get(src) or {}).get("attention_window_steps"):
            _mark_windows(ax, report, meters, G, legend=False, labels=False)  # only where the source has a window
        ax.set_xlim(0.5, G + 0.5)
        n = [v for v in tr[src]["n"] if v]
        ax.set_title(f"{style['label']} (n {max(n) if n else 0}" + (f" to {min(n)}" if n and min(n) != max(n) else "")
                     + ")", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[len(sources):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("bar of the continuation")
    fig.suptitle(f"Theme recall TR per bar with each source's own floor{_temperature_note(report)} "
                 f"(nothing drawn where n < {min_n})\n{_window_sentence(report, meters)}", fontsize=10)
    save(fig, "per_bar_TR.png")


def _excess_by_meter(plt, report, save) -> None:
    """TR excess per meter (rows) and temperature (columns); meters with too few primers are named in a note."""
    _, G, min_n = _bars(report)
    by_tm = report.get("by_temperature_and_meter") or {}
    if not by_tm:
        return
    temps = list(by_tm)
    meters = list(next(iter(by_tm.values())))
    counts = {m: report.get("meters", {}).get(m, {}).get("primers", 0) for m in meters}

    def has_data(meter):
        return any(v is not None for t in temps for st in by_tm[t][meter]["TR_excess"].values() for v in st["mean"])

    shown = [m for m in meters if has_data(m)]
    left_out = [m for m in meters if m not in shown]
    rows, cols = max(1, len(shown)), len(temps)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.9 * rows + 0.9), squeeze=False, sharex=True,
                             sharey=True)
    info = series_info("TR_excess")
    everything = [st for t in temps for m in shown for st in by_tm[t][m]["TR_excess"].values()]
    for r, meter in enumerate(shown):
        for c, t in enumerate(temps):
            ax = axes[r][c]
            for src, st in by_tm[t][meter]["TR_excess"].items():
                _draw(ax, st, _style(src), lw=1.3)
            ax.axhline(0, color=source_style("floor").colour, lw=1.0, ls="dotted")
            _mark_windows(ax, report, [meter], G, crop=True, legend=(r == 0 and c == 0))
            ax.set_title(f"{meter}, {counts[meter]} primers, temperature {t}", fontsize=9, loc="left")
            ax.grid(alpha=0.3)
    if not shown:
        _too_little(axes[0][0], max(counts.values(), default=0), min_n)
    else:
        _ylim(axes[0][0], everything, info.value_range)
        axes[0][0].legend(fontsize=6, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("bar of the continuation")
        ax.set_xlim(0.5, G + 0.5)
    note = ""
    if left_out:
        note = ("; too little data for " + ", ".join(f"{m} ({counts[m]} primers)" for m in left_out)
                + f": fewer than min_n = {min_n}")
    fig.suptitle(f"TR excess over the matched floor by meter (nothing drawn where n < {min_n}){note}".replace("; ", "\n", 1),
                 fontsize=10)
    save(fig, "per_bar_TR_excess_by_meter.png")


def _metric_plot(plt, report, metric, save) -> None:
    P, G, min_n = _bars(report)
    info = series_info(metric)
    series = report["per_bar"][metric]
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    for src, st in series.items():
        _draw(ax, st, _style(src))
    _mark_windows(ax, report, list(report.get("meters", {})), G)
    ax.set_title(f"{info.label} per bar (mean and 95% bootstrap interval over primers{_temperature_note(report)})",
                 fontsize=10, pad=12)
    ax.set_ylabel(info.axis_label, fontsize=9)
    _ylim(ax, list(series.values()), info.value_range)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="lower left")  # four columns ran the window mark's label off the figure
    _n_strip(strip, series, min_n, P)
    strip.legend(fontsize=7, loc="upper right")
    save(fig, f"per_bar_{metric}.png")


def _model_side_plots(plt, report, save) -> None:
    if report.get("effective_memory"):
        _nll_k_plot(plt, report, save)
    if report.get("nll_per_bar"):
        _nll_per_bar_plot(plt, report, save)
    if report.get("gradient_memory"):
        _gradient_memory_plot(plt, report, save)
    if report.get("self_similarity"):
        _self_similarity_plot(plt, report, save)
    if report.get("probe"):
        _probe_plot(plt, report["probe"], save)
    curves = {k: tc for k, tc in report.get("training_curves", {}).items() if tc["step"]}
    if curves:
        _training_curves_plot(plt, curves, save)


def _nll_k_plot(plt, report, save) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in report["models"]:
        em = report["effective_memory"][key]
        if not em["nll_k"]:
            continue
        style = _style(key)
        ax.plot(em["ks"], _arr(em["nll_k"]), marker="o", ms=3, lw=1.5, color=style["color"],
                label=f"{style['label']}: {_fmt_memory(em)}")
        ax.axhline(em["nll_full"], color=style["color"], lw=0.7, ls="--", alpha=0.6)
        if em["steps"] is not None:
            ax.plot([em["steps"]], [em["nll_k"][em["ks"].index(em["steps"])]], marker="*", ms=14,
                    color=style["color"], mec="black", mew=0.6)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k: tokens of context the model may use (16 = one 4/4 bar)")
    ax.set_ylabel("NLL_k (bits per token)")
    ax.set_title("Context ablation: NLL with only the last k tokens (star = effective memory, within 1%;\n"
                 "dashed = all context; the label gives NLL_full - best NLL_k)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, "nll_k.png")


def _nll_per_bar_plot(plt, report, save) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for key in report["models"]:
        _draw(ax, report["nll_per_bar"][key], _style(key), lw=1.5)
    ax.set_xlabel("bar of the test tune")
    ax.set_ylabel("bits per token")
    min_n = report["settings"].get("min_n")
    ax.set_title("NLL per bar on held-out tunes (teacher-forced, full usable context"
                 + (f"; bars with fewer than {min_n} tunes left out)" if min_n else ")"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "nll_per_bar.png")


def _gradient_memory_plot(plt, report, save) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in report["models"]:
        gm = report["gradient_memory"][key]
        g = _arr(gm["g"])
        g[g <= 0] = np.nan  # exactly zero (beyond reach) cannot sit on a log axis
        ax.plot(gm["ks"], g, lw=1.5, **_style(key))
    ax.set_yscale("log")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k: steps back from the predicted token")
    ax.set_ylabel("G(k) / G(1)")
    ax.set_title("Gradient memory: how much the prediction still feels the input k steps back")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, "gradient_memory.png")


def _probe_plot(plt, probe, save) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, rec in probe["models"].items():
        ax.plot(probe["gaps"], _arr(rec["accuracy"]), marker="o", lw=1.6, **_style(key))
        if rec.get("accuracy_min") is not None and rec.get("accuracy_max") is not None:  # the spread over the seeds
            ax.fill_between(probe["gaps"], _arr(rec["accuracy_min"]), _arr(rec["accuracy_max"]),
                            color=_style(key)["color"], alpha=0.12, lw=0)
    floor = source_style("floor")
    ax.axhline(probe["chance"], color=floor.colour, ls=floor.line_style, label=f"chance ({probe['chance']:.3f})")
    ax.set_xscale("log", base=2)  # gaps are >= 1 bar, doubling
    ax.set_xlim(min(probe["gaps"]) / 1.3, max(probe["gaps"]) * 1.3)
    ax.set_xticks(probe["gaps"])
    ax.set_xticklabels([str(g) for g in probe["gaps"]])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("gap g (bars of filler between the motif and its return)")
    ax.set_ylabel("accuracy on the returning motif")
    settings = probe["settings"]
    seeds = settings.get("seeds") or [settings.get("seed")]
    spb = settings.get("steps_per_bar")
    ax.set_title(f"Theme-recall probe (fresh {settings['preset']} models"
                 + (f", bars of {spb} steps" if spb else "") + ")"
                 + (f"\nmean over seeds {', '.join(map(str, seeds))}, band = their range; " if len(seeds) > 1 else "\n")
                 + "it moves with the seed and the platform", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")  # short gaps sit near 1: the corner below them is free
    save(fig, "probe.png")


def _training_curves_plot(plt, curves, save) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, tc in curves.items():
        ax.plot(tc["step"], _arr(tc["valid_bpt"]), lw=1.6, **_style(key))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("validation bits per token")
    ax.set_title("Training: validation bits per token of the evaluated models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    save(fig, "training_curves.png")


def _self_similarity_plot(plt, report, save) -> None:
    P = report["settings"].get("primer_bars") or 0
    names = [k for k in [*report["models"], "human"] if k in report["self_similarity"]]
    fig, axes = _panels(plt, len(names), (4, 3.8), layout="constrained")
    im = None
    for ax, name in zip(axes.flat, names):
        m = np.array([_arr(row) for row in report["self_similarity"][name]])
        n = m.shape[0]
        im = ax.imshow(m, vmin=0, vmax=1, cmap="magma", origin="upper", interpolation="nearest",
                       extent=(0.5, n + 0.5, n + 0.5, 0.5))  # bars numbered from 1
        ax.axhline(P + 0.5, color="white", lw=0.6)
        ax.axvline(P + 0.5, color="white", lw=0.6)
        ax.set_title(source_style(name).label, fontsize=10)
        ax.set_xlabel("bar (primer, then continuation)", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.7, label="mean sim_T (primer above/left of the white lines)")
    min_n = report["settings"].get("min_n")
    fig.suptitle(f"Self-similarity of primer + continuation, averaged over primers{_temperature_note(report)}"
                 + (f"\n(white: fewer than {min_n} primers reach both bars)" if min_n else ""))
    save(fig, "self_similarity.png", dpi=90, tight=False)


def _fmt_memory(em: dict) -> str:
    text = "beyond 1024 steps" if em["steps"] is None else f"{em['steps']} steps = {em['bars']:.2f} bars"
    gap = em.get("full_minus_best_bits")
    if gap is not None:
        verdict = "passes" if em.get("length_ok") else "fails"
        text += f"; full - best {gap:+.4f} bits ({verdict})"
    return text


def _influence_plot(plt, report, save) -> None:
    """How far back each model's notes reach (one histogram per model), and the real tune's nearest
    repeats (the human panel, with each model's own repeats as lines); chance and means marked."""
    influence = report["influence"]
    min_n = report["settings"].get("min_n") or 1
    panels = [(key, d, "influence") for key, d in influence_models(influence).items() if isinstance(d, dict)]
    panels += [("human", influence["human"], "repeat")] if isinstance(influence.get("human"), dict) else []
    if not panels:
        return
    fig, axes = _panels(plt, len(panels), (4.4, 3.0), sharex=True)
    longest = max(d["histogram"]["edges"][-1] for _, d, _ in panels)
    floor = source_style("floor")
    for ax, (src, d, measure) in zip(axes.flat, panels):
        style = _style(src)
        edges, counts = np.array(d["histogram"]["edges"], dtype=float), np.array(d["histogram"]["counts"], dtype=float)
        if d["n"] < min_n or counts.sum() == 0:
            _too_little(ax, d["n"], min_n)
        else:
            ax.bar(edges[:-1], counts / counts.sum(), width=np.diff(edges), align="edge", color=style["color"],
                   alpha=0.75, edgecolor="white", lw=0.5)
            if d["mean"] is not None:
                ax.axvline(d["mean"], color="black", lw=1.2, label=f"mean {d['mean']:.2f}")
        previous = (d.get("reference_previous_note") or {}).get("mean")
        if previous is not None:
            ax.axvline(previous, color=floor.colour, lw=1.2, ls="dashed", label=f"previous note {previous:.2f}")
        if d["chance"] is not None:
            ax.axvline(d["chance"], color=floor.colour, lw=1.2, ls=floor.line_style,
                       label=f"uniform spread {d['chance']:.2f}")
        if measure == "repeat":
            _own_repeats(ax, influence.get("repeats") or {}, min_n)
        what = "bars back to the notes drawn on" if measure == "influence" else "bars back to the nearest repeat"
        share = (d.get("share_on_primer") or {}).get("mean")
        ax.set_title(f"{style['label'] if src != 'human' else 'human: nearest earlier repeat'}\n"
                     f"({d['n']} continuations, {d['n_notes']} notes)"
                     + (f"\n{share:.0%} of the weight on the primer" if share is not None else ""), fontsize=9)
        ax.set_xlabel(what, fontsize=8)
        ax.set_xlim(0, longest)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of notes", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Influence distance ({influence['method']}): how far back each generated note's sources lie, "
                 f"first {influence['bars']} bars of {influence['primers']} continuations, temperature "
                 f"{influence['temperature']}\nreferences: all weight on the previous note (dashed) and the weight "
                 "spread evenly over everything before the note (dotted); each mean lies between them",
                 fontsize=10)
    save(fig, "influence_distance.png")


def _own_repeats(ax, repeats: dict, min_n: int) -> None:
    """Each model's own nearest-repeat distances, as lines over the human panel's histogram."""
    for key, own in repeats.items():
        if not isinstance(own, dict):
            continue
        own_counts = np.array(own["histogram"]["counts"], dtype=float)
        if own_counts.sum() and own["n"] >= min_n:
            own_edges = np.array(own["histogram"]["edges"], dtype=float)
            ax.stairs(own_counts / own_counts.sum(), own_edges, color=source_style(key).colour, lw=1.0,
                      label=f"{source_style(key).label}'s own")


def _originality_plot(plt, report, save) -> None:
    """Copy rate against temperature, one line per model with its 95% intervals, the human baseline (real
    continuations against the same training tunes: no temperature) as a band; n in the legend."""
    section = report["originality"]
    human = next(iter(section.get("human", {}).values()), None)
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    if human and human["copy_rate"]["mean"] is not None:
        st = human["copy_rate"]
        style = _style("human")
        ax.axhline(st["mean"], color=style["color"], ls=style["linestyle"], lw=1.4,
                   label=f"{style['label']}: real continuations (n {st['n']})")
        if st["lo"] is not None:
            ax.axhspan(st["lo"], st["hi"], color=style["color"], alpha=0.12, lw=0)
    for key in report.get("models", []):
        by_t = section.get(key) or {}
        points = sorted((float(t), e["copy_rate"]) for t, e in by_t.items() if e["copy_rate"]["mean"] is not None)
        if not points:
            continue
        x = np.array([t for t, _ in points])
        mean = np.array([st["mean"] for _, st in points])
        lo = _arr([st["lo"] for _, st in points])
        hi = _arr([st["hi"] for _, st in points])
        style = _style(key)
        ns = sorted({st["n"] for _, st in points})
        n_text = str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        yerr = np.nan_to_num(np.abs(np.vstack([mean - lo, hi - mean])))  # no bar where there is no interval
        ax.errorbar(x, mean, yerr=yerr, marker="o", ms=4, capsize=3, lw=1.5, color=style["color"],
                    linestyle=style["linestyle"], label=f"{style['label']} (n {n_text})")
    temperatures = sorted({float(t) for by_t in section.values() for t in by_t})
    ax.set_xticks(temperatures)
    ax.set_xlabel("sampling temperature")
    ax.set_ylabel("copy rate (share of two-bar spans)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.08)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7, loc="best")
    else:  # every copy rate is null: fewer primers than min_n at every temperature
        ax.text(0.5, 0.5, f"too little data: fewer than min_n = {report['settings'].get('min_n')} primers\n"
                "at every temperature", transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555")
    ax.set_title("Originality: two-bar spans of the continuation found in a training tune and not in the primer\n"
                 "(any key; mean and 95% bootstrap interval over primers)", fontsize=10)
    save(fig, "originality_copy_rate.png")
