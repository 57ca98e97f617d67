"""The recall-by-distance lines of summary.md (and the README's results): the headline memory measure
(docs/measures.md, "Recall by distance"), as a table per model over the distance buckets, the mean over
training seeds with its interval, then each seed's horizon so a reader sees whether the seeds agree."""

from __future__ import annotations

from engine.evaluation.report_file import report_number as _num


def _values(rec: dict, part: str, n: int) -> list:
    values = rec.get(part)
    values = values.get("mean") if isinstance(values, dict) else values
    return [_num(v) for v in values] + [None] * (n - len(values)) if isinstance(values, list) else [None] * n


def _cell(mean, lo, hi) -> str:
    if mean is None:
        return "-"
    if lo is None or hi is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def recall_lines(report: dict) -> list[str]:
    recall = report.get("recall_by_distance")
    if not isinstance(recall, dict) or not recall:
        return []
    settings = _get(report, "settings", "recall")
    settings = settings if isinstance(settings, dict) else {}
    seeds = settings.get("seeds") if isinstance(settings.get("seeds"), list) and settings.get("seeds") else [0]
    first = next((r for r in recall.values() if isinstance(r, dict)), {})
    buckets = first.get("buckets") if isinstance(first.get("buckets"), list) else []
    tunes = first.get("n_tunes") if isinstance(first.get("n_tunes"), list) else []
    tunes_n, targets = settings.get("tunes"), settings.get("targets")
    material = (f" on the {tunes_n} test tunes played twice through ({targets:,} target bars)"
                if isinstance(tunes_n, int) and isinstance(targets, int) else " on the test tunes played twice through")
    over = f"the mean over training seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"one training seed ({seeds[0]})"
    lines = ["", (f"Recall by distance, teacher-forced{material}: bits per token a bar's prediction loses when the earlier "
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
        if not isinstance(rec, dict):
            continue
        n = len(rec.get("mean")) if isinstance(rec.get("mean"), list) else 0
        cells = [_cell(*v) for v in zip(_values(rec, "mean", n), _values(rec, "lo", n), _values(rec, "hi", n))]
        tail = [_num(part.get(key)) if isinstance(part, dict) else None for part in (horizon_bars, horizon_steps, half)]
        lines.append(f"| {key} | " + " | ".join(cells) + " | "
                     + " | ".join("-" if v is None else f"{v:g}" for v in tail) + " |")
    largest = {k: [abs(c) for c in _values(r, "control", 0) if c is not None]
               for k, r in recall.items() if isinstance(r, dict)}
    controls = ", ".join(f"{k} {max(c):.3f}" for k, c in largest.items() if c)
    if controls:
        lines += ["", f"Control (unrelated bars replaced), largest over the buckets: {controls}."]
    per_seed = report.get("seeds") if isinstance(report.get("seeds"), dict) else {}
    if len(per_seed) > 1:
        parts = []
        for key in recall:
            bars = [_num(_get(per_seed, s, "memory_horizon_bars", key)) for s in per_seed]
            steps = [_num(_get(per_seed, s, "memory_horizon_steps", key)) for s in per_seed]
            halves = [_num(_get(per_seed, s, "half_recall_steps", key)) for s in per_seed]
            parts.append(f"{key} {'/'.join('-' if b is None else f'{b:g}' for b in bars)} bars ("
                         f"{'/'.join('-' if b is None else f'{b:g}' for b in steps)} steps), half recall "
                         f"{'/'.join('-' if h is None else f'{h:.0f}' for h in halves)} steps")
        lines += ["", f"Per seed ({', '.join(per_seed)}): " + "; ".join(parts) + " (horizon in bars, then in steps; "
                  "0 steps = the nearest step bucket with a value already fails)."]
    return lines


def _get(doc, *keys):
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc
