"""Memory reports the app keeps: one file per evaluation in the user's data folder, never in a run folder.

The bundled models ship their report (pretrained/memory-report.json), which the app only reads. An
evaluation of any run, the bundled one included, is written to
`<data folder>/reports/<run name>-<hash of its path>/report-<UTC time>.json`; the Memory tab shows the
newest report made on the models now loaded (same run folder, same saved_at of every model), else the
report saved beside the run (the shipped one, or one an older version of the app wrote there):
`listed_reports` gives all of them, newest first with the one beside the run last, each with its date and
primer count: the tab's list of reports keeps the shipped one a click away after any quick Evaluate.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine.evaluation.report_file import read_report

from .. import settings

BESIDE_RUN = "memory-report.json"  # the shipped report's name in pretrained/ (read, never written)


def run_reports_dir(run_dir) -> Path:
    resolved = Path(run_dir).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", resolved.name) or "run"
    return settings.data_dir() / "reports" / f"{name}-{digest}"


def save_report(report: dict, run_dir) -> Path:
    """Write `report` for `run_dir` into the data folder (atomically); returns its path."""
    from engine.core.atomic import atomic_write

    folder = run_reports_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"report-{stamp}.json"
    atomic_write(path, json.dumps(report).encode("utf-8"))
    return path


def made_on(report: dict, models: dict) -> bool:
    """Whether the report was made on these loaded models (key -> LoadedModel): every model it covers is
    loaded and was saved at the same time (a retrained run has new saved_at stamps)."""
    entries = (report.get("run") or {}).get("models") or {}
    for key in report.get("models", []):
        loaded = models.get(key)
        if loaded is None:
            return False
        stamp = (entries.get(key) or {}).get("saved_at")
        if stamp is not None and stamp != loaded.config.get("saved_at"):
            return False
    return True


@dataclass(frozen=True)
class Listed:
    path: Path
    when: str  # "evaluated 2026-11-24 05:00 UTC" / "shipped with the models (saved 2026-11-30)"
    primers: int
    beside_run: bool  # the report beside the run folder (the shipped one for the bundled models)

    def text(self) -> str:
        return f"{self.when}, {self.primers} primers"


def listed_reports(run_dir, models: dict, shipped: bool) -> list[tuple[Listed, dict]]:
    """Every report made on these loaded models: the saved evaluations newest first, then the one beside
    the run (`shipped`: the bundled models' own). Damaged files are passed over."""
    folder = run_reports_dir(run_dir)
    saved = sorted(folder.glob("report-*.json"), reverse=True) if folder.is_dir() else []
    out = []
    for path in [*saved, Path(run_dir) / BESIDE_RUN]:
        if not path.is_file():
            continue
        try:
            report = read_report(path)
        except Exception:  # a damaged file is passed over
            continue
        if not made_on(report, models):
            continue
        beside = path.name == BESIDE_RUN
        if beside:
            when = ("shipped with the models" if shipped else "saved beside the run") + _trained(report)
        else:
            when = f"evaluated {stamp_text(path)}"
        out.append((Listed(path, when, len(report.get("primers", [])), beside), report))
    return out


def _trained(report: dict) -> str:
    """" (trained 2026-12-06)" from the run's models' save stamps; with seed runs beside it, which seed the date
    is (the report's figures rest on all of them, trained on other days)."""
    models = ((report.get("run") or {}).get("models") or {}).values()
    newest = max((m.get("saved_at", "") for m in models if m.get("saved_at")), default="")
    if not newest:
        return ""
    seeds = report.get("seeds") or {}
    own = {str((m.get("training") or {}).get("seed")) for m in models}
    if len(seeds) > 1 and len(own) == 1:
        return f" (seed {own.pop()} trained {newest[:10]}; {len(seeds)} seeds)"  # short: the primers follow
    return f" (trained {newest[:10]})"


def stamp_text(path: Path) -> str:
    """"2026-11-24 05:00 UTC" from a saved report's name (report-20261124T050054123456Z.json)."""
    stamp = path.stem.removeprefix("report-")
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp
