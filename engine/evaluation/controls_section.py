"""The report's paired differences and matched-length distinct-bar rate (issue 24 items 4 and 5; docs/design.md
section 5, "Controls of the sampled per-bar measures").

- `paired_by_temperature.<T>.<a>-<b>.<window>` = {mean, lo, hi, n}: for every pair of models and each model
  against the human continuation, the per-primer difference of their TR excess means over the first and the
  last SUMMARY_BARS bars ("bars 1-8", "bars 57-64"), paired bootstrap over primers. `paired` is the first
  temperature's; `paired_by_series.<series>` gives the same at the first temperature for every excess series
  of PAIRED_SERIES (pitch-only, phase-robust, over the random floor); `settings.paired_series` names the
  headline one.
- `window_means_by_temperature.<T>.<series>.<source>.<window>` = {mean, lo, hi, n}: each source's own window
  figure of the same series (WINDOW_SERIES: the excess series above and the raw TR, PTR and TR_phase), for
  every model and the human continuation: per primer the mean over the window, then the mean and 95%
  bootstrap interval over primers. `window_means` is the first temperature's. It is made by the function that
  makes the paired differences and the summary table's window figures (engine.metrics.stats.window_stats).
- `distinct_bar_rate_matched(_by_temperature)`: distinct-bar rate with model and human scored over the same
  bars of each primer (the human continuation's length: the models always compose all G bars), and
  `distinct_bar_rate_matched_paired(_by_temperature).<model>-human`, the paired difference.
"""

from __future__ import annotations

from engine.evaluation.settings import EvalSettings
from engine.metrics.paired import paired_difference, paired_windows, source_pairs, window_means

HEADLINE_SERIES = "TR_excess"
PAIRED_SERIES = ("TR_excess", "PTR_excess", "TR_phase_excess", "TR_excess_random")
WINDOW_SERIES = (*PAIRED_SERIES, "TR", "PTR", "TR_phase")
SUMMARY_BARS = 8
HUMAN = "human"


def controls_settings() -> dict:
    """What report["settings"] says of these controls: the floor of TR_floor / TR_excess ("rhythm_matched";
    the random-partner floor is per_bar.TR_floor_random) and the paired table's headline series."""
    return {"floor": "rhythm_matched", "paired_series": HEADLINE_SERIES}


def bar_windows(bars: int) -> list[tuple[int, int]]:
    """The first and the last SUMMARY_BARS bars of a G-bar continuation (one window when G is that short)."""
    k = min(SUMMARY_BARS, bars)
    return list(dict.fromkeys([(0, k), (bars - k, bars)]))


def paired_block(scores: dict, models: list[str], series: str, settings: EvalSettings) -> dict:
    """{"<a>-<b>": {window: stats}} for one temperature's Scores {source: Scores}."""
    windows = bar_windows(settings.bars)
    out = {}
    for a, b in source_pairs(models, HUMAN):
        if a in scores and b in scores and series in scores[a].series and series in scores[b].series:
            out[f"{a}-{b}"] = paired_windows(scores[a].series[series], scores[b].series[series], windows,
                                             settings.bootstrap, settings.seed, settings.min_n)
    return out


def window_means_block(scores: dict, models: list[str], settings: EvalSettings) -> dict:
    """{series: {source: {window: stats}}} of WINDOW_SERIES for one temperature's Scores {source: Scores}, the
    models in the given order, then the human continuation."""
    windows = bar_windows(settings.bars)
    out = {}
    for series in WINDOW_SERIES:
        by_source = {src: window_means(scores[src].series[series], windows, settings.bootstrap, settings.seed,
                                       settings.min_n)
                     for src in [*models, HUMAN] if src in scores and series in scores[src].series}
        if by_source:
            out[series] = by_source
    return out


def distinct_matched_block(scores: dict, models: list[str], settings: EvalSettings) -> tuple[dict, dict]:
    """({source: stats} of the matched-length rate, {"<model>-human": stats} of its paired difference)."""
    from engine.metrics.stats import scalar_stats

    rates, against = {}, {}
    human = scores.get(HUMAN)
    for src in [*models, HUMAN]:
        sc = scores.get(src)
        if sc is None or sc.distinct_matched is None:
            continue
        rates[src] = scalar_stats(sc.distinct_matched, settings.bootstrap, settings.seed, settings.min_n)
        if src != HUMAN and human is not None and human.distinct_matched is not None:
            against[f"{src}-{HUMAN}"] = paired_difference(sc.distinct_matched, human.distinct_matched,
                                                          settings.bootstrap, settings.seed, settings.min_n)
    return rates, against


def controls_block(by_t: dict, models: list[str], first: str, settings: EvalSettings) -> dict:
    """The report keys of this module from {temperature: {source: Scores}}; `first` = the per_bar temperature."""
    paired_by_t = {t: paired_block(sc, models, HEADLINE_SERIES, settings) for t, sc in by_t.items()}
    distinct = {t: distinct_matched_block(sc, models, settings) for t, sc in by_t.items()}
    means_by_t = {t: window_means_block(sc, models, settings) for t, sc in by_t.items()}
    return {
        "paired": paired_by_t[first],
        "paired_by_temperature": paired_by_t,
        "paired_by_series": {s: paired_block(by_t[first], models, s, settings) for s in PAIRED_SERIES},
        "window_means": means_by_t[first],
        "window_means_by_temperature": means_by_t,
        "distinct_bar_rate_matched": distinct[first][0],
        "distinct_bar_rate_matched_by_temperature": {t: d[0] for t, d in distinct.items()},
        "distinct_bar_rate_matched_paired": distinct[first][1],
        "distinct_bar_rate_matched_paired_by_temperature": {t: d[1] for t, d in distinct.items()},
    }


# --- influence references (item 6) ---------------------------------------------------------------------


def influence_references(dist: dict, settings: EvalSettings) -> dict:
    """reference_previous_note, reference_uniform and share_on_primer, each {mean, lo, hi, n} over
    continuations, from engine.memory.influence.influence_distribution's result."""
    from engine.metrics.stats import scalar_stats

    def stats(values):
        values = [float("nan") if v is None else v for v in values]
        return scalar_stats(values, settings.bootstrap, settings.seed, settings.min_n)

    return {"reference_previous_note": stats(dist["previous_note"]),
            "reference_uniform": stats(dist["uniform"]["per_continuation_mean"]),
            "share_on_primer": stats(dist["share_on_primer"])}


def human_influence_references(real: list, bars: int, settings: EvalSettings) -> dict:
    """The same references for the real continuations (notes of primer + continuation, primer steps,
    steps per bar): previous-note distance and uniform spread of its notes. No share on the primer: the
    human reference is a repeat distance, not an attribution."""
    import numpy as np

    from engine.memory.influence import uniform_distances
    from engine.memory.influence_references import per_continuation_means, real_note_previous_distances
    from engine.metrics.stats import scalar_stats

    previous, uniform = [], []
    for notes, primer_steps, spb in real:
        previous.append(real_note_previous_distances(notes, primer_steps, bars, spb))
        kept = notes[notes[:, 0] < primer_steps + bars * spb]
        first = int(np.searchsorted(kept[:, 0], primer_steps))
        as_result = {"notes": kept.tolist(), "influence": [{"note": i} for i in range(first, len(kept))]}
        uniform.append(uniform_distances(as_result, spb))

    def stats(values):
        return scalar_stats(per_continuation_means(values), settings.bootstrap, settings.seed, settings.min_n)

    return {"reference_previous_note": stats(previous), "reference_uniform": stats(uniform)}
