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

from engine.core import console
from engine.core.errors import UserError
from engine.models import MODEL_KEYS, default_selection

from .common import ProgressBar, emit_json
from .common import say as _say
from .flags import add_flags, check_flags


def _silent(message: str) -> None:
    pass


def add_arguments(parser) -> None:
    from engine.core.memory_budget import HELP
    from engine.training.train_config import TRAIN_SETTINGS

    parser.epilog = HELP
    parser.add_argument("--models", default=None,
                        help=f"comma-separated model keys (default: the seed's five: {','.join(default_selection())}; "
                             f"all: {','.join(MODEL_KEYS)}; with --resume: the run's unfinished ones)")
    parser.add_argument("--source", nargs="+", default=None, metavar="PATH",
                        help="MIDI files or folders (default: the bundled corpus; with --resume: the run's own)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (one folder per model)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR: every unfinished model, with the run's settings; "
                             "finished and bundled models are never touched")
    parser.add_argument("--recipe", choices=("classroom", "converged"), default="classroom",
                        help="the settings a new run starts from (flags given override them): classroom = the Train "
                             "tab's defaults, 1,500 steps; converged = up to 16,000 steps with early stopping on the "
                             "validation split, the recipe of the memory measures (docs/training.md)")
    # The training settings, from their one definition (engine/training/train_config.TRAIN_SETTINGS); left out,
    # a setting keeps its default (or, with --resume, the run's value).
    TRAIN_SETTINGS.add_arguments(parser)
    add_flags(parser, "train_workers")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")


def run(args) -> int:
    from engine.training import distributed

    if not args.out.strip():
        raise UserError("--out must name a folder for the run")
    check_flags(args, "train_workers")
    plan = _plan(args, Path(args.out))
    for note in plan.notes:
        _say(note)
    if plan.nothing_to_do:
        plan.release()  # held only while lost files were written again
        changed = f"; {', '.join(plan.rewritten)} repaired" if plan.rewritten else "; nothing was changed"
        _say(f"nothing to resume in {plan.out_dir}: no model is left unfinished{changed}")
        if args.json:
            emit_json({"run": str(plan.out_dir), "trained": [], "notes": plan.notes})
        return 0
    # Under torchrun: the process group lives for the rest of the command (a no-op otherwise).
    with plan, distributed.session(plan.config.device) as dp:
        return _train(args, plan, dp)


def _plan(args, out: Path):
    """The checked, locked run (engine/training/run_plan.py): new, or the resume of `out`.

    The run is locked while it is planned, before the corpus loads, so a second writer is refused at once.
    Under torchrun every rank plans, and rank 0 alone (the one that writes) holds the lock."""
    from engine.training import distributed
    from engine.training.run_plan import plan_new_run, plan_resume
    from engine.training.train_config import TRAIN_SETTINGS

    flags = {s.name: getattr(args, s.name) for s in TRAIN_SETTINGS}
    names = TRAIN_SETTINGS.flags()
    torchrun = distributed.launched_by_torchrun()
    lock = not torchrun or os.environ.get("RANK") == "0"
    if args.resume:
        ranks = int(os.environ.get("WORLD_SIZE", "1")) if torchrun else 1
        return plan_resume(out, overrides=flags, models=args.models.split(",") if args.models else None,
                           sources=args.source, names=names, lock=lock, ranks=ranks)
    from dataclasses import replace

    from engine.training.train_config import classroom_config, converged_config

    base = converged_config() if args.recipe == "converged" else classroom_config()
    config = replace(base, **{k: v for k, v in flags.items() if v is not None})
    return plan_new_run(out, args.models.split(",") if args.models else default_selection(), config,
                        sources=args.source, names=names, lock=lock)


def _train(args, plan, dp) -> int:
    from engine.training.train import train

    main = dp is None or dp.is_main
    say = _say if main else _silent  # data-parallel: other ranks stay silent
    job = _job(args, plan, dp, say)
    stop = threading.Event()
    progress = _Progress(plan)
    with _ctrl_c_stops(stop, distributed=dp is not None):
        for event in train(job, stop):
            progress.show(event, main)
    if not main:
        return 130 if progress.finished == "stopped" else 0
    progress.bar.close()
    return _report(args, plan, progress, say)


def _job(args, plan, dp, say):
    """The corpus loaded (one parse per machine) and the job made of it, said in a few lines."""
    from engine.data.corpus import load_corpus
    from engine.training import distributed

    main = dp is None or dp.is_main
    config, models, out = plan.config, plan.models, plan.out_dir
    bar = ProgressBar(0, "corpus")
    workers = args.train_workers or os.cpu_count() or 1
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
    return job


class _Progress:
    """The progress bar over the training events, and how training ended."""

    def __init__(self, plan):
        self.bar = ProgressBar(plan.config.steps * len(plan.models), "train")
        self.done = {m: plan.states[m].step if m in plan.states else 0 for m in plan.models}
        self.valid: dict[str, float] = {}
        self.summary: dict = {}
        self.finished = "done"
        # with early stopping the estimate runs to the step budget, which a model that stops early never reaches
        self.eta_words = "eta to the step budget " if plan.config.patience is not None else "eta "

    def show(self, event, main: bool) -> None:
        if event.kind in ("done", "stopped"):
            self.summary, self.finished = event.summary or {}, event.kind
        elif not main:
            return
        elif event.kind == "step":
            self.done[event.model] = event.step
            valid_text = " ".join(f"{k}={v:.3f}" for k, v in self.valid.items())
            eta = f" {self.eta_words}{event.eta_s:.0f}s" if event.eta_s is not None else ""
            self.bar.update(sum(self.done.values()), f"valid bits/token {valid_text}{eta}".strip())
        elif event.kind == "eval":
            self.valid[event.model] = event.valid_bpt


def _report(args, plan, progress: _Progress, say) -> int:
    """The final table (and --json); 130 when training was stopped before its end."""
    from engine.training.loop import final_table

    config, out = plan.config, plan.out_dir
    rows = final_table(progress.summary)
    if args.json:
        emit_json({"run": str(out), "steps": config.steps, "preset": config.preset, "trained": list(plan.models),
                   "models": {k: {"params": p, "train_bpt": t, "valid_bpt": v} for k, p, t, v in rows}})
    say(f"{'model':<12} {'params':>9} {'train bits/token':>17} {'valid bits/token':>17}")
    for key, params, train_bpt, valid_bpt in rows:
        say(f"{key:<12} {params:>9} {_fmt(train_bpt):>17} {_fmt(valid_bpt):>17}")
    if progress.finished == "stopped":
        say(f"stopped; every model is checkpointed in {out}: continue with --resume --out {out}")
        return 130
    return 0


@contextlib.contextmanager
def _ctrl_c_stops(stop: threading.Event, distributed: bool = False):
    """The first Ctrl-C stops after the current step and checkpoints; a second one aborts at once.
    `kill` (SIGTERM), a closed terminal (SIGHUP) and a reader that went away (`train ... | head`: the
    progress line finds its pipe closed, engine/core/console.py) stop the same way, so they lose nothing
    either.

    Under torchrun a Ctrl-C reaches every rank twice (from the terminal, then torchrun forwards SIGTERM
    and waits 30 s before killing): there, SIGINT and SIGTERM both only ask to stop; the ranks agree on
    it within a few steps (engine.training.loop.STOP_CHECK_EVERY) and rank 0 checkpoints."""
    if threading.current_thread() is not threading.main_thread():
        with console.when_closed(stop.set):
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
        with console.when_closed(stop.set):
            yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _corpus_progress(bar: ProgressBar, done: int, total: int) -> None:
    bar.total = max(1, total)
    bar.update(done)
