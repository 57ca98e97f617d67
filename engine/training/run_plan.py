"""Planning a training run before anything is trained: the one entry point the CLI, the app and the bench
share (docs/design.md section 9: runs are never lost).

    with plan_new_run(out, models, config, sources) as plan:   # or plan_resume(out, overrides)
        corpus = load_corpus(plan.sources)                      # the caller's (the app has one loaded)
        for event in train(plan.job(corpus), stop): ...

Planning is cheap and happens first: the settings are range-checked, the folder is checked (not a file,
each model's folder not a file), the run directory is locked for this process, and a resume decides
which models to continue. Only then does the caller load a corpus and train. So a bad folder or a second
writer is refused at once, not after the first checkpoint interval of training is lost.

A run directory holds `run.json` (RunManifest: its models, settings and sources, written when training
starts) and one folder per model (engine/training/checkpoint.py). A resume:
- continues every model of the run that is not finished, including those killed before their first
  checkpoint (run.json lists them);
- never touches a model that has finished its steps, or one without training state (the bundled models,
  an exported copy): it says so, and with nothing left to do, changes nothing;
- keeps the run's settings; only where and how fast it runs may change (device, threads, processes,
  how often it validates and saves).
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.core.atomic import atomic_write
from engine.core.errors import UserError
from engine.core.run_lock import LOCK_FILE, RunLock
from engine.core.validation import Limit
from engine.data.batches import token_dtype
from engine.models import MODEL_KEYS
from engine.models.registry import MODEL_LABELS
from engine.training import checkpoint as ckpt
from engine.training.train_config import TrainConfig

RUN_FILE = "run.json"
RUN_FORMAT = "melody-memory-run/1"
# Settings a resume may change: they decide where and how fast a run trains, not what it learns.
RESUMABLE_OVERRIDES = ("device", "threads", "processes", "eval_every", "save_every", "log_every")

# Attention scores one model's batch may hold (batch x window^2 x heads, summed over its layers): kept for
# backward with their softmax and its gradient, 12 bytes each, so at most ~13 GB. Like MAX_BATCH_TOKENS, a
# bound on what a typo can ask for; the memory estimate then compares the whole job with this machine.
MAX_ATTENTION_SCORES = 1 << 30


def resumable_overrides(config: TrainConfig) -> tuple[str, ...]:
    """RESUMABLE_OVERRIDES for this run: with early stopping on, the validations decide when a model's rate
    drops and when it stops (and which step its last quarter starts at), so their cadence is the run's own."""
    if config.patience is None:
        return RESUMABLE_OVERRIDES
    return tuple(k for k in RESUMABLE_OVERRIDES if k != "eval_every")


@dataclass
class RunManifest:
    """run.json: what a run was started with, so that a resume continues exactly that."""

    models: list[str]
    training: TrainConfig
    sources: list[str] | None = None  # MIDI files/folders of the corpus; None = the bundled corpus
    corpus: str = ""  # corpus fingerprint
    created_at: str = ""
    ranks: int = 1  # data-parallel ranks: the global batch is training.batch_size x ranks

    def to_dict(self) -> dict:
        return {"format": RUN_FORMAT, "models": self.models, "training": self.training.to_dict(),
                "sources": self.sources, "corpus": self.corpus, "created_at": self.created_at, "ranks": self.ranks}

    @classmethod
    def from_dict(cls, doc, where: str) -> RunManifest:
        if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
            raise UserError(f"{where}: not a Melody Memory run file (format {doc.get('format') if isinstance(doc, dict) else None!r})")
        models = doc.get("models")
        if not isinstance(models, list) or not models or any(m not in MODEL_KEYS for m in models) \
                or len(set(models)) != len(models):
            raise UserError(f"{where}: models must be a list of distinct model keys from {', '.join(MODEL_KEYS)}, "
                            f"not {models!r}")
        sources = doc.get("sources")
        if sources is not None and (not isinstance(sources, list) or not all(isinstance(s, str) for s in sources)):
            raise UserError(f"{where}: sources must be a list of paths or null, not {sources!r}")
        ranks = Limit("int", 1, 100_000).check(doc.get("ranks", 1), "ranks", where)
        return cls(models=list(models), training=TrainConfig.from_dict(doc.get("training"), where), sources=sources,
                   corpus=str(doc.get("corpus", "")), created_at=str(doc.get("created_at", "")), ranks=ranks)


def read_manifest(run_dir) -> RunManifest | None:
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return None
    return RunManifest.from_dict(ckpt.read_json(path, "run file"), str(path))


def write_manifest(run_dir, manifest: RunManifest) -> None:
    atomic_write(Path(run_dir) / RUN_FILE, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode(), durable=True)


@dataclass
class ModelState:
    """Where one model of a run stands."""

    key: str
    step: int = 0
    steps: int = 0
    has_state: bool = False  # train_state.safetensors: it can be resumed
    exists: bool = False  # a checkpoint of any kind (config.json)
    training: TrainConfig | None = None  # what its training state was trained with
    ranks: int = 1
    stopped_early: bool = False

    @property
    def finished(self) -> bool:
        return self.exists and (self.step >= self.steps or self.stopped_early)

    def describe(self) -> str:
        if not self.exists:
            return f"{self.key}: not started"
        if not self.has_state:
            return f"{self.key}: no training state (a bundled or exported model, step {self.step}): never overwritten"
        if self.stopped_early:
            return f"{self.key}: finished (stopped early at step {self.step}: validation no longer improved): left as it is"
        if self.finished:
            return f"{self.key}: finished ({self.step}/{self.steps} steps): left as it is"
        return f"{self.key}: step {self.step}/{self.steps}"


def model_state(run_dir, key: str) -> ModelState:
    """A model's progress from its files: train_state's own record when there is one (it is written first,
    so after a kill it may be ahead of config.json), else config.json."""
    model_dir = Path(run_dir) / key
    if ckpt.has_train_state(model_dir):
        record = ckpt.read_state_record(model_dir)
        return ModelState(key, record.step, record.training.steps, has_state=True, exists=True,
                          training=record.training, ranks=record.ranks, stopped_early=record.stopped_early)
    if (model_dir / ckpt.CONFIG_FILE).is_file():
        record = ckpt.read_record(model_dir)
        return ModelState(key, record.step, record.training.steps, has_state=False, exists=True,
                          training=record.training, ranks=record.ranks, stopped_early=record.stopped_early)
    return ModelState(key)


@dataclass
class TrainJob:
    """Everything train() needs: which models, the token arrays, the settings and where to write."""

    models: list[str]
    train_tokens: list  # token arrays of the training tunes
    valid_tokens: list
    token_config: object  # engine.music.tokens.TokenConfig
    corpus_fingerprint: str
    out_dir: str | Path
    config: TrainConfig = field(default_factory=TrainConfig)
    resume: bool = False
    sources: list[str] | None = None
    notes: list[str] = field(default_factory=list)  # what the user should be told before training
    lock: RunLock | None = None  # held by the plan that made this job; train() takes one otherwise
    run_models: list[str] | None = None  # every model of the run (run.json); None: `models`


@dataclass
class RunPlan:
    """A checked, locked run directory and what to train in it. Use as a context manager (releases the lock)."""

    out_dir: Path
    models: list[str]  # what this job trains (new, or the unfinished ones of a resumed run)
    config: TrainConfig  # resolved: every default filled in
    resume: bool
    sources: list[str] | None
    run_models: list[str]  # every model of the run
    states: dict[str, ModelState] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # finished models whose lost files the resume wrote again
    lock: RunLock | None = None
    _created: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not self.models

    def job(self, corpus) -> TrainJob:
        """The job for `corpus`: its training tunes, the validation tunes (or, when a small corpus has
        none, every 10th training tune held out), as compact 1-byte token arrays."""
        if self.resume:
            self._check_corpus(corpus.fingerprint)
        notes = list(self.notes)
        train_tokens, valid_tokens = corpus.tokens("train"), corpus.tokens("valid")
        if not valid_tokens:
            valid_tokens, train_tokens = train_tokens[::10], [t for i, t in enumerate(train_tokens) if i % 10]
            notes.append(f"the corpus has no validation tunes of its own: holding out {len(valid_tokens)} of its "
                         f"training tunes to validate on")
        if len(train_tokens) < 1 or not any(len(t) >= 2 for t in train_tokens) or not any(len(t) >= 2 for t in valid_tokens):
            raise UserError(f"the corpus is too small to train on ({len(corpus)} melodies, {len(train_tokens)} for "
                            f"training, {len(valid_tokens)} to validate on): add more MIDI files (a few dozen tunes "
                            f"at least), or use the bundled corpus")
        vocab = corpus.token_config.vocab_size
        return TrainJob(models=list(self.models), train_tokens=compact_tokens(train_tokens, vocab),
                        valid_tokens=compact_tokens(valid_tokens, vocab), token_config=corpus.token_config,
                        corpus_fingerprint=corpus.fingerprint, out_dir=self.out_dir, config=self.config,
                        resume=self.resume, sources=self.sources, notes=notes, lock=self.lock,
                        run_models=list(self.run_models))

    def _check_corpus(self, fingerprint: str) -> None:
        """A resume trains on the run's own tunes: run.json's corpus, or (run.json lost) each model's
        training state's, checked before anything is written."""
        manifest = read_manifest(self.out_dir)
        if manifest is not None:
            trained_on = {manifest.corpus} - {""}
        else:
            trained_on = {ckpt.read_state_record(self.out_dir / k).corpus for k in self.models
                          if self.states.get(k) is not None and self.states[k].has_state} - {""}
        if trained_on and trained_on != {fingerprint}:
            lost = "" if manifest is not None else f" ({RUN_FILE} is missing: give the run's --source)"
            raise UserError(f"{self.out_dir}: was trained on another corpus (hash {', '.join(sorted(trained_on))}) "
                            f"than the one loaded now ({fingerprint}): its source files have changed since, or "
                            f"another --source was given; a resume needs the run's own tunes{lost}")

    def release(self) -> None:
        """Drop the run's lock; a folder this plan made and nothing was trained into is removed again."""
        empty = self._created and self.out_dir.is_dir() and all(p.name == LOCK_FILE for p in self.out_dir.iterdir())
        if self.lock is not None:
            self.lock.release(remove=empty)
        if empty:
            try:
                (self.out_dir / LOCK_FILE).unlink(missing_ok=True)
                self.out_dir.rmdir()
            except OSError:
                pass

    def __enter__(self) -> RunPlan:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def plan_new_run(out_dir, models, config: TrainConfig, sources=None, names: dict[str, str] | None = None,
                 lock: bool = True) -> RunPlan:
    """A new run of `models` into `out_dir` (which must not hold a run yet). With `lock`, the folder is
    locked first and looked at after, so nothing can change between the look and the training."""
    out_dir = Path(out_dir)
    models = check_models(models)
    config = config.validate(names=names).resolved()
    check_hardware(config)
    _check_folder(out_dir, models)
    memory = check_training_memory(config, models, names)
    plan = RunPlan(out_dir, models, config, resume=False, sources=_sources(sources), run_models=models,
                   notes=[memory], _created=not out_dir.exists())
    if lock:
        _locked(plan)
    try:
        check_new_run(out_dir, models)
    except UserError:
        plan.release()
        raise
    return plan


def check_new_run(out_dir: Path, models) -> None:
    """A new run never goes into a folder that holds a trained model (of any kind)."""
    present = [k for k in MODEL_KEYS if model_state(out_dir, k).exists] if Path(out_dir).is_dir() else []
    if present:
        raise UserError(f"{out_dir} already holds a trained model ({', '.join(present)}): continue it with --resume "
                        f"(Resume in the app), or choose another folder")


def plan_resume(out_dir, overrides: dict | None = None, models=None, sources=None,
                names: dict[str, str] | None = None, lock: bool = True, ranks: int = 1) -> RunPlan:
    """Continue the run in `out_dir`: its unfinished models, with its settings (see the module docstring).

    `overrides` may change only resumable_overrides(the run's config), and the batch size where `ranks`
    data-parallel ranks make up the run's global batch; anything else that differs from the run is refused. `sources` (None:
    the run's own) are the corpus to load. With `lock` and something to train, the folder is locked and
    looked at again under the lock."""
    args = (Path(out_dir), overrides, models, sources, names or {}, ranks)
    plan = _resume_plan(*args)
    if not (lock and (plan.models or _to_rewrite(plan))):
        return plan
    held = RunLock(plan.out_dir).acquire()
    try:
        plan = _resume_plan(*args)
        plan.lock = held
        _rewrite_lost_files(plan)
    except UserError:
        held.release()
        raise
    return plan


def _finished_left(plan: RunPlan) -> list[str]:
    """The finished models with a training state that the resume leaves alone (their files may need writing again)."""
    return [k for k, s in plan.states.items() if s.has_state and s.finished and k not in plan.models]


def _to_rewrite(plan: RunPlan) -> bool:
    return any(ckpt.files_to_rewrite(plan.out_dir / k, k) for k in _finished_left(plan))


def _rewrite_lost_files(plan: RunPlan) -> None:
    """Under the lock: a finished model whose config.json or model.safetensors is gone or damaged gets them
    back from its training state (an unfinished one gets them at its first save)."""
    for key in _finished_left(plan):
        gone = ckpt.rewrite_from_state(plan.out_dir / key, key)
        if gone:
            plan.rewritten.append(key)
            plan.notes.append(f"{key}: {' and '.join(gone)} written again from its training state")


def _resume_plan(out_dir: Path, overrides, models, sources, names: dict, ranks: int) -> RunPlan:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file, not a run folder")
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: no run to resume (no such folder)")
    _check_files(out_dir, [])  # run.json
    manifest = read_manifest(out_dir)
    if manifest is not None:
        config, run_models, run_sources = manifest.training, manifest.models, manifest.sources
        run_ranks = manifest.ranks
    else:  # a run made before run.json existed (or the bundled models): its models' own files say it
        run_models = [k for k in MODEL_KEYS if model_state(out_dir, k).exists]
        if not run_models:
            raise UserError(f"{out_dir}: no run to resume (no run.json and no model checkpoints)")
        record = ckpt.read_record(out_dir / run_models[0])
        config, run_sources, run_ranks = record.training, None, record.ranks
    overrides = dict(overrides or {})
    batch = overrides.get("batch_size")
    if batch is not None and batch * ranks == config.batch_size * run_ranks:
        config = replace(config, batch_size=overrides.pop("batch_size"))  # the same global batch on other ranks
    config = _apply_overrides(config, overrides, out_dir, names)
    check_hardware(config)
    wanted = run_models if not models else check_models(models)
    strangers = [m for m in wanted if m not in run_models]
    if strangers:
        raise UserError(f"{out_dir}: the run has no {', '.join(strangers)} (it holds {', '.join(run_models)}); "
                        f"train those into another folder")
    _check_folder(out_dir, wanted)
    states = {k: model_state(out_dir, k) for k in wanted}
    for key, state in states.items():
        if state.has_state:
            check_same_settings(out_dir / key / ckpt.STATE_FILE, state.training, state.ranks, config, ranks)
    to_train = [k for k in wanted if not states[k].exists or (states[k].has_state and not states[k].finished)]
    for key in to_train:  # what the resume will read, looked at before the corpus is loaded
        if states[key].has_state:
            ckpt.check_resumable(out_dir / key, key)
    notes = [states[k].describe() for k in wanted]
    if to_train:
        notes.append(check_training_memory(config, to_train, names))
    return RunPlan(out_dir, to_train, config, resume=True, sources=_sources(sources) or run_sources,
                   run_models=run_models, states=states, notes=notes)


def check_same_settings(path: Path, saved: TrainConfig, saved_ranks: int, config: TrainConfig, ranks: int) -> None:
    """A model's training state must come from this run's settings: every one that decides what it learns
    (all but where and how fast it runs), with the global batch (batch x ranks) compared across ranks."""
    was, now = saved.to_dict(), config.to_dict()
    differ = [k for k in was if k not in (*resumable_overrides(saved), "batch_size") and was[k] != now[k]]
    if saved.batch_size * saved_ranks != config.batch_size * ranks:
        differ.append("batch_size")
    if differ:
        said = ", ".join(f"{k} {was[k]}" + (f" x {saved_ranks} ranks" if k == "batch_size" and saved_ranks > 1 else "")
                         + f" (now {now[k]})" for k in differ)
        raise UserError(f"{path}: was trained with {said}: resume with the run's own settings")


def check_hardware(config: TrainConfig) -> None:
    """The device and the precision exist here (UserError now, before any file is written)."""
    from engine.core.device import resolve_device, resolve_precision

    resolve_precision(config.precision, resolve_device(config.device))


def check_models(models) -> list[str]:
    models = [m.strip() for m in models if m and m.strip()] if not isinstance(models, str) else \
        [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODEL_KEYS]
    if unknown or not models:
        raise UserError(f"unknown model(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(MODEL_KEYS)}")
    if len(set(models)) != len(models):
        raise UserError(f"a model is listed twice in {', '.join(models)}")
    return [k for k in MODEL_KEYS if k in models]  # the registry's order, as every plot shows them


def compact_tokens(arrays: list, vocab_size: int) -> list:
    """The same token arrays as views into one flat array of the smallest type the vocabulary fits
    (1 byte per token for the default range): a large corpus then costs its tokens, not 8x them."""
    flat = np.empty(sum(len(a) for a in arrays), dtype=token_dtype(vocab_size))
    views, start = [], 0
    for a in arrays:
        flat[start : start + len(a)] = a
        views.append(flat[start : start + len(a)])
        start += len(a)
    return views


def manifest_for(job: TrainJob, ranks: int = 1) -> RunManifest:
    return RunManifest(models=list(job.run_models or job.models), training=job.config, sources=job.sources,
                       corpus=job.corpus_fingerprint, created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       ranks=ranks)


def _apply_overrides(config: TrainConfig, overrides: dict, out_dir: Path, names: dict[str, str]) -> TrainConfig:
    changed = {k: v for k, v in overrides.items() if v is not None}
    resumable = resumable_overrides(config)
    refused = [k for k, v in changed.items() if k not in resumable and getattr(config, k) != v]
    if refused:
        said = ", ".join(f"{names.get(k, k)} {getattr(config, k)}" for k in refused)
        why = " (with early stopping, validation decides when a model stops)" if "eval_every" in refused else ""
        raise UserError(f"{out_dir}: the run was trained with {said}{why}; a resume keeps the run's settings "
                        f"(leave those out, or train into another folder)")
    allowed = {k: v for k, v in changed.items() if k in resumable}
    return replace(config, **allowed).validate(names=names).resolved()


def _check_folder(out_dir: Path, models: list[str]) -> None:
    """Refuse a folder that cannot hold a run before any work starts: a file in its place, a file where a
    model's folder goes, or no way to create it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file, not a folder: choose a folder for the run")
    for key in models:
        if (out_dir / key).exists() and not (out_dir / key).is_dir():
            raise UserError(f"{out_dir / key} is a file where the {key} model's folder goes: move it away")
    existing = out_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"cannot create {out_dir}: {existing} is a file")
    _check_files(out_dir, models)


def _check_files(out_dir: Path, models: list[str]) -> None:
    """A run's files are regular files or absent: a folder (or a FIFO, a device) where one belongs would fail
    the first save after training (and every resume after it), or block the read. Refused now, naming it."""
    paths = [(out_dir / RUN_FILE, "the run's")]
    paths += [(out_dir / key / name, f"the {key} model's") for key in models for name in ckpt.RUN_MODEL_FILES]
    for path, whose in paths:
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise UserError(f"{path}: damaged run folder: {what} stands where {whose} {path.name} belongs; "
                            f"move it away (a model whose files are gone is retrained from its train_state, or "
                            f"from the start)")


def check_training_memory(config: TrainConfig, models: list[str], names: dict[str, str] | None = None) -> str:
    """Refuse settings whose training cannot fit in memory before anything is allocated (UserError naming
    the settings to lower); else the line that tells the person the estimate. The models report their
    own costs (engine/training/footprint.py): attention's batch x window^2 x heads per layer for the
    models that have attention (and, on whole tunes, the longest piece's own scores), the activations they
    keep per token for the others."""
    from engine.core import memory_budget
    from engine.core.device import cpu_cores
    from engine.models import model_config
    from engine.music.tokens import TokenConfig
    from engine.training import footprint

    names = names or {}
    word = {k: names.get(k, k) for k in ("batch_size", "window", "max_len")}
    flags = f"{word['batch_size']} or {word['window']}"
    window = config.resolved_window()
    needs = [footprint.needs(model_config(key, config.preset, TokenConfig().vocab_size, window=window))
             for key in models]
    shapes = batch_shapes(config)
    if config.sequences == "tunes" and config.max_len + 1 > config.batch_size * window:  # a lone piece is the batch
        flags = f"{word['batch_size']}, {word['window']} or {word['max_len']}"
    for model in needs:
        for rows, length in shapes:
            scores = memory_budget.attention_scores(model, rows, length)
            if scores > MAX_ATTENTION_SCORES:
                raise UserError(_too_many_scores(model, rows, length, scores, config, word, flags))
    processes = config.processes or min(cpu_cores(), len(models))
    estimate = memory_budget.training(needs, shapes, processes)
    return memory_budget.check(estimate, f"{flags} (or train fewer models at once, in fewer processes)")


def batch_shapes(config: TrainConfig) -> list[tuple[int, int]]:
    """The (rows, length) of the largest batches training makes: crops are batch x window; whole tunes hold
    about batch x window tokens in rows of pieces up to max_len + 1 long, and a piece longer than that
    comes alone (engine/data/batches.TuneSampler)."""
    window = config.resolved_window()
    shapes = [(config.batch_size, window)]
    longest = config.max_len + 1
    if config.sequences == "tunes" and longest > window:
        shapes.append((max(1, config.batch_size * window // longest), longest))
    return shapes


def _too_many_scores(model, rows: int, length: int, scores: int, config: TrainConfig, word: dict, flags: str) -> str:
    label = MODEL_LABELS.get(model.key, model.key)
    if length == config.resolved_window():
        how = (f"{word['batch_size']} x {word['window']}^2 x its attention heads = "
               f"{rows} x {length}^2 x {model.attention_heads}")
    else:
        how = (f"{rows} piece(s) of {length} steps ({word['max_len']}) scored over a window of "
               f"{config.resolved_window()} steps x its {model.attention_heads} attention heads")
    return (f"{label}: {how} = {scores:,} attention scores per batch; at most {MAX_ATTENTION_SCORES:,} fit in "
            f"memory: lower {flags}")


def _locked(plan: RunPlan) -> RunPlan:
    plan.lock = RunLock(plan.out_dir)
    try:
        plan.lock.acquire()
    except UserError:
        plan.lock = None
        raise
    return plan


def _sources(sources) -> list[str] | None:
    """As absolute paths: a resume from another working folder must find the same files."""
    if sources is None:
        return None
    return [os.path.abspath(os.fspath(s)) for s in sources] or None

