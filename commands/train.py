"""`python main.py train`: train several models side by side on a corpus (docs/design.md section 2).

Progress goes to stderr as a bar; at the end a table of each model's validation bits per token.
Under torchrun the same command trains data-parallel (engine/distributed.py, docs/distributed.md): rank 0
alone prints and writes; --batch-size is per rank.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path

from engine.errors import UserError
from engine.models import DEFAULT_PRESET, MODEL_KEYS, PRESETS

from .common import ProgressBar, emit_json
from .common import say as _say


def _silent(message: str) -> None:
    pass


def add_arguments(parser) -> None:
    parser.add_argument("--models", default=",".join(MODEL_KEYS),
                        help=f"comma-separated model keys (default: all five: {','.join(MODEL_KEYS)})")
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help=f"model sizes (default {DEFAULT_PRESET}; tiny is for tests)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default 3000)")
    parser.add_argument("--source", nargs="+", default=None, metavar="PATH",
                        help="MIDI files or folders (default: the bundled corpus)")
    parser.add_argument("--seed", type=int, default=None, help="seed for weights and batches (default 0)")
    parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"], help="default auto")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (one folder per model)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR from its last checkpoints, with its settings")
    parser.add_argument("--batch-size", type=int, default=None, help="crops per batch (default 32)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-3)")
    parser.add_argument("--window", type=int, default=None, help="crop length in steps (default: the preset's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--eval-every", type=int, default=None, help="validate every N steps (default 100)")
    parser.add_argument("--save-every", type=int, default=None, help="checkpoint every N steps (default 500)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that parse a corpus on its first load (default: one per CPU core)")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")


# CLI flag -> TrainConfig field; a flag left out keeps the default (or, with --resume, the run's value).
_FLAGS = {"preset": "preset", "steps": "steps", "seed": "seed", "device": "device", "batch_size": "batch_size",
          "lr": "lr", "window": "window", "threads": "threads", "eval_every": "eval_every",
          "save_every": "save_every"}


def run(args) -> int:
    from engine import checkpoint as ckpt
    from engine import distributed
    from engine.training import TrainConfig

    out = Path(args.out)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    config = TrainConfig()
    if args.resume:
        present = ckpt.list_run_models(out)
        if not present:
            raise UserError(f"{out}: no checkpoints to resume from")
        saved = json.loads((out / present[0] / ckpt.CONFIG_FILE).read_text())["training"]
        config = TrainConfig.from_dict(saved)
        if args.models == ",".join(MODEL_KEYS):  # not given: resume the models the run holds
            models = present
    for flag, name in _FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(config, name, value)
    bad = [m for m in models if m not in MODEL_KEYS]
    if bad or not models:
        raise UserError(f"unknown model(s) {', '.join(bad) or '(none)'}: choose from {', '.join(MODEL_KEYS)}")
    # Under torchrun: the process group lives for the rest of the command (a no-op otherwise).
    with distributed.session(config.device) as dp:
        return _train(args, config, models, out, dp)


def _train(args, config, models, out: Path, dp) -> int:
    from engine import distributed
    from engine.corpus import load_corpus
    from engine.training import TrainJob, final_table, train

    main = dp is None or dp.is_main
    say = _say if main else _silent  # data-parallel: other ranks stay silent
    bar = ProgressBar(0, "corpus")
    workers = args.workers or os.cpu_count() or 1
    with distributed.local_main_first():  # one parse per machine; the other ranks then read the cache
        corpus = load_corpus(args.source, workers=workers,
                             progress=lambda done, total, *_: main and _corpus_progress(bar, done, total))
    if main:
        bar.close()
    train_tokens, valid_tokens = corpus.tokens("train"), corpus.tokens("valid")
    if not valid_tokens:
        # A small folder may hash no tune into the validation split: hold out every 10th training tune.
        valid_tokens, train_tokens = train_tokens[::10], [t for i, t in enumerate(train_tokens) if i % 10]
        say(f"no validation tunes in the corpus split; holding out {len(valid_tokens)} training tune(s)")
    if not train_tokens:
        raise UserError("the corpus has no training tunes (it needs at least two melodies)")
    say(f"corpus: {len(train_tokens)} training and {len(valid_tokens)} validation tunes, "
        f"{sum(len(t) for t in train_tokens)} training tokens")
    # Keep only what training needs: the corpus's melodies, notes and packed tokens are freed, and
    # the tokens live on as one byte each (the sampler packs its own copy the same way).
    token_config, fingerprint = corpus.token_config, corpus.fingerprint
    train_tokens = _compact(train_tokens, token_config.vocab_size)
    valid_tokens = _compact(valid_tokens, token_config.vocab_size)
    del corpus
    say(f"training {', '.join(models)} ({config.preset}) for {config.steps} steps -> {out}")
    if dp is not None:
        say(f"data-parallel: {dp.world} ranks ({dp.backend}), {config.batch_size} crops per rank, "
            f"global batch {config.batch_size * dp.world}")

    job = TrainJob(models, train_tokens, valid_tokens, token_config, fingerprint, out, config,
                   resume=args.resume)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    progress = ProgressBar(config.steps * len(models), "train")
    done = {m: 0 for m in models}
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
        emit_json({"run": str(out), "steps": config.steps, "preset": config.preset,
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

    Under torchrun a Ctrl-C reaches every rank twice (from the terminal, then torchrun forwards SIGTERM
    and waits 30 s before killing): there, SIGINT and SIGTERM both only ask to stop; the ranks agree on
    it within a few steps (engine.training.STOP_CHECK_EVERY) and rank 0 checkpoints."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            if distributed:
                return
            raise KeyboardInterrupt
        stop.set()
        if distributed and os.environ.get("RANK", "0") != "0":
            return  # rank 0 tells; a message per rank would be noise
        _say("\nstopping after this step and saving checkpoints (Ctrl-C again to abort) ...")

    signals = [signal.SIGINT] + ([signal.SIGTERM] if distributed else [])
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _compact(arrays: list, vocab_size: int) -> list:
    """The same token arrays as views into one flat array of the smallest type the vocabulary fits."""
    import numpy as np

    from engine.batches import token_dtype

    flat = np.empty(sum(len(a) for a in arrays), dtype=token_dtype(vocab_size))
    views, start = [], 0
    for a in arrays:
        flat[start : start + len(a)] = a
        views.append(flat[start : start + len(a)])
        start += len(a)
    return views


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _corpus_progress(bar: ProgressBar, done: int, total: int) -> None:
    bar.total = max(1, total)
    bar.update(done)
