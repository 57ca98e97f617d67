"""summary.md lines and plots of the controls of issue 24 (docs/design.md section 5, "Controls of the sampled
per-bar measures"): the paired differences, the temperature sweep of the late-bar TR excess, the
matched-length distinct-bar rate, and per-bar plots of the theme measures over their rhythm-matched floor
(bar grid, phase-robust, pitch-only) beside rhythm recall."""

from __future__ import annotations

import numpy as np

from engine.evaluation.controls_section import bar_windows
from engine.evaluation.report_file import influence_models
from engine.evaluation.report_file import report_number as _number
from engine.metrics.paired import window_label
from engine.metrics.table import source_style

MISSING = "-"
THEME_PANELS = (("TR_excess", "TR over its floor (bar grid)"), ("TR_phase_excess", "TR_phase over its floor"),
                ("PTR_excess", "PTR (pitch only) over its floor"), ("RR", "RR (rhythm only), raw"))


def _dicts(value) -> dict:
    """A block of the report as {key: dict}, leaving out what is not a dict (a hand-edited report renders)."""
    return {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _float_or_none(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _figure(st: dict | None, fmt: str = "{:+.3f}") -> str:
    if not isinstance(st, dict) or _number(st.get("mean")) is None:
        return MISSING
    text = fmt.format(st["mean"])
    lo, hi = _number(st.get("lo")), _number(st.get("hi"))
    if lo is not None and hi is not None:
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return text + f" (n {st.get('n')})"


def _label(key: str) -> str:
    return source_style(key).label


def controls_lines(report: dict) -> list[str]:
    """The paired table at the report's temperature, the sweep of the late-bar excess, the matched-length rate."""
    lines: list[str] = []
    paired = report.get("paired") or {}
    t = report["settings"].get("per_bar_temperature")
    if paired:
        windows = list(dict.fromkeys(w for pair in paired.values() for w in pair))
        lines += ["", f"Paired differences of TR excess over the rhythm-matched floor (temperature {t}): per primer, "
                  "first source minus second over the bar window, mean [95% paired bootstrap interval] (n primers). "
                  "Comparisons between sources come from here, not from overlapping intervals.", "",
                  "| first - second | " + " | ".join(windows) + " |", "| --- |" + " --- |" * len(windows)]
        for name, by_window in paired.items():
            lines.append(f"| {name} | " + " | ".join(_figure(by_window.get(w)) for w in windows) + " |")
    by_t = report.get("summary_by_temperature") or {}
    if len(by_t) > 1:
        temps = sorted(by_t, key=float)
        sources = [r["source"] for r in next(iter(by_t.values())) if r["source"] != "floor"]
        lines += ["", "Late-bar TR excess (last 8 bars, over the rhythm-matched floor) at each temperature of the "
                  "sweep: a reading that holds at one temperature only holds there.", "",
                  "| source | " + " | ".join(f"T {x}" for x in temps) + " |", "| --- |" + " --- |" * len(temps)]
        for src in sources:
            cells = [_figure(next((r for r in by_t[x] if r["source"] == src), {}).get("TR_excess_last")) for x in temps]
            lines.append(f"| {src} | " + " | ".join(cells) + " |")
    lines += paired_sweep_lines(report)
    lines += companion_lines(report)
    lines += human_part_line(report)
    matched = report.get("distinct_bar_rate_matched") or {}
    if matched:
        against = report.get("distinct_bar_rate_matched_paired") or {}
        lines += ["", f"Distinct-bar rate at matched length (temperature {t}): model and human scored over the same "
                  "bars of each primer (the human continuation's length); the 64-bar rate is the summary's column.",
                  "", "| source | rate at matched length | minus human (paired) |", "| --- | --- | --- |"]
        for src, st in matched.items():
            lines.append(f"| {src} | {_figure(st, '{:.3f}')} | {_figure(against.get(f'{src}-human'))} |")
    lines += _distinct_sweep_lines(report)
    return lines


def _distinct_sweep_lines(report: dict) -> list[str]:
    """The matched-length distinct-bar rate and its paired difference from the human's at every temperature:
    how much of what a lower temperature buys is repetition."""
    rates = {t: _dicts(v) for t, v in _dicts(report.get("distinct_bar_rate_matched_by_temperature")).items()
             if _float_or_none(t) is not None}
    against = {t: _dicts(v) for t, v in _dicts(report.get("distinct_bar_rate_matched_paired_by_temperature")).items()}
    if len(rates) < 2:
        return []
    temps = sorted(rates, key=float)
    sources = list(dict.fromkeys(src for t in temps for src in rates[t]))
    lines = ["", "Distinct-bar rate at matched length at each temperature: the rate, then minus the human "
             "continuation's (paired per primer), mean [95% interval] (n primers).", "",
             "| source | " + " | ".join(f"T {t}" for t in temps) + " |", "| --- |" + " --- |" * len(temps)]
    for src in sources:
        cells = []
        for t in temps:
            rate = _number((rates[t].get(src) or {}).get("mean"))
            diff = (against.get(t) or {}).get(f"{src}-human")
            cells.append(MISSING if rate is None else f"{rate:.3f}" + (f"; {_figure(diff)}" if diff else ""))
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    return lines


COMPANIONS = (("TR_phase_excess", "TR_phase (phase-robust)"), ("PTR_excess", "PTR (pitch only)"),
              ("TR_excess_random", "TR over the random floor"))


def paired_sweep_lines(report: dict) -> list[str]:
    """The paired differences of TR excess at every temperature of the sweep, one table per bar window: a
    comparison that holds at one temperature only is seen to (issue 24 items 3 and 4)."""
    by_t = _dicts(report.get("paired_by_temperature"))
    by_t = {t: _dicts(pairs) for t, pairs in by_t.items() if _float_or_none(t) is not None}
    if len(by_t) < 2:
        return []
    temps = sorted(by_t, key=float)
    pairs = list(dict.fromkeys(name for t in temps for name in by_t[t]))
    windows = list(dict.fromkeys(w for t in temps for pair in by_t[t].values() for w in pair))
    lines: list[str] = []
    for window in windows:
        rows = [(name, [_dicts(by_t[t].get(name)).get(window) for t in temps]) for name in pairs]
        rows = [(name, cells) for name, cells in rows if any(c and c.get("mean") is not None for c in cells)]
        if not rows:
            continue
        lines += ["", f"Paired differences of TR excess, {window}, at each temperature of the sweep (first source minus "
                  "second, mean [95% paired bootstrap interval] (n primers)):", "",
                  "| first - second | " + " | ".join(f"T {t}" for t in temps) + " |", "| --- |" + " --- |" * len(temps)]
        lines += [f"| {name} | " + " | ".join(_figure(c) for c in cells) + " |" for name, cells in rows]
    return lines


def _window_mean(st: dict, start: int, stop: int) -> tuple[float | None, list[int]]:
    """The mean of a per-bar series' means over bars [start, stop) and the n of those bars (the primers that
    reach them); None where no bar of the window has a mean."""
    means = [m for m in _list(st.get("mean"))[start:stop] if _number(m) is not None]
    counts = [n for n in _list(st.get("n"))[start:stop] if _number(n)]
    return (sum(means) / len(means) if means else None), counts


def _n_range(counts: list[int]) -> str:
    return "" if not counts else f"n {max(counts)}" if min(counts) == max(counts) else f"n {max(counts)}-{min(counts)}"


def companion_lines(report: dict) -> list[str]:
    """Theme recall beside its companions (phase-robust, pitch-only, over the random floor) at the report's
    temperature: each source's window means, then the paired differences of each companion (issue 24 items 1
    and 2: which of pitch and rhythm is kept, and whether a drift by a beat was scored as forgetting).

    The window means are the report's `window_means.<series>.<source>.<window>`, each with its interval and n;
    a report made before that key (docs/report.json as shipped) has only the per-bar series, from which the
    table gives the mean of each bar's mean over the window with the primers those bars rest on, and says so."""
    block = {s: _dicts(v) for s, v in _dicts(report.get("per_bar")).items()}
    means = {s: {src: _dicts(w) for src, w in _dicts(v).items()} for s, v in _dicts(report.get("window_means")).items()}
    given = bool(means)
    have = means if given else block
    series = [(s, name) for s, name in (("TR_excess", "TR (bar grid)"), *COMPANIONS) if have.get(s)]
    paired = {name: {pair: _dicts(w) for pair, w in _dicts(by_pair).items()}
              for name, by_pair in _dicts(report.get("paired_by_series")).items()}
    if len(series) < 2:
        return []
    spans = bar_windows(int(report["settings"]["bars"]))
    t = report["settings"].get("per_bar_temperature")
    heads = [f"{name} bars {a + 1}-{b}" for _, name in series for a, b in spans]
    head = (f"Theme recall and its companions at temperature {t}, each over the source's own rhythm-matched floor "
            "unless named (0 = chance): ")
    if given:
        head += ("per primer the mean over the window's bars, then the mean [95% bootstrap interval] over primers "
                 f"(n primers); {MISSING} = fewer than {report['settings'].get('min_n') or 1} primers (min_n).")
    else:
        head += ("the mean over primers of each bar's mean in the window, with the primers it rests on. This report "
                 "was made before the window means were kept with their intervals (`window_means`): the next "
                 "evaluate gives each with its 95% interval; until then they are read from the paired differences "
                 "(below) and, for TR, from the summary table.")
    lines = ["", head, "", "| source | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
    sources = list(dict.fromkeys(src for s, _ in series for src in have[s]))
    least = report["settings"].get("min_n") or 1
    for src in sources:
        cells = []
        for s, _ in series:
            for a, b in spans:
                if given:
                    cells.append(_figure(means[s].get(src, {}).get(window_label(a, b))))
                    continue
                mean, counts = _window_mean(block[s].get(src) or {}, a, b)
                cells.append(MISSING if mean is None or not counts or min(counts) < least
                             else f"{mean:+.3f} ({_n_range(counts)})")
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    shown = [(s, name) for s, name in COMPANIONS if paired.get(s)]
    if shown:
        windows = list(dict.fromkeys(w for s, _ in shown for pair in paired[s].values() for w in pair))
        heads = [f"{name} {w}" for _, name in shown for w in windows]
        lines += ["", f"Paired differences of the companions (temperature {t}): first source minus second, mean [95% "
                  "paired bootstrap interval] (n primers).", "",
                  "| first - second | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
        names = list(dict.fromkeys(n for s, _ in shown for n in paired[s]))
        for pair in names:
            lines.append(f"| {pair} | " + " | ".join(_figure((paired[s].get(pair) or {}).get(w))
                                                     for s, _ in shown for w in windows) + " |")
    return lines


def human_part_line(report: dict) -> list[str]:
    """The human reference's TR excess per 8-bar part of the continuation, with the primers that reach each: the
    real tunes' "fade" read as their form (the A part restated, then the B part), not as forgetting."""
    st = _dicts(_dicts(report.get("per_bar")).get("TR_excess")).get("human")
    if not st or not isinstance(st.get("mean"), list):
        return []
    least = report["settings"].get("min_n") or 1
    parts = []
    for a in range(0, len(st["mean"]), 8):
        mean, counts = _window_mean(st, a, a + 8)
        if mean is None or not counts or min(counts) < least:
            break
        parts.append(f"bars {a + 1}-{a + 8} {mean:+.3f} ({_n_range(counts)})")
    if len(parts) < 2:
        return []
    return ["", "The human reference's TR excess per 8-bar part of the continuation (the mean of each bar's mean; n = "
            "the tunes that reach those bars; parts with fewer than min_n left out): " + ", ".join(parts) + "."]


def write_controls_plots(plt, report: dict, save) -> None:
    """per_bar_theme_controls.png and temperature_sweep.png, where the report has their series."""
    block = report["per_bar"]
    if "TR_phase_excess" in block:
        _theme_panels(plt, report, block, save)
    if len(report.get("summary_by_temperature") or {}) > 1:
        _sweep(plt, report, save)


def _theme_panels(plt, report: dict, block: dict, save) -> None:
    G = int(report["settings"]["bars"])
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    x = np.arange(1, G + 1)
    for ax, (series, title) in zip(axes.flat, THEME_PANELS):
        for src, st in (block.get(series) or {}).items():
            if series == "RR" and src == "floor":
                continue
            style = source_style(src)
            mean = np.array([np.nan if v is None else v for v in st["mean"]], dtype=float)
            lo = np.array([np.nan if v is None else v for v in st["lo"]], dtype=float)
            hi = np.array([np.nan if v is None else v for v in st["hi"]], dtype=float)
            ax.plot(x[: len(mean)], mean, color=style.colour, linestyle=style.line_style, lw=1.5, label=style.label)
            ax.fill_between(x[: len(mean)], lo, hi, color=style.colour, alpha=0.12, lw=0)
        if series != "RR":
            ax.axhline(0, color=source_style("floor").colour, lw=1.0, ls="dotted")
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    for ax in axes[-1]:
        ax.set_xlabel("bar of the continuation")
    fig.suptitle(f"Theme measures over the rhythm-matched floor, and rhythm recall (temperature "
                 f"{report['settings'].get('per_bar_temperature')}; mean and 95% bootstrap interval over primers)",
                 fontsize=11)
    save(fig, "per_bar_theme_controls.png")


def _sweep(plt, report: dict, save) -> None:
    by_t = report["summary_by_temperature"]
    temps = sorted(by_t, key=float)
    xs = np.array([float(t) for t in temps])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sources = [r["source"] for r in by_t[temps[0]] if r["source"] != "floor"]
    for src in sources:
        figures = [next((r for r in by_t[t] if r["source"] == src), {}).get("TR_excess_last") or {} for t in temps]
        mean = np.array([np.nan if f.get("mean") is None else f["mean"] for f in figures], dtype=float)
        if not np.isfinite(mean).any():
            continue
        lo = np.array([np.nan if f.get("lo") is None else f["lo"] for f in figures], dtype=float)
        hi = np.array([np.nan if f.get("hi") is None else f["hi"] for f in figures], dtype=float)
        style = source_style(src)
        ax.errorbar(xs, mean, yerr=[np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)], color=style.colour,
                    linestyle=style.line_style, marker="o", capsize=3, label=style.label)
    ax.axhline(0, color=source_style("floor").colour, lw=1.0, ls="dotted", label="rhythm-matched floor")
    ax.set_xticks(xs)
    ax.set_xlabel("sampling temperature")
    ax.set_ylabel("TR excess, last 8 bars")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    n = sorted({f["n"] for t in temps for r in by_t[t] if r["source"] != "floor"
                for f in [r.get("TR_excess_last") or {}] if f.get("mean") is not None and f.get("n")})
    ax.set_title("Late-bar theme recall over the rhythm-matched floor against temperature"
                 + (f"\n(mean and 95% bootstrap interval over {n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'} primers)"
                    if n else ""), fontsize=10)
    save(fig, "temperature_sweep.png")


def influence_reference_lines(influence: dict | None) -> list[str]:
    """Each source's influence distance between its two references, and its share on the primer."""
    if not isinstance(influence, dict) or not influence:
        return []
    rows = [(k, d) for k, d in influence_models(influence).items()
            if isinstance(d, dict) and "reference_previous_note" in d]  # a null entry: named under the first table
    if not rows:
        return []
    human = influence.get("human") if isinstance(influence.get("human"), dict) else {}
    lines = ["", "Influence distance between its references: all weight on the previous note (the short extreme) and "
             "every earlier note weighed the same (the uniform spread, the long extreme); share on the primer = the "
             "share of each note's weight on primer notes. Mean [95% interval] over continuations.", "",
             "| source | distance (bars) | previous note (bars) | uniform (bars) | share on the primer |",
             "| --- | --- | --- | --- | --- |"]
    for key, d in [*rows, *((("human (nearest repeat)", human),) if "reference_previous_note" in human else ())]:
        lines.append(f"| {key} | {_figure(d, '{:.2f}')} | {_figure(d.get('reference_previous_note'), '{:.2f}')} | "
                     f"{_figure(d.get('reference_uniform'), '{:.2f}')} | {_figure(d.get('share_on_primer'), '{:.3f}')} |")
    return lines


def probe_seed_line(probe: dict | None) -> list[str]:
    """What the probe's table rests on: its bar, its seeds, the spread over them, and its platform sensitivity."""
    if not probe or not probe.get("settings", {}).get("seeds"):
        return []
    settings = probe["settings"]
    spreads = []
    for key, rec in probe["models"].items():
        if isinstance(rec, dict) and isinstance(rec.get("accuracy_min"), list) and isinstance(rec.get("accuracy_max"), list):
            spreads.append(f"{key} " + ", ".join(
                MISSING if _number(lo) is None or _number(hi) is None else f"{lo:.2f}-{hi:.2f}"
                for lo, hi in zip(rec["accuracy_min"], rec["accuracy_max"])))
    return ["", f"Probe bars are {settings.get('steps_per_bar')} steps (4/4 on the 16th grid); each figure is the mean "
            f"over seeds {', '.join(map(str, settings['seeds']))}"
            + (f" ({settings['eval_sequences']} test sequences per gap and seed)" if settings.get("eval_sequences") else "")
            + ". Range over the seeds per gap: " + "; ".join(spreads)
            + ". The figures move with the seed and with the platform (thread count, CPU kernels): read the range, "
            "not one run."]
