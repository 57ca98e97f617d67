"""`python main.py evaluate`: run the memory protocol on a run's models and write the report folder."""

from __future__ import annotations

import time

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
    from engine.core.errors import UserError
    from engine.evaluation.evaluate import EvalSettings, evaluate
    from engine.evaluation.report import summary_markdown, write_report
    from engine.evaluation.report_folder import check_report_folder, report_bytes, write_whole
    from engine.evaluation.settings import EVAL_SETTINGS
    from engine.memory.probe import ProbeSettings
    from engine.training.checkpoint import list_run_models, resolve_run_dir

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
    if not str(args.out).strip():  # said in the CLI's words; check_report_folder says it in the app's
        raise UserError("--out must name a folder for the report")
    run_dir = resolve_run_dir(args.run)
    # A report folder that cannot be written, or a disk without room for the report, fails before the work
    needs = report_bytes(len(models or list_run_models(run_dir)), len(settings.temperatures),
                         settings.primer_bars + settings.bars)
    out = check_report_folder(args.out, needs)
    report = evaluate(run_dir, models, settings, progress=progress, sources=args.source, run_name=args.run,
                      seed_runs=args.seeds, names=EVAL_SETTINGS.flags())
    paths = write_whole(report, out, write_report)
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
