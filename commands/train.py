"""`python main.py train`: train several models side by side on a corpus (docs/design.md section 2).

Progress goes to stderr as a bar; at the end a table of each model's validation bits per token.
Under torchrun the same command trains data-parallel (engine/training/distributed.py, docs/distributed.md): rank 0
alone prints and writes; --batch-size is per rank.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

from engine.core.errors import UserError
from engine.models import MODEL_KEYS, default_selection

from .common import ProgressBar, emit_json
from .common import say as _say


def _silent(message: str) -> None:
    pass


def add_arguments(parser) -> None:
    from engine.training.train_config import TRAIN_SETTINGS

    parser.add_argument("--models", default=None,
                        help=f"comma-separated model keys (default: the seed's five: {','.join(default_selection())}; "
                             f"all: {','.join(MODEL_KEYS)}; with --resume: the run's unfinished ones)")
    parser.add_argument("--source", nargs="+", default=None, metavar="PATH",
                        help="MIDI files or folders (default: the bundled corpus; with --resume: the run's own)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (one folder per model)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR: every unfinished model, with the run's settings; "
                             "finished and bundled models are never touched")
    # The training settings, from their one definition (engine/training/train_config.TRAIN_SETTINGS); left out,
    # a setting keeps its default (or, with --resume, the run's value).
    TRAIN_SETTINGS.add_arguments(parser)
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that parse a corpus on its first load (default: one per CPU core)")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")


def run(args) -> int:
    from engine.core.validation import Limit
    from engine.training import distributed
    from engine.training.run_plan import plan_new_run, plan_resume
    from engine.training.train_config import TRAIN_SETTINGS, TrainConfig

    if not args.out.strip():
        raise UserError("--out must name a folder for the run")
    out = Path(args.out)
    if args.workers is not None:
        Limit("int", 1, 256).check(args.workers, "--workers")
    flags = {s.name: getattr(args, s.name) for s in TRAIN_SETTINGS}
    names = TRAIN_SETTINGS.flags()
    # The run is locked while it is planned, before the corpus loads, so a second writer is refused at once.
    # Under torchrun every rank plans, and rank 0 alone (the one that writes) holds the lock.
    torchrun = distributed.launched_by_torchrun()
    lock = not torchrun or os.environ.get("RANK") == "0"
    if args.resume:
        ranks = int(os.environ.get("WORLD_SIZE", "1")) if torchrun else 1
        plan = plan_resume(out, overrides=flags, models=args.models.split(",") if args.models else None,
                           sources=args.source, names=names, lock=lock, ranks=ranks)
    else:
        config = TrainConfig(**{k: v for k, v in flags.items() if v is not None})
        plan = plan_new_run(out, args.models.split(",") if args.models else default_selection(), config,
                            sources=args.source, names=names, lock=lock)
    for note in plan.notes:
        _say(note)
    if plan.nothing_to_do:
        _say(f"nothing to resume in {out}: no model is left unfinished; nothing was changed")
        if args.json:
            emit_json({"run": str(out), "trained": [], "notes": plan.notes})
        return 0
    # Under torchrun: the process group lives for the rest of the command (a no-op otherwise).
    with plan, distributed.session(plan.config.device) as dp:
        return _train(args, plan, dp)


def _train(args, plan, dp) -> int:
    from engine.data.corpus import load_corpus
    from engine.training import distributed
    from engine.training.loop import final_table
    from engine.training.train import train

    main = dp is None or dp.is_main
    say = _say if main else _silent  # data-parallel: other ranks stay silent
    config, models, out = plan.config, plan.models, plan.out_dir
    bar = ProgressBar(0, "corpus")
    workers = args.workers or os.cpu_count() or 1
    with distributed.local_main_first():  # one parse per machine; the other ranks then read the cache
        corpus = load_corpus(plan.sources, workers=workers,
                             progress=lambda done, total, *_: main and _corpus_progress(bar, done, total))
    if main:
        bar.close()
    job = plan.job(corpus)
    del corpus  # the job holds compact copies of the tokens it needs
    for note in job.notes[len(plan.notes):]:
        say(note)
    say(f"corpus: {len(job.train_tokens)} training and {len(job.valid_tokens)} validation tunes, "
        f"{sum(len(t) for t in job.train_tokens)} training tokens")
    verb = "resuming" if plan.resume else "training"
    say(f"{verb} {', '.join(models)} ({config.preset}, {config.sequences}) for {config.steps} steps -> {out}")
    if dp is not None:
        say(f"data-parallel: {dp.world} ranks ({dp.backend}), batch {config.batch_size} per rank, "
            f"global batch {config.batch_size * dp.world}")

    stop = threading.Event()
    progress = ProgressBar(config.steps * len(models), "train")
    done = {m: plan.states[m].step if m in plan.states else 0 for m in models}
    valid = {}
    summary, finished = {}, "done"
    with _ctrl_c_stops(stop, distributed=dp is not None):
        for event in train(job, stop):
            if not main:
                if event.kind in ("done", "stopped"):
                    finished = event.kind
                continue
            if event.kind == "step":
                done[event.model] = event.step
                valid_text = " ".join(f"{k}={v:.3f}" for k, v in valid.items())
                eta = f" eta {event.eta_s:.0f}s" if event.eta_s is not None else ""
                progress.update(sum(done.values()), f"valid bits/token {valid_text}{eta}".strip())
            elif event.kind == "eval":
                valid[event.model] = event.valid_bpt
            elif event.kind in ("done", "stopped"):
                summary, finished = event.summary, event.kind
    if not main:
        return 130 if finished == "stopped" else 0
    progress.close()

    rows = final_table(summary)
    if args.json:
        emit_json({"run": str(out), "steps": config.steps, "preset": config.preset, "trained": list(models),
                   "models": {k: {"params": p, "train_bpt": t, "valid_bpt": v} for k, p, t, v in rows}})
    say(f"{'model':<12} {'params':>9} {'train bits/token':>17} {'valid bits/token':>17}")
    for key, params, train_bpt, valid_bpt in rows:
        say(f"{key:<12} {params:>9} {_fmt(train_bpt):>17} {_fmt(valid_bpt):>17}")
    if finished == "stopped":
        say(f"stopped; every model is checkpointed in {out}: continue with --resume --out {out}")
        return 130
    return 0


@contextlib.contextmanager
def _ctrl_c_stops(stop: threading.Event, distributed: bool = False):
    """The first Ctrl-C stops after the current step and checkpoints; a second one aborts at once.
    `kill` (SIGTERM) and a closed terminal (SIGHUP) stop the same way, so they lose nothing either.

    Under torchrun a Ctrl-C reaches every rank twice (from the terminal, then torchrun forwards SIGTERM
    and waits 30 s before killing): there, SIGINT and SIGTERM both only ask to stop; the ranks agree on
    it within a few steps (engine.training.loop.STOP_CHECK_EVERY) and rank 0 checkpoints."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            if distributed or signum != signal.SIGINT:
                return
            raise KeyboardInterrupt
        stop.set()
        if distributed and os.environ.get("RANK", "0") != "0":
            return  # rank 0 tells; a message per rank would be noise
        _say("\nstopping after this step and saving checkpoints (Ctrl-C again to abort) ...")

    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _corpus_progress(bar: ProgressBar, done: int, total: int) -> None:
    bar.total = max(1, total)
    bar.update(done)
