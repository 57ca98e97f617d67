"""Where a memory report is written: checked before the evaluation computes, written whole or not at all.

An evaluation takes minutes to hours; a report folder that cannot take the report (a file in its place, a
read-only mount, a disk without room for it) must fail before that work, not after it (issue 26, item 6).
The room a report needs is estimated from the settings: its size is dominated by the per-bar series, one
per model, temperature, bar and meter (the shipped report: 7 models x 4 temperatures x 72 bars, 23 MB).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.core.atomic import nearest_existing
from engine.core.errors import UserError
from engine.core.memory_budget import size_text

# Bytes per (model, temperature, bar) of the report's per-bar series across report.json and csv/ (the
# shipped report has 23 MB for 2,016 of them: 11.4 kB each), and what the plots and the rest take.
REPORT_BYTES_PER_BAR = 12_000
REPORT_BASE_BYTES = 4 << 20


def report_bytes(models: int, temperatures: int, bars: int) -> int:
    """The room a report of `models` models, `temperatures` temperatures and `bars` bars (primer included)
    takes on disk, rounded up."""
    return REPORT_BASE_BYTES + REPORT_BYTES_PER_BAR * max(1, models) * max(1, temperatures) * max(1, bars)


def check_report_folder(out, needs_bytes: int = 0) -> Path:
    """The report folder can be written and has room for `needs_bytes`: not a file, inside a folder this
    process can write (tried with a temporary file: os.access cannot tell a read-only mount from a writable
    one for root), on a disk with that much free. UserError naming the folder otherwise."""
    if not str(out).strip():  # Path(" ") would be a folder named by a space in the current folder
        raise UserError("no folder was given for the report")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot write the report to {out}: it is a file, not a folder")
    existing = nearest_existing(out)
    if not existing.is_dir():
        raise UserError(f"cannot write the report to {out}: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {existing} is not writable "
                        f"({exc.strerror or exc})") from None
    if free < needs_bytes:
        raise UserError(f"cannot write the report to {out}: the report needs about {size_text(needs_bytes)} "
                        f"and its disk has {size_text(free)} free; free some room or choose another folder")
    return out


def write_whole(report: dict, out: Path, write_report: Callable[[dict, Path], list[Path]]) -> list[Path]:
    """Write the report into a temporary folder beside `out`, then move its files into `out`: a full disk or
    any failure while writing leaves `out` as it was (no empty report, no half of the CSVs)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        written = write_report(report, staging)
        moved = []
        for path in written:
            target = out / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
        return moved
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def report_bytes_of(report: dict) -> int:
    """report_bytes for a report already computed (the app's Export); a part an older report lacks counts
    as the evaluation's defaults."""
    settings = report.get("settings") if isinstance(report.get("settings"), dict) else {}
    temperatures = settings.get("temperatures")
    bars = settings.get("primer_bars", 8), settings.get("bars", 64)
    return report_bytes(len(report.get("models") or [None] * 7),
                        len(temperatures) if isinstance(temperatures, list) else 4,
                        sum(b for b in bars if isinstance(b, int)))
