"""A memory report (report.json) read back strictly: the app opens reports a user picks, reports it kept and
the one shipped with the bundled models, so every part it draws from is checked before anything is drawn.

`read_report` returns the document (a plain dict: the keys are the contract of docs/design.md section 5,
"Protocol (revised ...)") or raises a UserError naming the file and the first thing wrong with it. A report
of the first format (no `format` key, one temperature, no matched floor) is still read.

Older layouts are read as they are, and every reader falls back (the app's rule for older reports: a part
a report lacks is left out, it is never refused for its age). The influence block is the one key that
moved: each model's entry is `influence.<model>` beside the block's own keys (INFLUENCE_KEYS); a report
written before that (December 2026, format melody-memory-report/2 like today's) has it under
`influence.models.<model>`, and `influence_models` reads both, so such a report still opens, renders and
exports without being evaluated again. The self-similarity matrices are `self_similarity`; a report written
before 7 December 2026 has them under the selective SSM's model key, and opens without them (the rule above).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import stat
from pathlib import Path

from engine.core.errors import UserError
from engine.core.validation import Limit

FORMAT = "melody-memory-report/2"  # what evaluate writes now
FORMATS = ("melody-memory-report", FORMAT)  # and what it wrote before
MAX_BARS = 4096
# The shipped report (64 bars, four temperatures, seven models) is 8 MB; one of 1,024 bars about 130 MB.
MAX_REPORT_BYTES = 256 * 2**20
_COUNT = Limit("int", 0, 10**9)
# The influence block's own keys: every other key of it is a model (influence.<model>). No model key can be
# one of these (engine.models.registry refuses them at registration; evaluate asserts it when writing).
# "models" held every model's entry in the layout before (influence.models.<model>).
INFLUENCE_KEYS = ("method", "bars", "primers", "temperature", "human", "repeats", "models")


def read_report(path) -> dict:
    path = Path(path)
    _check_file(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not a readable report ({exc})") from None
    check_report(doc, str(path))
    return doc


def _check_file(path: Path) -> None:
    """A regular file of at most MAX_REPORT_BYTES, looked at before it is read: a FIFO would block the read, a
    link to /dev/zero or a sparse file would fill the memory."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError(f"{path}: not a readable report ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: not a regular file, so not a readable report")
    if st.st_size > MAX_REPORT_BYTES:
        raise UserError(f"{path}: {st.st_size / 2**20:,.0f} MB, far more than a report holds (at most "
                        f"{MAX_REPORT_BYTES // 2**20} MB): not read")


def check_report(doc, where: str) -> None:
    """UserError naming `where` and the key unless `doc` has every part the app draws, in the right shape."""
    _need(isinstance(doc, dict) and "per_bar" in doc, where, "report", "a Melody Memory report (it has no per_bar)")
    if "format" in doc:
        _need(doc["format"] in FORMATS, where, "format", f"one of {', '.join(FORMATS)}")
    _finite_everywhere(doc, where, "report")
    settings = doc.get("settings")
    _need(isinstance(settings, dict), where, "settings", "a table")
    Limit("int", 1, MAX_BARS).check(settings.get("bars"), "settings.bars", where)
    Limit("int", 1, 10**6, optional=True).check(settings.get("min_n"), "settings.min_n", where)
    _summary_settings(settings, where)
    _metric_table(doc["per_bar"], where, "per_bar")
    for t, table in _table(doc.get("by_temperature"), where, "by_temperature").items():
        _metric_table(table, where, f"by_temperature.{t}")
    for meter, table in _table(doc.get("by_meter"), where, "by_meter").items():
        _metric_table(table, where, f"by_meter.{meter}")
    for t, meters in _table(doc.get("by_temperature_and_meter"), where, "by_temperature_and_meter").items():
        for meter, table in _table(meters, where, f"by_temperature_and_meter.{t}").items():
            _metric_table(table, where, f"by_temperature_and_meter.{t}.{meter}")
    _rates(doc.get("distinct_bar_rate"), where, "distinct_bar_rate")
    for t, rates in _table(doc.get("distinct_bar_rate_by_temperature"), where, "distinct_bar_rate_by_temperature").items():
        _rates(rates, where, f"distinct_bar_rate_by_temperature.{t}")
    _summary(doc.get("summary", []), where, "summary")
    for t, rows in _table(doc.get("summary_by_temperature"), where, "summary_by_temperature").items():
        _summary(rows, where, f"summary_by_temperature.{t}")
    for meter, info in _table(doc.get("meters"), where, "meters").items():
        _need(isinstance(info, dict), where, f"meters.{meter}", "a table")
        _COUNT.check(info.get("primers"), f"meters.{meter}.primers", where)
        Limit("int", 1, 1024, optional=True).check(info.get("steps_per_bar"), f"meters.{meter}.steps_per_bar", where)
    for model, window in _table(doc.get("windows"), where, "windows").items():
        _need(isinstance(window, dict), where, f"windows.{model}", "a table")
        for key in ("primer_leaves_window_after_bars", "past_training_crop_after_bars"):
            for meter, bars in _table(window.get(key), where, f"windows.{model}.{key}").items():
                Limit("float", 0, 10**6).check(bars, f"windows.{model}.{key}.{meter}", where)
    models = doc.get("models", [])
    _need(isinstance(models, list) and all(isinstance(m, str) for m in models), where, "models", "a list of model keys")
    _originality(doc.get("originality"), where)
    _influence(doc.get("influence"), where)


def influence_models(block) -> dict:
    """model -> its influence entry, in the report's order: `influence.<model>`, or `influence.models.<model>`
    in a report written before the entries moved. Entries are as the report gives them: a hand edit may leave
    one null, and readers skip (and name) what is not a table."""
    if not isinstance(block, dict):
        return {}
    if isinstance(block.get("models"), dict):  # the layout before: influence.models.<model>
        return dict(block["models"])
    return {k: v for k, v in block.items() if k not in INFLUENCE_KEYS}


def _influence(block, where: str) -> None:
    """influence = {method, bars, primers, temperature, <model>: D, human: D, repeats: {<model>: D}} (or the
    layout before, influence.models.<model>); an entry may be null (left out where it would be drawn)."""
    if block is None:
        return
    _need(isinstance(block, dict), where, "influence", "a table")
    if "models" in block:
        _need(isinstance(block["models"], dict), where, "influence.models", "a table of models")
        prefix = "influence.models"
    else:
        prefix = "influence"
    for key, entry in influence_models(block).items():
        _need(entry is None or isinstance(entry, dict), where, f"{prefix}.{key}", "a table (or null)")
    for key in ("human", "repeats"):
        _need(block.get(key) is None or isinstance(block[key], dict), where, f"influence.{key}", "a table (or null)")


def _summary_settings(settings: dict, where: str) -> None:
    """The settings the summary's sentences read (summary_markdown): a report the app accepts also exports."""
    Limit("int", 0, MAX_BARS, optional=True).check(settings.get("primer_bars"), "settings.primer_bars", where)
    Limit("int", 0, 10**9, optional=True).check(settings.get("samples"), "settings.samples", where)
    for key in ("primers_cap", "eligible_primers"):
        Limit("int", 0, 10**9, optional=True).check(settings.get(key), f"settings.{key}", where)
    Limit("float", 0, 100, optional=True).check(settings.get("per_bar_temperature"), "settings.per_bar_temperature",
                                                where)
    temperatures = settings.get("temperatures")
    if temperatures is not None:
        _need(isinstance(temperatures, list), where, "settings.temperatures", "a list of temperatures")
        for i, t in enumerate(temperatures):
            Limit("float", 0, 100).check(t, f"settings.temperatures.{i}", where)
    _need(settings.get("floor") is None or isinstance(settings["floor"], str), where, "settings.floor", "a name")


def report_number(value) -> float | None:
    """A number as read from a report, or None for anything else (True, a string, a table): the summary's
    renderers use it where the strict reader does not look, so that a hand-edited report still renders."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _need(ok: bool, where: str, key: str, what: str) -> None:
    if not ok:
        raise UserError(f"{where}: {key} must be {what}")


def _table(value, where: str, key: str) -> dict:
    """An optional table (absent in older reports): {} when missing."""
    if value is None:
        return {}
    _need(isinstance(value, dict), where, key, "a table")
    return value


def _finite_everywhere(value, where: str, key: str) -> None:
    """Numbers are finite (NaN is written as null): 1e400 in a file reads as infinity. A quick scan first;
    only a report that fails it is walked again to name the key (a report holds ~10^6 numbers)."""
    if not _all_finite(value, 0):
        _name_the_key(value, where, key, 0)


def _all_finite(value, depth: int) -> bool:
    if depth >= 64:
        return False
    items = value.values() if type(value) is dict else value if type(value) is list else None
    if items is None:
        return _finite_leaf(value)
    for v in items:
        kind = type(v)
        if kind is float:
            if not math.isfinite(v):
                return False
        elif kind is dict or kind is list:
            if not _all_finite(v, depth + 1):
                return False
        elif kind is not int and kind is not str and v is not None and not _finite_leaf(v):
            return False
    return True


def _finite_leaf(value) -> bool:
    if isinstance(value, (dict, list)):  # a subclass: the slow walk judges it
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _name_the_key(value, where: str, key: str, depth: int) -> None:
    _need(depth < 64, where, key, "nested less deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            _name_the_key(v, where, f"{key}.{k}" if depth else str(k), depth + 1)
    elif isinstance(value, list):
        for v in value:
            _name_the_key(v, where, key, depth + 1)
    elif isinstance(value, float):
        _need(math.isfinite(value), where, key, "finite numbers")


def _number_or_none(value) -> bool:
    kind = type(value)
    if kind is float or kind is int or value is None:  # the common cases, without the ABC check
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _series(series, where: str, key: str) -> None:
    """{mean, lo, hi, n}: lists of one value per bar, the same length (lo/hi/n may be missing)."""
    _need(isinstance(series, dict) and isinstance(series.get("mean"), list), where, key, "a series with a mean per bar")
    bars = len(series["mean"])
    _need(bars <= MAX_BARS, where, key, f"at most {MAX_BARS} bars long")
    for part in ("mean", "lo", "hi", "n"):
        values = series.get(part)
        if values is None and part != "mean":
            continue
        _need(isinstance(values, list) and len(values) == bars, where, f"{key}.{part}", f"a list of {bars} values")
        _need(all(_number_or_none(v) for v in values), where, f"{key}.{part}", "numbers (or null)")


def _metric_table(table, where: str, key: str) -> None:
    """metric -> source -> series."""
    for metric, sources in _table(table, where, key).items():
        for source, series in _table(sources, where, f"{key}.{metric}").items():
            _series(series, where, f"{key}.{metric}.{source}")


def _stats(value, where: str, key: str) -> None:
    _need(isinstance(value, dict) and all(_number_or_none(value.get(k)) for k in ("mean", "lo", "hi", "n")),
          where, key, "a figure {mean, lo, hi, n}")


def _rates(rates, where: str, key: str) -> None:
    for source, value in _table(rates, where, key).items():
        _stats(value, where, f"{key}.{source}")


def _summary(rows, where: str, key: str) -> None:
    _need(isinstance(rows, list) and all(isinstance(r, dict) and isinstance(r.get("source"), str) for r in rows),
          where, key, "a list of rows, each naming its source")


_SHARE = Limit("float", 0, 1, optional=True)
_BARS = Limit("float", 0, MAX_BARS, optional=True)
_WHOLE_BARS = Limit("int", 0, MAX_BARS)


def _run_histogram(value, where: str, key: str) -> None:
    """{bars: [...], continuations: [...]}, two lists of the same length; absent in reports before it."""
    if value is None:
        return
    _need(isinstance(value, dict) and isinstance(value.get("bars"), list)
          and isinstance(value.get("continuations"), list)
          and len(value["bars"]) == len(value["continuations"]), where, key,
          "a table of bars and continuations, two lists of the same length")
    for i, (bars, count) in enumerate(zip(value["bars"], value["continuations"])):
        _WHOLE_BARS.check(bars, f"{key}.bars[{i}]", where)
        _COUNT.check(count, f"{key}.continuations[{i}]", where)


def _originality(section, where: str) -> None:
    """originality.<model|human>.<T>.{copy_rate: {mean, lo, hi, n}, longest_run_bars: {mean, lo, hi, n, median,
    max, n_continuations}, tunes: [...]} (engine/evaluation/originality.py); absent in older reports."""
    for source, by_t in _table(section, where, "originality").items():
        for t, entry in _table(by_t, where, f"originality.{source}").items():
            key = f"originality.{source}.{t}"
            _need(isinstance(entry, dict), where, key, "a table")
            _stats(entry.get("copy_rate"), where, f"{key}.copy_rate")
            for part in ("mean", "lo", "hi"):
                _SHARE.check(entry["copy_rate"][part], f"{key}.copy_rate.{part}", where)
            _COUNT.check(entry["copy_rate"]["n"], f"{key}.copy_rate.n", where)
            run = entry.get("longest_run_bars")
            _stats(run, where, f"{key}.longest_run_bars")
            for part in ("mean", "lo", "hi", "median", "max"):
                _BARS.check(run.get(part), f"{key}.longest_run_bars.{part}", where)
            for part in ("n", "n_continuations"):
                _COUNT.check(run.get(part, 0), f"{key}.longest_run_bars.{part}", where)
            _run_histogram(run.get("histogram"), where, f"{key}.longest_run_bars.histogram")
            tunes = entry.get("tunes", [])
            _need(isinstance(tunes, list) and all(isinstance(x, dict) and isinstance(x.get("tune_id"), str)
                                                  for x in tunes), where, f"{key}.tunes", "a list of tunes, each with its tune_id")
