"""`python main.py evaluate`: run the memory protocol on a run's models and write the report folder."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from .common import emit_json, say


def add_arguments(parser) -> None:
    from engine.core.memory_budget import HELP
    from engine.evaluation.memory_check import ASSUMED_PRIMERS
    from engine.evaluation.settings import EVAL_SETTINGS
    from engine.memory.probe import PROBE_SETTINGS

    parser.epilog = (f"{HELP} Without --primers the evaluation's estimate assumes at most {ASSUMED_PRIMERS} "
                     "primers (the bundled corpus has 138 long enough).")
    parser.add_argument("--run", required=True, help="run directory made by `main.py train`; 'pretrained' means the bundled models")
    parser.add_argument("--models", default="", help="comma-separated model keys (default: every model in the run)")
    # The settings, from their one definition (engine/evaluation/settings.EVAL_SETTINGS, engine/memory/probe.PROBE_SETTINGS).
    EVAL_SETTINGS.add_arguments(parser, defaults=True)
    parser.add_argument("--no-recall", action="store_true", help="skip recall by distance and the length check "
                        "in the generation regime")
    parser.add_argument("--seeds", nargs="+", default=[], metavar="RUN_DIR",
                        help="run folders of the same architectures trained with other seeds: recall by "
                             "distance is measured on each, per seed and as the mean over seeds")
    parser.add_argument("--no-probe", action="store_true", help="skip the synthetic theme-recall probe")
    PROBE_SETTINGS.add_arguments(parser, defaults=True)
    parser.add_argument("--source", action="extend", nargs="+", default=None,
                        help="MIDI file or folder of the corpus the run was trained on (default: the bundled corpus)")
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--json", action="store_true", help="print report.json on stdout")


def run(args) -> int:
    from engine.evaluation.evaluate import EvalSettings, evaluate
    from engine.evaluation.report import summary_markdown, write_report
    from engine.evaluation.settings import EVAL_SETTINGS
    from engine.memory.probe import ProbeSettings
    from engine.training.checkpoint import resolve_run_dir

    settings = EvalSettings(
        primers=args.primers,
        primer_bars=args.primer_bars,
        bars=args.bars,
        samples=args.samples,
        temperatures=args.temperatures,
        min_n=args.min_n,
        seed=args.seed,
        probe=None if args.no_probe else ProbeSettings(seed=args.seed, train_steps=args.train_steps, gaps=args.gaps),
        device=args.device,
        threads=args.threads,
        bootstrap=args.bootstrap,
        influence_primers=args.influence_primers,
        recall=not args.no_recall,
        processes=args.processes,
    )
    models = [m.strip() for m in args.models.split(",") if m.strip()] or None
    started = time.monotonic()

    def progress(event: dict) -> None:
        say(f"[{time.monotonic() - started:6.1f}s] {event['message']}")

    settings.validate()  # bad numbers fail before anything slow is loaded
    _check_enough_primers(settings)
    out = _check_out(args.out)  # and a report folder that cannot be written fails before the work, too
    run_dir = resolve_run_dir(args.run)
    report = evaluate(run_dir, models, settings, progress=progress, sources=args.source, run_name=args.run,
                      seed_runs=args.seeds, names=EVAL_SETTINGS.flags())
    paths = _write_whole(report, out, write_report)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report["timings"].items())
    say(f"timings: {timings}; total {time.monotonic() - started:.1f}s")
    say(f"wrote {len(paths)} files to {args.out}")
    if args.json:
        emit_json({k: v for k, v in report.items() if k != "timings"})
    else:
        print(summary_markdown(report), end="")
    return 0


def _check_enough_primers(settings) -> None:
    """Fewer primers than a mean needs would give a report with every mean left out: refused before the work."""
    from engine.core.errors import UserError

    if settings.primers is not None and settings.primers < settings.min_n:
        raise UserError(f"--primers {settings.primers} is fewer than --min-n {settings.min_n}: every mean of the "
                        f"report would be left out; ask for at least {settings.min_n} primers, or lower --min-n")


def _check_out(out) -> Path:
    """The report folder can be written: not a file, and inside a folder this process can write (tried with
    a temporary file, as os.access cannot tell a read-only mount from a writable one for root)."""
    from engine.core.errors import UserError

    if not str(out).strip():  # Path(" ") is a folder named by a space in the current folder
        raise UserError("--out must name a folder for the report")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot write the report to {out}: it is a file, not a folder")
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write the report to {out}: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {existing} is not writable "
                        f"({exc.strerror or exc})") from None
    return out


def _write_whole(report: dict, out: Path, write_report) -> list[Path]:
    """Write the report into a temporary folder beside `out`, then move its files into `out`: a full disk or
    any failure while writing leaves `out` as it was (no empty report, no half of the CSVs)."""
    from engine.core.errors import UserError

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
