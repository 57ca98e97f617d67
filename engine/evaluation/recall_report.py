"""The recall-by-distance lines of summary.md (and the README's results): the headline memory measure
(docs/measures.md, "Recall by distance"), as a table per model over the distance buckets, the mean over
training seeds with its interval, then each seed's horizon so a reader sees whether the seeds agree."""

from __future__ import annotations


def _cell(mean, lo, hi) -> str:
    if mean is None:
        return "-"
    if lo is None or hi is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def recall_lines(report: dict) -> list[str]:
    recall = report.get("recall_by_distance")
    if not recall:
        return []
    settings = report.get("settings", {}).get("recall", {})
    seeds = settings.get("seeds") or [settings.get("main_seed", 0)]
    first = next(iter(recall.values()))
    buckets, tunes = first["buckets"], first.get("n_tunes") or []
    over = f"the mean over training seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"one training seed ({seeds[0]})"
    lines = ["", (f"Recall by distance, teacher-forced on the {settings.get('tunes')} test tunes played twice through "
                  f"({settings.get('targets'):,} target bars): bits per token a bar's prediction loses when the earlier "
                  "bars it restates are replaced by foreign bars of the same rhythm, minus the same replacement of "
                  f"unrelated bars (paired per target; 0 = no memory); {over}, with a 95% bootstrap interval over tunes of that mean. "
                  "Distance = bars back to the nearest replaced bar; n = tunes per bucket. Horizon: the farthest "
                  "bucket above max(0.05 bits, 10% of the model's own excess at 4 bars or less), every nearer one "
                  "too; half recall: where the excess falls below half that short-range value."), ""]
    heads = [f"{b} bar{'s' * (b != '1')} (n {n})" for b, n in zip(buckets, tunes, strict=False)] or list(buckets)
    lines.append("| model | " + " | ".join(heads) + " | horizon (bars) | horizon (steps) | half recall (steps) |")
    lines.append("| --- |" + " --- |" * (len(heads) + 3))
    horizon_bars = report.get("memory_horizon_bars", {})
    horizon_steps = report.get("memory_horizon_steps", {})
    half = report.get("half_recall_steps", {})
    for key, rec in recall.items():
        cells = [_cell(m, lo, hi) for m, lo, hi in zip(rec["mean"], rec["lo"], rec["hi"], strict=False)]
        tail = [horizon_bars.get(key), horizon_steps.get(key), half.get(key)]
        lines.append(f"| {key} | " + " | ".join(cells) + " | "
                     + " | ".join("-" if v is None else f"{v:g}" for v in tail) + " |")
    controls = ", ".join(f"{k} {max(abs(c) for c in r['control'] if c is not None):.3f}"
                         for k, r in recall.items() if any(c is not None for c in r.get("control", [])))
    if controls:
        lines += ["", f"Control (unrelated bars replaced), largest over the buckets: {controls}."]
    per_seed = report.get("seeds") or {}
    if len(per_seed) > 1:
        parts = []
        for key in recall:
            bars = [per_seed[s].get("memory_horizon_bars", {}).get(key) for s in per_seed]
            halves = [per_seed[s].get("half_recall_steps", {}).get(key) for s in per_seed]
            parts.append(f"{key} {'/'.join('-' if b is None else str(b) for b in bars)} bars, half recall "
                         f"{'/'.join('-' if h is None else f'{h:.0f}' for h in halves)} steps")
        lines += ["", f"Per seed ({', '.join(per_seed)}): " + "; ".join(parts) + "."]
    return lines
