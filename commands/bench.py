"""`python main.py bench`: the performance figures of docs/design.md section 6, measured in one run.

Each section lives beside the code it measures and returns a dict merged into the report. Sections
are listed here in the order they run; a section module has measure(quick: bool) -> dict.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from engine.core.errors import UserError

from .common import emit_json, say

SECTIONS = [
    "engine.bench.corpus_bench",
    "engine.bench.originality_bench",
    "engine.bench.train_bench",
    "gui.bench",
    "engine.bench.generate_bench",
    "engine.bench.classroom_bench",
]
# A full run (all sections, not --quick) is kept here: the README quotes it.
BENCH_FILE = "docs/bench.json"


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller workloads; ends within a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    names = ", ".join(_short(m) for m in SECTIONS)
    parser.add_argument("--only", default="", help=f"comma-separated section names to run (for debugging): {names}")


def run(args) -> int:
    from engine.core.device import machine_description

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sorted(only - {_short(m) for m in SECTIONS}) or ([repr(args.only)] if args.only and not only else [])
    if unknown:  # it ran nothing and said nothing (or, given no name, everything)
        raise UserError(f"--only: no section {', '.join(unknown)}: choose from {', '.join(map(_short, SECTIONS))}")
    report: dict = {"machine": machine_description()}  # every figure below was measured on this
    for module_name in SECTIONS:
        short = _short(module_name)
        if only and short not in only:
            continue
        say(f"bench: {short} ...")
        part = importlib.import_module(module_name).measure(quick=args.quick, report=report)
        _merge(report, part)
    path = Path(__file__).resolve().parents[1] / BENCH_FILE
    if not args.quick and not only and path.parent.is_dir():  # a checkout (an installed app has no docs/)
        from engine.core.atomic import atomic_write

        atomic_write(path, (json.dumps(report, indent=2, default=str) + "\n").encode())
        say(f"bench: wrote {path}")
    if args.json:
        emit_json(report)
    else:
        _print_table(report)
    return 0


def _short(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1]


def _merge(into: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _print_table(report: dict, indent: str = "") -> None:
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_table(value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}{key}: {value:.4g}")
        else:
            print(f"{indent}{key}: {value}")
