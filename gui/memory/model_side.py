"""The Memory tab's model-side plots (teacher-forced on the test tunes): NLL per bar, the context
curve with effective memory, the length check, gradient memory and repeat gain. `ModelSidePlots` builds
them; each draw_* function draws one report part onto its CaptionedPlot."""

from __future__ import annotations

import numpy as np

from .. import style
from ..plots import Bar, CaptionedPlot
from . import report_data
from .report_data import floats
from .summary import FAILS_COLOUR


class ModelSidePlots:
    def __init__(self):
        self.nll_bar_plot = CaptionedPlot(
            "Loss per bar (teacher-forced, test tunes)",
            "Bits per token in each bar of a tune. A model with memory gets better as the tune repeats itself; "
            "a forgetful one stays flat.", "bar of the tune", "bits per token", value_format="{:.3f}",
            hover_point_name="bar")
        self.context_plot = CaptionedPlot(
            "Context curve: loss when only the last k steps are visible",
            "Each model's loss with k steps of context. The large dot is its effective memory: more context "
            "than that no longer helps (within 1%).", "context k (16th-note steps)", "bits per token", log_x=True,
            value_format="{:.3f} bits")
        self.length_plot = CaptionedPlot(
            "Length check: NLL with all the context minus the best NLL_k",
            "Does a model get worse with more context? A bar beyond the red line fails: with everything it has "
            "heard its loss is higher than with only its best k steps, so part of its 'forgetting' over a long "
            "continuation may be length generalisation, not memory.", "bits", "", height=230,
            value_format="{:+.4f} bits")
        self.length_caption = self.length_plot.caption.text()
        self.gradient_plot = CaptionedPlot(
            "Gradient memory G(k)",
            "How strongly a prediction still depends on the note k steps back (log scale). A steep fall is the "
            "vanishing gradient: the model cannot learn from far back.", "steps back k", "G(k) / G(1)",
            log_x=True, log_y=True)
        self.repeat_plot = CaptionedPlot(
            "Repeat gain",
            "Bits saved on bars that repeat an earlier bar. High = the model notices and exploits repetition.",
            "bits per token", "", value_format="{:.3f} bits")

    @property
    def pairs(self) -> list[tuple[CaptionedPlot, CaptionedPlot]]:
        """Side by side in the tab (the probe takes the place beside repeat gain)."""
        return [(self.context_plot, self.length_plot), (self.gradient_plot, self.nll_bar_plot)]

    def all(self) -> list[CaptionedPlot]:
        return [self.nll_bar_plot, self.context_plot, self.length_plot, self.gradient_plot, self.repeat_plot]

    def draw(self, report: dict, keys: list[str]) -> None:
        draw_nll_per_bar(self.nll_bar_plot, report, keys)
        draw_context(self.context_plot, report, keys)
        draw_length_check(self.length_plot, report, keys)
        self.length_plot.caption.setText(self.length_caption + _generation_sentence(report))
        draw_gradient(self.gradient_plot, report, keys)
        draw_repeat_gain(self.repeat_plot, report, keys)


def draw_nll_per_bar(plot: CaptionedPlot, report: dict, keys: list[str]) -> None:
    """Bits per token in each bar of the test tunes, teacher-forced, with n per bar."""
    plot.clear()
    plot.min_n = report_data.min_n(report)
    for key in keys:
        stats = report.get("nll_per_bar", {}).get(key)
        if stats:
            mean = floats(stats["mean"])
            plot.line(key, np.arange(1, len(mean) + 1), mean, floats(stats["lo"]), floats(stats["hi"]),
                      n=floats(stats["n"]) if stats.get("n") is not None else None)


def draw_context(plot: CaptionedPlot, report: dict, keys: list[str]) -> None:
    """NLL with only the last k steps, and each model's effective memory as a large dot."""
    plot.clear()
    for key in keys:
        em = report.get("effective_memory", {}).get(key)
        if not em or not em.get("nll_k"):
            continue
        ks, curve = np.asarray(em["ks"], dtype=float), floats(em["nll_k"])
        plot.line(key, ks, curve, symbol="o")
        if em.get("n_targets"):
            plot.series[style.model_label(key)].note = f"{em['n_targets']} test tokens"
        if em.get("steps"):
            i = int(np.argmin(np.abs(ks - em["steps"])))
            plot.marker(key, ks[i], curve[i], f"{style.model_label(key)}: effective memory {em['steps']} steps"
                        + (f" = {em['bars']:.1f} bars" if em.get("bars") else ""))
        plot.power_of_two_ticks("bottom", int(ks.max()))


def draw_length_check(plot: CaptionedPlot, report: dict, keys: list[str]) -> None:
    """NLL_full - best NLL_k per model, with the tolerance it must stay within."""
    plot.clear()
    found = report.get("effective_memory") or {}
    bars, tolerance = [], None
    for key in keys:
        em = found.get(key) or {}
        if em.get("full_minus_best_bits") is None:
            continue
        tolerance = em.get("length_tolerance_bits", tolerance)
        verdict = "passes" if em.get("length_ok") else "fails"
        bars.append(Bar(key, em["full_minus_best_bits"], note=f"{verdict}; best k {em.get('best_k')} steps; "
                                                              f"{em.get('n_targets')} test tokens"))
    plot.bars(bars)
    if not bars:
        plot.set_notice("This report has no length check.")
        return
    plot.vline(0.0, "#555555", line_style="solid")
    if tolerance is not None:
        # its label in a free row above the first bar (y runs downwards on a bar chart)
        plot.vline(tolerance, FAILS_COLOUR, f"{tolerance:g} bits", label_at=0.06)
        plot.plot.setYRange(-1.1, len(bars) - 0.5, padding=0)
    top = max([b.value for b in bars] + [tolerance or 0.0])
    plot.plot.setXRange(min(0.0, min(b.value for b in bars)), top * 1.15, padding=0.02)


def draw_gradient(plot: CaptionedPlot, report: dict, keys: list[str]) -> None:
    """G(k) / G(1) on log axes."""
    plot.clear()
    lowest = 1.0
    for key in keys:
        gm = report.get("gradient_memory", {}).get(key)
        if gm and gm.get("g"):
            g = floats(gm["g"])
            g = np.where(g > 0, g, np.nan)  # log axis: zero means "no dependence at all"
            plot.line(key, np.asarray(gm["ks"], dtype=float), g)
            plot.power_of_two_ticks("bottom", int(max(gm["ks"])))
            lowest = min(lowest, float(np.nanmin(g)) if np.isfinite(g).any() else 1.0)
    # A curve that falls to 1e-20 would flatten every other one; below 1e-8 is "gone" anyway.
    plot.plot.setYRange(np.log10(max(lowest, 1e-8)), 0.2, padding=0.02)


def draw_repeat_gain(plot: CaptionedPlot, report: dict, keys: list[str]) -> None:
    """Bits saved on bars that repeat an earlier bar, one horizontal bar per model."""
    plot.clear()
    found = report.get("repeat_gain", {})
    plot.bars([Bar(k, found[k]["gain"], note=_tokens_note(found[k])) for k in keys
               if (found.get(k) or {}).get("gain") is not None])


def _tokens_note(gain: dict) -> str:
    if gain.get("n_copyable") is None:
        return ""
    return f"{gain['n_copyable']} copyable and {gain.get('n_other')} other tokens"


def _generation_sentence(report: dict) -> str:
    """The length check in the generation regime (recall by distance's twice-through tunes), when given."""
    if "length_generation" not in report:
        return ""
    worse = [style.model_label(k) for k in report.get("length_generation_worse") or []]
    # a model whose tunes rarely run past its crop has no verdict (n under min_n): say so, not "not worse"
    untold = {style.model_label(k): (v.get("past_crop_warm_minus_cut_bits") or {}).get("n", 0)
              for k, v in (report.get("length_generation") or {}).items()
              if isinstance(v, dict) and "past_crop_warm_minus_cut_bits" in v
              and (v["past_crop_warm_minus_cut_bits"] or {}).get("mean") is None}
    told = [k for k in report.get("length_generation") or {} if style.model_label(k) not in untold]
    verdict = (f"worse past the training crop: {', '.join(worse)}." if worse else
               "no model gets worse past its training crop." if told else "")
    if untold:
        verdict += (f" Too few tunes run past the training crop to tell for "
                    f"{', '.join(f'{k} (n {n})' for k, n in untold.items())}.")
    return (" In the generation regime (tunes played twice through, full context against context cut to the "
            "training crop): " + verdict.strip())
