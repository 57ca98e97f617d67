"""The originality lines of summary.md (and the README's results): per model and temperature, the copy rate
and the longest copied run with their intervals and n, beside the human baseline (the section's shape is
engine/evaluation/originality.py's; report_file checks it before anything renders it)."""

from __future__ import annotations

from engine.evaluation.originality import HUMAN
from engine.evaluation.report_file import report_number


def originality_lines(report: dict) -> list[str]:
    section = report.get("originality")
    if not isinstance(section, dict) or not section:
        return []
    temps = list(dict.fromkeys(t for by_t in section.values() if isinstance(by_t, dict) for t in by_t))
    sources = [s for s in section if s != HUMAN] + [s for s in section if s == HUMAN]
    index = (report.get("settings") or {}).get("originality") or {}
    against = (f"the {index['training_tunes']:,} training tunes ({index['indexed_spans']:,} two-bar spans)"
               if isinstance(index.get("training_tunes"), int) and isinstance(index.get("indexed_spans"), int)
               else "the training tunes")
    lines = ["", (f"Originality: the share of each continuation's two-bar spans found, in any key, in {against} "
                  "and not in its primer (copy rate, %), and the longest stretch replayed bar for bar from one "
                  "training tune (bars); each primer's mean over its samples, then the mean over primers with its "
                  "95% bootstrap interval; n = primers. The human row is the tunes' real continuations against the "
                  "same training tunes: what the tradition itself borrows (no temperature)."), ""]
    heads = [f"copy rate T {t} (%)" for t in temps] + [f"longest run T {t}" for t in temps]
    lines += ["| source | " + " | ".join(heads) + " | n |", "| --- |" + " --- |" * (len(heads) + 1)]
    for source in sources:
        by_t = section[source] if isinstance(section[source], dict) else {}
        entries = [by_t.get(t) if isinstance(by_t.get(t), dict) else {} for t in temps]
        rates = [_interval(e.get("copy_rate"), 100, "{:.2f}") for e in entries]
        runs = [_run(e.get("longest_run_bars")) for e in entries]
        ns = sorted({e["copy_rate"]["n"] for e in entries if isinstance(e.get("copy_rate"), dict)
                     and isinstance(e["copy_rate"].get("n"), int)})
        lines.append(f"| {source} | " + " | ".join(rates + runs) + f" | {'/'.join(map(str, ns)) or '-'} |")
    lines += ["", "Longest run: mean over primers [95% interval], then the longest over every continuation "
              "(max); a copied run covers at least 2 bars, 0 = nothing copied."]
    return lines + _histogram_lines(section, sources, temps)


def _histogram_lines(section: dict, sources: list[str], temps: list[str]) -> list[str]:
    """The longest-run distribution: how many continuations have each longest copied run (reports made
    before it have none: no table)."""
    def cell(entry) -> str:
        hist = (entry.get("longest_run_bars") or {}).get("histogram") if isinstance(entry, dict) else None
        if not isinstance(hist, dict):
            return "-"
        return ", ".join(f"{b}: {c}" for b, c in zip(hist.get("bars", []), hist.get("continuations", [])))

    rows = [[cell((section[source] if isinstance(section[source], dict) else {}).get(t)) for t in temps]
            for source in sources]
    if all(c == "-" for row in rows for c in row):
        return []
    # a list, not a second table: readers of the table above (the README's results) key its rows by source
    lines = ["", "Longest copied run, the distribution: for each length in bars, how many continuations have it as "
             "their longest (0 = nothing copied; every continuation counted, no interval needed).", ""]
    return lines + [f"- {source}: " + "; ".join(f"T {t} {c}" for t, c in zip(temps, row))
                    for source, row in zip(sources, rows)]


def _interval(stats, scale: float, fmt: str) -> str:
    if not isinstance(stats, dict) or report_number(stats.get("mean")) is None:
        return "-"
    text = fmt.format(scale * stats["mean"])
    if report_number(stats.get("lo")) is not None and report_number(stats.get("hi")) is not None:
        text += f" [{fmt.format(scale * stats['lo'])}, {fmt.format(scale * stats['hi'])}]"
    return text


def _run(stats) -> str:
    text = _interval(stats, 1, "{:.2f}")
    if text != "-" and report_number(stats.get("max")) is not None:
        text += f"; max {stats['max']:g}"
    return text
