"""Write an evaluation report to a folder: report.json, summary.md, one CSV per plotted series, PNG plots.

Layout of REPORT_DIR:
    report.json          every figure, the settings, the run and corpus it came from
    timings.json         how long each part took (kept apart: the only thing that varies run to run)
    summary.md           the summary tables (the README's results block is this text)
    csv/<plot>__<series>.csv     every plotted series with its n; csv/per_bar__by_temperature.csv and
                         csv/per_bar__by_meter.csv hold the breakdowns as long tables
    per_bar_TR_excess.png (the central plot), per_bar_TR.png, per_bar_TR_excess_by_meter.png,
    per_bar_<metric>.png for the other plotted rows of the metric table, nll_k.png, nll_per_bar.png,
    gradient_memory.png, self_similarity.png, probe.png, training_curves.png, influence_distance.png
                         (engine/evaluation/report_plots.py)

Labels, colours and line styles come from the metric table (engine.metrics.table) and the model
registry. A report of the first format (no temperatures, no matched floor) is still written: the
parts it lacks are left out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from engine.core.atomic import atomic_write
from engine.core.errors import UserError
from engine.evaluation.report_file import influence_models, report_number

MODEL_SIDE_COLUMNS = (
    ("valid_bpt", "valid bits/token", "{:.3f}"),
    ("test_bpt", "test bits/token", "{:.3f}"),
    ("effective_memory_bars", "effective memory (bars)", "{:.2f}"),
    ("full_minus_best_bits", "NLL_full - best NLL_k (bits)", "{:.4f}"),
    ("best_k", "best k (steps)", "{}"),
    ("length_ok", "length check", None),
    ("repeat_gain_bits", "repeat gain (bits)", "{:.3f}"),
)
# (row key, header, format); a dict value {"mean", "lo", "hi", "n"} is written "mean [lo, hi]"
CONTINUATION_COLUMNS = (
    ("TR_excess_first", "TR excess bars {first}", "{:.3f}"),
    ("TR_excess_last", "TR excess bars {last}", "{:.3f}"),
    ("TR_first", "TR bars {first}", "{:.3f}"),
    ("TR_last", "TR bars {last}", "{:.3f}"),
    ("distinct_bar_rate", "distinct-bar rate", "{:.3f}"),
    ("RR_first", "RR bars {first}", "{:.3f}"),
    ("RR_last", "RR bars {last}", "{:.3f}"),
    ("downbeat_rate", "downbeat rate", "{:.3f}"),
    ("in_key_rate", "in-key rate", "{:.3f}"),
    ("influence_distance_bars", "influence distance, {influence_primers} (bars; human: nearest repeat)",
     "{:.2f}"),
)
MISSING = "-"


def _cell(value, fmt: str | None) -> str:
    if isinstance(value, dict):
        if value.get("mean") is None:
            return MISSING
        text = fmt.format(value["mean"])
        if value.get("lo") is not None and value.get("hi") is not None:
            text += f" [{fmt.format(value['lo'])}, {fmt.format(value['hi'])}]"
        return text
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "passes" if value else "fails"
    return fmt.format(value) if fmt else str(value)


def _table(rows: list[dict], columns, first_header: str, names: dict | None = None) -> list[str]:
    lines = ["| " + " | ".join([first_header, *(c[1] for c in columns)]) + " |",
             "| " + " | ".join("---" for _ in range(len(columns) + 1)) + " |"]
    for row in rows:
        label = (names or {}).get(row["source"], row["source"])
        lines.append("| " + " | ".join([label, *(_cell(row.get(key), fmt) for key, _, fmt in columns)]) + " |")
    return lines


def _window_names(settings: dict) -> dict:
    G = settings["bars"]
    k = min(8, G)
    return {"first": f"1-{k}", "last": f"{G - k + 1}-{G}"}


def summary_markdown(report: dict) -> str:
    """The summary tables: model side, then the continuation figures at each temperature, probe, curves."""
    settings = report["settings"]
    lines = [_protocol_sentence(report), ""]
    rows = report.get("summary", [])
    model_rows = [r for r in rows if "valid_bpt" in r]
    if model_rows:
        tolerance = next((em.get("length_tolerance_bits") for em in report.get("effective_memory", {}).values()
                          if em.get("length_tolerance_bits") is not None), 0.005)
        test_tunes = report.get("corpus", {}).get("test_tunes")
        lines += [f"Model side, teacher-forced on the {test_tunes} test tunes. Length check: NLL with all the "
                  f"context within {tolerance} bits of the best NLL with only the last k steps (k = 1 .. 1024); "
                  "a positive gap means the model gets worse with more context.", ""]
        lines += _table(model_rows, MODEL_SIDE_COLUMNS, "model")
    from engine.evaluation.recall_report import recall_lines

    lines += recall_lines(report)  # the headline memory measure (issue 23), before the sampled readings
    by_t = report.get("summary_by_temperature") or ({"": rows} if rows else {})
    windows = _window_names(settings)
    # the influence column rests on fewer primers than the others: its header says how many
    n = (report.get("influence") or {}).get("primers")
    counts = {**windows, "influence_primers": f"{n} primer{'s' * (n != 1)}"}
    columns = [(key, header.format(**counts), fmt) for key, header, fmt in CONTINUATION_COLUMNS]
    columns.append(("n", f"n (bars {windows['first']} / {windows['last']})", None))
    first_t = settings.get("per_bar_temperature")
    for t, t_rows in by_t.items():
        shown = [{**r, "n": _n_cell(r)} for r in t_rows]
        if t:
            headline = " (the report's per_bar)" if first_t is not None and float(t) == float(first_t) else ""
            lines += ["", f"Continuations at temperature {t}{headline}:", ""]
        else:
            lines += [""]
        lines += _table(shown, [c for c in columns if any(c[0] in r for r in shown)], "source")
    from engine.evaluation.controls_report import controls_lines, influence_reference_lines, probe_seed_line

    lines += controls_lines(report)  # issue 24: paired differences, the temperature sweep, matched-length rates
    from engine.evaluation.originality_report import originality_lines

    lines += originality_lines(report)  # issue 27: copying from the training tunes, beside the tunes' own borrowing
    lines += _influence_lines(report.get("influence"))
    lines += influence_reference_lines(report.get("influence"))
    lines += _probe_lines(report.get("probe"))
    lines += probe_seed_line(report.get("probe"))
    late = {k: tc for k, tc in report.get("training_curves", {}).items() if tc.get("late_gain_bits") is not None}
    if late:
        lines += ["", "Validation bits/token still gained in the last quarter of training (0 = a flat curve): "
                  + ", ".join(f"{k} {tc['late_gain_bits']:.3f} (steps {tc['late_from_step']}-{tc['step'][-1]})"
                              for k, tc in late.items()) + "."]
    return "\n".join(lines) + "\n"


def _n_cell(row: dict):
    if "n_first" not in row:
        return None
    return f"{row['n_first']} / {row['n_last']}"


def _protocol_sentence(report: dict) -> str:
    settings = report["settings"]
    G, P = settings["bars"], settings.get("primer_bars") or 0  # both in every report evaluate writes
    samples = settings.get("samples")
    n = len(report.get("primers", []))
    windows = _window_names(settings)
    meters = report.get("meters") or {}
    by_meter = ", ".join(f"{m} {info['primers']}" for m, info in meters.items())
    cap = settings.get("primers_cap")
    which = (f"a seeded pick of {n} of the {settings.get('eligible_primers', n)} test tunes with at least "
             f"{P + 16} bars" if cap is not None and cap < settings.get("eligible_primers", n)
             else f"every test tune with at least {P + 16} bars")
    temps = settings.get("temperatures")
    text = (f"Continuation of {G} bars after {P} primer bars: {n} primers ({which}"
            + (f"; {by_meter}" if by_meter else "") + ")" + (f" x {samples} samples per model" if samples else "")
            + (f" and temperature ({', '.join(str(float(t)) for t in temps)})" if temps else "") + ". ")
    if "min_n" in settings:
        text += (f"Bars {windows['first']} and {windows['last']}: each primer's mean over those bars, then the mean "
                 f"over primers with its 95% bootstrap interval; TR excess = TR minus the source's own "
                 + ("rhythm-matched floor (its continuation scored against the primer of the same-meter tune whose "
                    "opening rhythm is closest)" if settings.get("floor") == "rhythm_matched" else
                    "matched floor (its continuation scored against another tune's primer of the same meter)")
                 + ", paired per primer, "
                 f"0 = chance; n = primers; {MISSING} = fewer than {settings['min_n']} primers (min_n).")
    else:
        text += f"'last 8 bars' = bars {windows['last']}."
    return text


def _influence_lines(influence) -> list[str]:
    """The influence distance beside its chance level and the nearest-repeat distances (engine.evaluation.evaluate.influence_report).
    A source whose entry is not a table (a hand edit left it null) is left out of the table, and named under it."""
    if not isinstance(influence, dict) or not influence:
        return []
    models = influence_models(influence)
    human = influence.get("human") if isinstance(influence.get("human"), dict) else None
    skipped = [key for key, d in [*models.items(), ("human", human)] if not isinstance(d, dict)]
    repeats = influence.get("repeats") if isinstance(influence.get("repeats"), dict) else {}
    share = (human or {}).get("no_repeat_share")
    lines = [
        "",
        (f"Influence distance: how many bars back lie the notes each generated note drew on ({influence['method']}: "
         f"each note's weighted mean), over the first {influence['bars']} bars of the first sample of "
         f"{influence['primers']} primers at temperature {influence['temperature']}. Mean over continuations "
         "[95% bootstrap interval], then the median [10%, 90%] over notes; uniform spread = the distance if each "
         "note's weight were spread evenly over everything before it (the long extreme, not a chance level: the "
         "previous-note reference below is the short one). Nearest repeat: how far back a note's nearest "
         "earlier repeat lies (the same two-note figure a whole number of bars back), for the real tune "
         + (f"({share:.0%} of its notes have none) " if share is not None else "")
         + "and for each model's own notes; it rests only on the notes that have a repeat (their number, and the "
         "share of notes left out, beside it)."),
        "",
        "| source | influence distance (bars) | median [q10, q90] | continuations / notes | uniform spread (bars) "
        "| nearest repeat (bars) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(key, d, repeats.get(key)) for key, d in models.items() if isinstance(d, dict)]
    for key, d, repeat in [*rows, *((("human", None, human),) if human else ())]:
        basis = d or repeat
        quantiles = [basis.get(q) for q in ("median", "q10", "q90")]
        spread = (MISSING if any(report_number(q) is None for q in quantiles)
                  else "{:.2f} [{:.2f}, {:.2f}]".format(*quantiles))
        lines.append(f"| {key} | {_cell(d, '{:.2f}') if d else MISSING} | {spread} | {basis.get('n')} / "
                     f"{basis.get('n_notes')} | {_cell(basis.get('chance'), '{:.2f}')} | {_repeat_cell(repeat)} |")
    if skipped:
        lines += ["", f"Left out of the influence tables, with no figures in the report: {', '.join(skipped)}."]
    return lines


def _repeat_cell(repeat: dict | None) -> str:
    """The nearest-repeat distance with what it rests on: the notes that have a repeat, and the share without one."""
    if not isinstance(repeat, dict):
        return MISSING
    text = _cell(repeat, "{:.2f}")
    left_out = report_number(repeat.get("no_repeat_share"))
    if left_out is None:
        return text
    return text + f" ({repeat.get('n_notes')} notes; {left_out:.0%} have none)"


def _probe_lines(probe) -> list[str]:
    if not isinstance(probe, dict) or not isinstance(probe.get("gaps"), list):
        return []
    settings = probe["settings"]
    lines = [
        "",
        (f"Theme-recall probe: accuracy on the returning motif against the gap in bars (fresh "
         f"{settings['preset']} models, {settings['train_steps']} training steps; chance {probe['chance']:.3f})."),
        "",
        "| model | " + " | ".join(f"gap {g}" for g in probe["gaps"]) + " |",
        "| --- | " + " | ".join("---" for _ in probe["gaps"]) + " |",
    ]
    for key, rec in probe["models"].items():
        accuracy = rec.get("accuracy") if isinstance(rec, dict) else None
        cells = [f"{a:.2f}" if isinstance(a, (int, float)) and not isinstance(a, bool) else ""
                 for a in (accuracy if isinstance(accuracy, list) else [])]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


# --- files ----------------------------------------------------------------------------------------


def json_text(obj, indent: int = 0) -> str:
    """JSON with one line per list of numbers (a per-bar series, an SSM row): a third of indent=1's size."""
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad} {json.dumps(str(k))}: {json_text(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], list))
                                     for v in obj):
        items = [f"{pad} {json_text(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(obj, list) and obj and isinstance(obj[0], list) and len(obj) > 16:
        return "[\n" + ",\n".join(f"{pad} {json.dumps(v)}" for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def write_report(report: dict, out_dir, on_file: Callable[[Path], None] | None = None) -> list[Path]:
    """Write every file of the report into out_dir (created); returns the paths written. `on_file` hears of each
    file as it is written (the app counts them for its progress line: it never scans the folder, which may be
    the person's home with thousands of files of their own)."""
    from engine.evaluation.report_plots import write_plots

    out = Path(out_dir)
    try:
        (out / "csv").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the report folder ({exc.strerror or exc})") from None
    written: list[Path] = []

    def done(path: Path) -> None:
        written.append(path)
        if on_file is not None:
            on_file(path)

    doc = {k: v for k, v in report.items() if k != "timings"}
    atomic_write(out / "report.json", (json_text(doc) + "\n").encode("utf-8"))
    done(out / "report.json")
    if "timings" in report:
        atomic_write(out / "timings.json", (json.dumps(report["timings"], indent=1) + "\n").encode("utf-8"))
        done(out / "timings.json")
    atomic_write(out / "summary.md", summary_markdown(report).encode("utf-8"))
    done(out / "summary.md")
    _write_csvs(report, out / "csv", done)
    write_plots(report, out, done)
    return written


def _write_csv(path: Path, header: list[str], rows) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    atomic_write(path, buf.getvalue().encode("utf-8"))


def _long_rows(blocks):
    for prefix, block in blocks:
        for metric, by_source in block.items():
            for src, st in by_source.items():
                for b, row in enumerate(zip(st["mean"], st["lo"], st["hi"], st["n"]), start=1):
                    yield (*prefix, metric, src, b, *row)


def _per_bar_series(report: dict):
    """One file per per-bar series (what the plots draw), then the breakdowns as two long tables rather than
    hundreds of files, then the distinct-bar rate. Each item: (plot, name, header, rows)."""
    for metric, by_source in report["per_bar"].items():
        for src, st in by_source.items():
            yield (f"per_bar_{metric}", src, ["bar", "mean", "lo", "hi", "n"],
                   zip(range(1, len(st["mean"]) + 1), st["mean"], st["lo"], st["hi"], st["n"]))
    by_t = report.get("by_temperature", {})
    if by_t:
        yield ("per_bar", "by_temperature", ["temperature", "metric", "source", "bar", "mean", "lo", "hi", "n"],
               _long_rows(((t,), block) for t, block in by_t.items()))
    by_tm = report.get("by_temperature_and_meter", {})
    if by_tm:
        yield ("per_bar", "by_meter", ["temperature", "meter", "metric", "source", "bar", "mean", "lo", "hi", "n"],
               _long_rows(((t, m), block) for t, meters in by_tm.items() for m, block in meters.items()))
    distinct = report.get("distinct_bar_rate_by_temperature")
    if distinct:
        yield ("distinct_bar_rate", "all", ["temperature", "source", "mean", "lo", "hi", "n"],
               ((t, src, st["mean"], st["lo"], st["hi"], st["n"]) for t, by in distinct.items() for src, st in by.items()))


def _model_side_series(report: dict):
    for key, st in report.get("nll_per_bar", {}).items():
        yield ("nll_per_bar", key, ["bar", "bits_per_token", "lo", "hi", "n_tunes"],
               zip(range(1, len(st["mean"]) + 1), st["mean"], st["lo"], st["hi"], st["n"]))
    for key, em in report.get("effective_memory", {}).items():
        yield ("nll_k", key, ["k_steps", "nll_k_bits", "nll_full_bits"],
               ((k, v, em["nll_full"]) for k, v in zip(em["ks"], em["nll_k"])))
    for key, gm in report.get("gradient_memory", {}).items():
        yield "gradient_memory", key, ["k", "G_normalised"], zip(gm["ks"], gm["g"])
    for key, m in report.get("self_similarity", {}).items():
        size = len(m)
        yield ("self_similarity", key, ["bar_i", "bar_j", "sim_T"],
               ((i + 1, j + 1, m[i][j]) for i in range(size) for j in range(size)))


def _probe_and_training_series(report: dict):
    probe = report.get("probe")
    if probe:
        for key, rec in probe["models"].items():
            yield ("probe", key, ["gap_bars", "accuracy", "chance"],
                   ((g, a, probe["chance"]) for g, a in zip(probe["gaps"], rec["accuracy"])))
    for key, tc in report.get("training_curves", {}).items():
        yield ("training_curves", key, ["step", "train_bpt", "valid_bpt"],
               zip(tc["step"], tc["train_bpt"], tc["valid_bpt"]))


def _influence_and_repeat_series(report: dict):
    influence = report.get("influence")
    if influence:
        yield ("influence_distance", "histograms", ["measure", "source", "from_bars", "to_bars", "notes"],
               ((measure, src, d["histogram"]["edges"][b], d["histogram"]["edges"][b + 1], count)
                for measure, by_source in (("influence", influence_models(influence)),
                                           ("repeat", influence.get("repeats") or {}),
                                           ("repeat", {"human": influence.get("human")}))
                for src, d in by_source.items() if isinstance(d, dict)
                for b, count in enumerate(d["histogram"]["counts"])))
    rg = report.get("repeat_gain", {})
    if rg:
        yield ("repeat_gain", "all", ["model", "gain_bits", "copyable_bits", "other_bits", "n_copyable", "n_other"],
               ((k, v["gain"], v["copyable_bits"], v["other_bits"], v["n_copyable"], v["n_other"]) for k, v in rg.items()))


# In this order: write_report returns the paths in the order they are written.
_CSV_SECTIONS = (_per_bar_series, _model_side_series, _probe_and_training_series, _influence_and_repeat_series)


def _write_csvs(report: dict, folder: Path, done: Callable[[Path], None]) -> None:
    for section in _CSV_SECTIONS:
        for plot, name, header, rows in section(report):
            path = folder / f"{plot}__{name}.csv"
            _write_csv(path, header, rows)
            done(path)
