"""Write an evaluation report to a folder: report.json, summary.md, one CSV per plotted series, PNG plots.

Layout of REPORT_DIR:
    report.json          every figure, the settings, the run and corpus it came from
    timings.json         how long each part took (kept apart: the only thing that varies run to run)
    summary.md           the summary table
    csv/<plot>__<series>.csv
    per_bar_TR.png, per_bar_RR.png, per_bar_IK.png, nll_k.png, nll_per_bar.png,
    gradient_memory.png, ssm.png, probe.png

Colours: models from the registry; human reference #333333 dashed; floor #999999 dotted (docs/design.md s.3).
matplotlib runs on the Agg backend: no display needed, and the GUI's Qt is never touched.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import UserError

HUMAN_STYLE = {"color": "#333333", "linestyle": "--", "label": "human reference"}
FLOOR_STYLE = {"color": "#999999", "linestyle": ":", "label": "floor (another tune)"}
PER_BAR_PLOTS = {
    "TR": ("Theme recall TR per bar", "TR: best transposed match with a primer bar"),
    "RR": ("Rhythm recall RR per bar", "RR: best onset-pattern match with a primer bar"),
    "IK": ("In-key rate IK per bar", "share of notes in the primer's key"),
}
SUMMARY_COLUMNS = (
    ("source", "model", "{}"),
    ("valid_bpt", "valid bits/token", "{:.3f}"),
    ("test_bpt", "test bits/token", "{:.3f}"),
    ("effective_memory_bars", "effective memory (bars)", "{:.2f}"),
    ("repeat_gain_bits", "repeat gain (bits)", "{:.3f}"),
    ("TR_first", "TR bars 1-8", "{:.3f}"),
    ("TR_last", "TR last 8 bars", "{:.3f}"),
    ("RR_first", "RR bars 1-8", "{:.3f}"),
    ("RR_last", "RR last 8 bars", "{:.3f}"),
    ("downbeat_rate", "downbeat rate", "{:.3f}"),
    ("in_key_rate", "in-key rate", "{:.3f}"),
)


def _style(source: str) -> dict:
    from .models.registry import MODEL_COLOURS, MODEL_LABELS

    if source == "human":
        return dict(HUMAN_STYLE)
    if source == "floor":
        return dict(FLOOR_STYLE)
    return {"color": MODEL_COLOURS.get(source, "#000000"), "linestyle": "-", "label": MODEL_LABELS.get(source, source)}


def _write_csv(path: Path, header: list[str], rows) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    atomic_write(path, buf.getvalue().encode("utf-8"))


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def summary_markdown(report: dict) -> str:
    cols = [c for c in SUMMARY_COLUMNS if any(c[0] in row for row in report["summary"])]
    bars = report["settings"]["bars"]
    lines = [
        f"Continuation of {bars} bars after {report['settings']['primer_bars']} primer bars, "
        f"{len(report['primers'])} primers x {report['settings']['samples']} samples; "
        f"'last 8 bars' = bars {max(1, bars - 7)}-{bars}.",
        "",
        "| " + " | ".join(c[1] for c in cols) + " |",
        "| " + " | ".join("---" for _ in cols) + " |",
    ]
    for row in report["summary"]:
        cells = []
        for key, _, fmt in cols:
            value = row.get(key)
            cells.append("" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    probe = report.get("probe")
    if probe:
        settings = probe["settings"]
        lines += [
            "",
            (f"Theme-recall probe: accuracy on the returning motif against the gap in bars (fresh "
             f"{settings['preset']} models, {settings['train_steps']} training steps; chance {probe['chance']:.3f})."),
            "",
            "| model | " + " | ".join(f"gap {g}" for g in probe["gaps"]) + " |",
            "| --- | " + " | ".join("---" for _ in probe["gaps"]) + " |",
        ]
        for key, rec in probe["models"].items():
            lines.append(f"| {key} | " + " | ".join("" if a is None else f"{a:.2f}" for a in rec["accuracy"]) + " |")
    late = {k: tc for k, tc in report.get("training_curves", {}).items() if tc.get("late_gain_bits") is not None}
    if late:
        lines += ["", "Validation bits/token still gained in the last quarter of training (0 = a flat curve): "
                  + ", ".join(f"{k} {tc['late_gain_bits']:.3f} (steps {tc['late_from_step']}-{tc['step'][-1]})"
                              for k, tc in late.items()) + "."]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir) -> list[Path]:
    """Write every file of the report into out_dir (created); returns the paths written."""
    out = Path(out_dir)
    try:
        (out / "csv").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the report folder ({exc.strerror or exc})") from None
    written = []
    doc = {k: v for k, v in report.items() if k != "timings"}
    atomic_write(out / "report.json", (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode("utf-8"))
    written.append(out / "report.json")
    if "timings" in report:
        atomic_write(out / "timings.json", (json.dumps(report["timings"], indent=1) + "\n").encode("utf-8"))
        written.append(out / "timings.json")
    atomic_write(out / "summary.md", summary_markdown(report).encode("utf-8"))
    written.append(out / "summary.md")
    written += _write_csvs(report, out / "csv")
    written += _write_plots(report, out)
    return written


def _write_csvs(report: dict, folder: Path) -> list[Path]:
    paths = []

    def series(plot, name, header, rows):
        path = folder / f"{plot}__{name}.csv"
        _write_csv(path, header, rows)
        paths.append(path)

    for metric, by_source in report["per_bar"].items():
        for src, st in by_source.items():
            series(f"per_bar_{metric}", src, ["bar", "mean", "lo", "hi", "n"],
                   zip(range(1, len(st["mean"]) + 1), st["mean"], st["lo"], st["hi"], st["n"]))
    for key, st in report.get("nll_per_bar", {}).items():
        series("nll_per_bar", key, ["bar", "bits_per_token", "lo", "hi", "n_tunes"],
               zip(range(1, len(st["mean"]) + 1), st["mean"], st["lo"], st["hi"], st["n"]))
    for key, em in report.get("effective_memory", {}).items():
        series("nll_k", key, ["k_steps", "nll_k_bits", "nll_full_bits"],
               ((k, v, em["nll_full"]) for k, v in zip(em["ks"], em["nll_k"])))
    for key, gm in report.get("gradient_memory", {}).items():
        series("gradient_memory", key, ["k", "G_normalised"], zip(gm["ks"], gm["g"]))
    for key, m in report.get("ssm", {}).items():
        size = len(m)
        series("ssm", key, ["bar_i", "bar_j", "sim_T"],
               ((i + 1, j + 1, m[i][j]) for i in range(size) for j in range(size)))
    probe = report.get("probe")
    if probe:
        for key, rec in probe["models"].items():
            series("probe", key, ["gap_bars", "accuracy", "chance"],
                   ((g, a, probe["chance"]) for g, a in zip(probe["gaps"], rec["accuracy"])))
    for key, tc in report.get("training_curves", {}).items():
        series("training_curves", key, ["step", "train_bpt", "valid_bpt"],
               zip(tc["step"], tc["train_bpt"], tc["valid_bpt"]))
    rg = report.get("repeat_gain", {})
    if rg:
        series("repeat_gain", "all", ["model", "gain_bits", "copyable_bits", "other_bits", "n_copyable", "n_other"],
               ((k, v["gain"], v["copyable_bits"], v["other_bits"], v["n_copyable"], v["n_other"]) for k, v in rg.items()))
    return paths


def _write_plots(report: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    paths = []
    models = report["models"]

    def save(fig, name):
        path = out / name
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write(path, buf.getvalue())
        paths.append(path)

    P = report["settings"]["primer_bars"]
    for metric, (title, ylabel) in PER_BAR_PLOTS.items():
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for src in [*models, "human", "floor"]:
            st = report["per_bar"][metric][src]
            x = np.arange(1, len(st["mean"]) + 1)
            style = _style(src)
            ax.plot(x, _arr(st["mean"]), lw=1.6, **style)
            ax.fill_between(x, _arr(st["lo"]), _arr(st["hi"]), color=style["color"], alpha=0.12, lw=0)
        ax.set_title(f"{title} (mean and 95% bootstrap interval over primers)")
        ax.set_xlabel(f"bar of the continuation (after {P} primer bars)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=4, loc="lower left")
        save(fig, f"per_bar_{metric}.png")

    if report.get("effective_memory"):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for key in models:
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
        ax.set_title("Context ablation: NLL with only the last k tokens (star = effective memory, within 1%)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        save(fig, "nll_k.png")

    if report.get("nll_per_bar"):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for key in models:
            st = report["nll_per_bar"][key]
            x = np.arange(1, len(st["mean"]) + 1)
            style = _style(key)
            ax.plot(x, _arr(st["mean"]), lw=1.5, **style)
            ax.fill_between(x, _arr(st["lo"]), _arr(st["hi"]), color=style["color"], alpha=0.12, lw=0)
        ax.set_xlabel("bar of the test tune")
        ax.set_ylabel("bits per token")
        ax.set_title("NLL per bar on held-out tunes (teacher-forced, full usable context)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "nll_per_bar.png")

    if report.get("gradient_memory"):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for key in models:
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

    if report.get("ssm"):
        names = [k for k in [*models, "human"] if k in report["ssm"]]
        cols = min(3, len(names))
        rows = -(-len(names) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False, layout="constrained")
        for ax, name in zip(axes.flat, names):
            m = _arr(np.array(report["ssm"][name], dtype=object).ravel()).reshape(len(report["ssm"][name]), -1)
            n = m.shape[0]
            im = ax.imshow(m, vmin=0, vmax=1, cmap="magma", origin="upper", interpolation="nearest",
                           extent=(0.5, n + 0.5, n + 0.5, 0.5))  # bars numbered from 1
            ax.axhline(P + 0.5, color="white", lw=0.6)
            ax.axvline(P + 0.5, color="white", lw=0.6)
            ax.set_title(_style(name)["label"], fontsize=10)
            ax.set_xlabel("bar (primer, then continuation)", fontsize=8)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.colorbar(im, ax=axes, shrink=0.7, label="mean sim_T (primer above/left of the white lines)")
        fig.suptitle("Self-similarity of primer + continuation, averaged over primers")
        path = out / "ssm.png"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        atomic_write(path, buf.getvalue())
        paths.append(path)

    probe = report.get("probe")
    if probe:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for key, rec in probe["models"].items():
            ax.plot(probe["gaps"], _arr(rec["accuracy"]), marker="o", lw=1.6, **_style(key))
        ax.axhline(probe["chance"], color="#999999", ls=":", label=f"chance ({probe['chance']:.3f})")
        ax.set_xscale("log", base=2)  # gaps are >= 1 bar, doubling
        ax.set_xlim(min(probe["gaps"]) / 1.3, max(probe["gaps"]) * 1.3)
        ax.set_xticks(probe["gaps"])
        ax.set_xticklabels([str(g) for g in probe["gaps"]])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("gap g (bars of filler between the motif and its return)")
        ax.set_ylabel("accuracy on the returning motif")
        ax.set_title(f"Theme-recall probe (fresh {probe['settings']['preset']} models)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")  # short gaps sit near 1: the corner below them is free
        save(fig, "probe.png")

    curves = {k: tc for k, tc in report.get("training_curves", {}).items() if tc["step"]}
    if curves:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for key, tc in curves.items():
            ax.plot(tc["step"], _arr(tc["valid_bpt"]), lw=1.6, **_style(key))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("validation bits per token")
        ax.set_title("Training: validation bits per token of the evaluated models")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
        save(fig, "training_curves.png")
    return paths


def _fmt_memory(em: dict) -> str:
    if em["steps"] is None:
        return "beyond 1024 steps"
    return f"{em['steps']} steps = {em['bars']:.2f} bars"
