"""Run directories: RUN_DIR/<model>/ holds everything about one trained model, never pickled.

    model.safetensors        the weights (metadata: format, step, the model config as JSON)
    train_state.safetensors  weights + AdamW state + step: all that --resume needs, in ONE file, so a
                             resume never mixes files of different steps
    config.json              model config with its parameter count, token settings, corpus hash,
                             training config, step and last losses (what people and the GUI read)
    history.csv              step, train and validation bits per token, learning rate, tokens/s, time

Every file is written atomically (temporary file in the same folder, fsync, os.replace), train state
first and config.json last: killing the process at any moment leaves each file either the old or the
new complete version, and train_state.safetensors always a consistent point to resume from.
Loading parses safetensors and JSON only; anything wrong becomes a UserError naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from engine.core import memory_budget, resources
from engine.core.atomic import atomic_write
from engine.core.errors import UserError
from engine.core.memory_budget import size_text
from engine.core.validation import Limit
from engine.models import MODEL_KEYS, MODEL_LABELS, ModelConfig, SequenceModel, config_from_dict, model_from_config
from engine.music.tokens import TokenConfig
from engine.training import footprint
from engine.training.train_config import TRAIN_SETTINGS, TrainConfig

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
RUN_MODEL_FILES = (STATE_FILE, MODEL_FILE, HISTORY_FILE, CONFIG_FILE)  # in the order a checkpoint writes them
# In train_state: the training loss summed since the last history row, and over how many steps.
PARTIAL_SUM, PARTIAL_STEPS = "train.loss_sum", "train.loss_steps"
# Files read whole are checked against these first: a config or run.json is a few kB, a history 100 bytes a row.
MAX_JSON_BYTES = 16 * 2**20
MAX_HISTORY_BYTES = 512 * 2**20
MAX_HISTORY_LINE = 4096
MAX_STEP = int(TRAIN_SETTINGS.limits["steps"].hi)  # the most steps a model can have trained
# A safetensors header: the tensors' names and shapes and our metadata (the config), a few kB.
MAX_HEADER_BYTES = 16 * 2**20
FORMAT = "melody-memory/1"
HISTORY_FIELDS = ("step", "train_bpt", "valid_bpt", "lr", "tokens_per_s", "elapsed_s")


# The models that ship with the app; `--run pretrained` on the command line names this folder.
PRETRAINED_DIR = resources.pretrained_dir()  # the installed package's folder, or the checkout's


def resolve_run_dir(run) -> Path:
    """'pretrained' is the bundled run; anything else is a path to a run directory."""
    return PRETRAINED_DIR if str(run) == "pretrained" else Path(run)


@dataclass
class ModelRecord:
    """A trained model's config.json, typed and range-checked: what it is, what it was trained on and how
    far. The file itself keeps the flat JSON layout people and older versions read."""

    key: str
    model: ModelConfig
    tokens: TokenConfig
    training: TrainConfig
    step: int
    corpus: str = ""
    params: int | None = None
    train_bpt: float | None = None
    valid_bpt: float | None = None
    ranks: int = 1  # data-parallel ranks it was trained on (the global batch is batch_size x ranks)
    device: str = ""
    torch: str = ""
    saved_at: str = ""
    stopped_early: bool = False  # early stopping ended it before its step budget (a finished model)
    extra: dict = field(default_factory=dict)  # anything else the file holds, kept as it is

    @property
    def finished(self) -> bool:
        return self.step >= self.training.steps or self.stopped_early

    def to_dict(self) -> dict:
        return {
            **self.extra,
            "format": FORMAT,
            "key": self.key,
            "label": MODEL_LABELS.get(self.key, self.key),
            "model": self.model.to_dict(),
            "params": self.params,
            "tokens": {**self.tokens.to_dict(), "vocab_size": self.tokens.vocab_size},
            "corpus": self.corpus,
            "training": {**self.training.to_dict(), "ranks": self.ranks},
            "step": self.step,
            "stopped_early": self.stopped_early,
            "train_bpt": self.train_bpt,
            "valid_bpt": self.valid_bpt,
            "device": self.device,
            "torch": self.torch,
            "saved_at": self.saved_at,
        }

    @classmethod
    def from_dict(cls, doc, where: str) -> ModelRecord:
        """Every value checked before anything is built from it; UserError naming `where` and the field."""
        if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict) or not isinstance(doc.get("tokens"), dict):
            raise UserError(f"{where}: not a Melody Memory model config (no 'model' or 'tokens' section)")
        key = doc.get("key", doc["model"].get("key"))
        if key not in MODEL_KEYS:
            raise UserError(f"{where}: unknown model {key!r}: choose from {', '.join(MODEL_KEYS)}")
        tokens = _token_config(doc["tokens"], where)
        model = config_from_dict(doc["model"], where)
        if model.key != key:
            raise UserError(f"{where}: holds model {model.key!r}, but says it is {key!r}")
        if model.vocab_size != tokens.vocab_size:
            raise UserError(f"{where}: model vocabulary {model.vocab_size} != token vocabulary {tokens.vocab_size}")
        training_doc = doc.get("training", {})
        training = TrainConfig.from_dict(training_doc, where)
        ranks = Limit("int", 1, 100_000).check(training_doc.get("ranks", 1) if isinstance(training_doc, dict) else 1,
                                               "training.ranks", where)
        step = Limit("int", 0, MAX_STEP).check(doc.get("step", 0), "step", where)
        losses = {name: _optional_loss(doc.get(name), name, where) for name in ("train_bpt", "valid_bpt")}
        stopped_early = Limit("bool").check(doc.get("stopped_early", False), "stopped_early", where)
        known = {"format", "key", "label", "model", "params", "tokens", "corpus", "training", "step", "train_bpt",
                 "valid_bpt", "device", "torch", "saved_at", "stopped_early"}
        return cls(key=key, model=model, tokens=tokens, training=training, step=step, corpus=str(doc.get("corpus", "")),
                   params=doc.get("params") if isinstance(doc.get("params"), int) else None, ranks=ranks,
                   device=str(doc.get("device", "")), torch=str(doc.get("torch", "")),
                   saved_at=str(doc.get("saved_at", "")), stopped_early=stopped_early,
                   extra={k: v for k, v in doc.items() if k not in known},
                   **losses)


def _token_config(doc: dict, where: str) -> TokenConfig:
    pitch = Limit("int", 0, 127)
    low = pitch.check(doc.get("min_pitch"), "tokens.min_pitch", where)
    high = pitch.check(doc.get("max_pitch"), "tokens.max_pitch", where)
    if low >= high:
        raise UserError(f"{where}: tokens.min_pitch ({low}) must be below tokens.max_pitch ({high})")
    return TokenConfig(min_pitch=low, max_pitch=high)


def _optional_loss(value, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserError(f"{where}: {name} must be a finite number of bits per token, not {value!r}")
    return float(value)


@dataclass
class LoadedModel:
    model: SequenceModel  # in eval mode, on the requested device
    config: dict  # the config.json document as read (record holds it typed)
    token_config: TokenConfig
    record: ModelRecord | None = None


# ---------------------------------------------------------------------------------------------- writing


def _weights(model: SequenceModel) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """AdamW's per-parameter state (step, exp_avg, exp_avg_sq) as flat named tensors."""
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(float(value))
            out[f"opt.{index}.{name}"] = tensor.detach().to("cpu").contiguous()
    return out


class Orphaned(Exception):
    """The process that holds the run's lock has gone (a worker's parent killed with kill -9): this process
    may write no more of the run's files, a resume may already be writing them."""


def save_checkpoint(model_dir, model: SequenceModel, optimizer, record: ModelRecord, history: list[dict],
                    partial_loss: tuple[torch.Tensor, int] | None = None, alive=None) -> list[Path]:
    """Write one model's checkpoint: its training state first (all a resume needs, in one file), then the
    model, its history and config.json (save_model).

    `partial_loss` = (summed loss, steps) since the last logged row, so that a resume logs the row it would
    have logged. `alive()`, when given, is asked before each file: false raises Orphaned, and no more file
    is written."""
    model_dir = _made(model_dir)
    state = {f"model.{k}": v for k, v in _weights(model).items()} | _optimizer_tensors(optimizer)
    if partial_loss is not None and partial_loss[1] > 0:
        state[PARTIAL_SUM] = partial_loss[0].detach().to("cpu").reshape(())
        state[PARTIAL_STEPS] = torch.tensor(int(partial_loss[1]), dtype=torch.int64)
    _still_owned(alive)
    atomic_write(model_dir / STATE_FILE, st_save(state, metadata=_metadata(record)), durable=True)
    return save_model(model_dir, model, record, history, alive)


def save_model(model_dir, model: SequenceModel, record: ModelRecord, history: list[dict] = (), alive=None) -> list[Path]:
    """Write a model without training state (as the bundled models ship): it loads everywhere, and a
    resume never touches it."""
    model_dir = _made(model_dir)
    paths = [model_dir / MODEL_FILE, model_dir / HISTORY_FILE, model_dir / CONFIG_FILE]
    contents = [st_save(_weights(model), metadata=_metadata(record)), _history_csv(list(history)),
                (_metadata(record)["config"] + "\n").encode()]
    for path, content in zip(paths, contents):
        _still_owned(alive)
        atomic_write(path, content, durable=True)
    return [paths[0], paths[2]]


def _still_owned(alive) -> None:
    if alive is not None and not alive():
        raise Orphaned()


def _made(model_dir) -> Path:
    model_dir = Path(model_dir)
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {model_dir}: {exc.strerror or exc}") from None
    return model_dir


def _metadata(record: ModelRecord) -> dict[str, str]:
    return {"format": FORMAT, "step": str(record.step), "config": json.dumps(record.to_dict(), indent=2, sort_keys=True)}


def _history_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in HISTORY_FIELDS})
    return buf.getvalue().encode()


# ---------------------------------------------------------------------------------------------- reading


def list_run_models(run_dir) -> list[str]:
    """Model keys with a checkpoint (config.json and model.safetensors) in run_dir, in MODEL_KEYS order."""
    run_dir = Path(run_dir)
    return [k for k in MODEL_KEYS if (run_dir / k / CONFIG_FILE).is_file() and (run_dir / k / MODEL_FILE).is_file()]


def run_model_keys(run_dir) -> list[str]:
    """Model keys that a run holds something of (a config.json, a model.safetensors or a training state, of
    any kind): the models a front end opens, naming a damaged one rather than passing over it in silence."""
    run_dir = Path(run_dir)
    names = (CONFIG_FILE, MODEL_FILE, STATE_FILE)
    return [k for k in MODEL_KEYS if any(os.path.lexists(run_dir / k / name) for name in names)]


def check_saved_model(model_dir) -> None:
    """A model's config.json and model.safetensors are there, as regular files (UserError naming the one
    missing or damaged), before an evaluation or an export that counts on it starts."""
    model_dir = Path(model_dir)
    for name, what in ((CONFIG_FILE, "config"), (MODEL_FILE, "checkpoint")):
        if not os.path.lexists(model_dir / name) and has_train_state(model_dir):
            raise UserError(f"{model_dir / name}: missing; `train --resume --out {model_dir.parent}` writes it "
                            f"again from {STATE_FILE}")
        regular_size(model_dir / name, what)


def read_config(model_dir) -> dict:
    path = Path(model_dir) / CONFIG_FILE
    if not path.exists():
        raise UserError(f"{path}: missing (no trained model here)")
    doc = read_json(path, "config")
    ModelRecord.from_dict(doc, str(path))  # every value range-checked before anyone builds from it
    return doc


def read_json(path, what: str):
    """A JSON file of a run (config.json, run.json), checked first: a regular file of at most
    MAX_JSON_BYTES; anything unreadable (a folder, 200,000 nested brackets) is a UserError naming it."""
    path = Path(path)
    regular_size(path, what, MAX_JSON_BYTES)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise UserError(f"{path}: not a readable {what} ({reason})") from None


def regular_size(path: Path, what: str, limit: int | None = None) -> int:
    """The size of `path`, a regular file of at most `limit` bytes; UserError naming it otherwise (a folder
    where a run's file belongs is a damaged run, a FIFO would block the read, a huge file is not ours)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: damaged run folder: a folder stands where a {what} file belongs")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: not a regular file, so not a readable {what}")
    if limit is not None and st.st_size > limit:
        raise UserError(f"{path}: {size_text(st.st_size)}, far more than a {what} holds (at most "
                        f"{size_text(limit)}): a damaged or foreign file; not read")
    return st.st_size


def read_record(model_dir) -> ModelRecord:
    """A model's config.json as a typed, range-checked ModelRecord (UserError naming the file)."""
    path = Path(model_dir) / CONFIG_FILE
    return ModelRecord.from_dict(read_config(model_dir), str(path))


def has_train_state(model_dir) -> bool:
    """Whether a model can be resumed: bundled and exported models carry no optimizer state."""
    return (Path(model_dir) / STATE_FILE).is_file()


def read_safetensors(path, expected: dict | None = None, budget: int | None = None,
                     prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; never unpickles. Damage -> UserError naming it.

    Before any tensor is read: the file's size against `budget` (the bytes its tensors may take, from the
    config), and its header's tensors against `expected` ({name: (shape, dtype)} of the state dict the
    config implies; with `prefix`, the names that start with it). The tensors are then read through
    safetensors' memory map."""
    path = Path(path)
    _checkpoint_size(path, budget)
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise UserError(f"{path}: not a Melody Memory checkpoint (format {meta.get('format')!r})")
            names = f.keys()  # a safetensors file handle: not iterable itself
            if expected is not None:
                _check_header(path, {k: f.get_slice(k) for k in names}, expected, prefix)
            tensors = {k: f.get_tensor(k) for k in names}
    except UserError:
        raise
    except Exception as exc:  # truncated, corrupted or not safetensors at all: all the same to the user
        raise UserError(f"{path}: corrupted or truncated checkpoint ({type(exc).__name__}: {exc})") from None
    return tensors, meta


def _checkpoint_size(path: Path, budget: int | None) -> None:
    """A checkpoint is a regular file no larger than its tensors (`budget` bytes, from its config) and a
    header: UserError naming it otherwise (a sparse 6 GB file is refused before a byte is read)."""
    size = regular_size(path, "checkpoint")
    if budget is not None and size > budget + MAX_HEADER_BYTES:
        raise UserError(f"{path}: {size_text(size)}, but its config needs at most {size_text(budget)}: a damaged "
                        f"or foreign file; not read")


_DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
                torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                torch.bool: "BOOL"}


def _check_header(path: Path, slices: dict, expected: dict, prefix: str) -> None:
    """The header's tensors named `prefix + name` are exactly the expected ones, of their shapes and types."""
    found = {k[len(prefix):]: v for k, v in slices.items() if k.startswith(prefix)}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the config (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    for name, (shape, dtype) in expected.items():
        got_shape, got_dtype = tuple(found[name].get_shape()), found[name].get_dtype()
        if got_shape != shape or got_dtype != _DTYPE_NAMES.get(dtype):
            raise UserError(f"{path}: weight {name} has shape {got_shape} {got_dtype}, the config needs "
                            f"{shape} {_DTYPE_NAMES.get(dtype, dtype)}")


def read_state_record(model_dir) -> ModelRecord:
    """The config record inside train_state.safetensors, read from its header alone (a resume plan looks at
    every model of a run without loading its weights). Damage -> UserError naming the file."""
    path = Path(model_dir) / STATE_FILE
    regular_size(path, "training state")
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > MAX_HEADER_BYTES:
                raise ValueError(f"a header of {header_len} bytes")
            header = json.loads(f.read(header_len))
        meta = header.get("__metadata__") or {}
        if meta.get("format") != FORMAT:
            raise UserError(f"{path}: not a Melody Memory checkpoint (format {meta.get('format')!r})")
        doc = json.loads(meta["config"])
    except UserError:
        raise
    except Exception as exc:  # truncated, corrupted, not safetensors: all the same to the user
        raise UserError(f"{path}: corrupted or truncated checkpoint ({type(exc).__name__}: {exc})") from None
    return ModelRecord.from_dict(doc, str(path))


def _weights_of(record: ModelRecord, key: str, where: Path) -> footprint.Weights:
    """The weights a record's config implies, checked before anything is built: the model it names, the
    parameter count (footprint.MAX_PARAMS) and the memory the weights take on this machine."""
    if record.key != key:
        raise UserError(f"{where}: holds model {record.key!r}, expected {key!r}")
    weights = footprint.weights(record.model, str(where))
    memory_budget.check(memory_budget.Estimate(f"loading {key}", {"weights": 2 * weights.needs.weight_bytes}),
                        "the model's sizes in its config")
    return weights


def _load_weights(model: SequenceModel, tensors: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the config (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise UserError(f"{path}: weight {name} has shape {tuple(tensor.shape)} {tensor.dtype}, "
                            f"the config needs {tuple(expected[name].shape)} {expected[name].dtype}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            # training never saves such weights; a damaged file would only fail later, in sampling
            raise UserError(f"{path}: weight {name} holds values that are not finite (a damaged checkpoint)")
    model.load_state_dict(tensors, strict=True)


def load_model(run_dir, key: str, device="cpu") -> LoadedModel:
    """The trained model `key` of a run, ready for generation and evaluation."""
    model_dir = Path(run_dir) / key
    doc = read_config(model_dir)
    record = ModelRecord.from_dict(doc, str(model_dir / CONFIG_FILE))
    weights = _weights_of(record, key, model_dir / CONFIG_FILE)
    path = model_dir / MODEL_FILE
    tensors, _ = read_safetensors(path, weights.shapes, weights.needs.weight_bytes)
    model = model_from_config(record.model, str(model_dir / CONFIG_FILE))
    _load_weights(model, tensors, path)
    return LoadedModel(model.to(device).eval(), doc, record.tokens, record)


def load_train_state(model_dir, key: str):
    """For --resume: (model with its weights, the config record saved with them, optimizer tensors, the
    partial loss (summed loss, steps) since the last history row, or None).

    Everything comes from train_state.safetensors alone, so it is consistent even if the process was
    killed between writing it and the other files."""
    path = Path(model_dir) / STATE_FILE
    record = read_state_record(model_dir)
    weights = _weights_of(record, key, path)
    tensors, _ = read_safetensors(path, weights.shapes, _state_budget(weights), prefix="model.")
    model = model_from_config(record.model, str(path))
    _load_weights(model, {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    opt = {k: v for k, v in tensors.items() if k.startswith("opt.")}
    for name, tensor in opt.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{path}: {name} holds values that are not finite (a broken run): not resumed")
    return model, record, opt, _partial_loss(tensors, path)


def files_to_rewrite(model_dir, key: str) -> list[str]:
    """The model's files (config.json, model.safetensors) that are gone, or that do not load (truncated, a
    config nested 200,000 deep, weights that differ from it), while its training state is there. A folder
    or a FIFO in their place is not among them: the resume refuses that at planning (it is not ours to
    remove)."""
    model_dir = Path(model_dir)
    if not has_train_state(model_dir):
        return []
    gone = [n for n in (CONFIG_FILE, MODEL_FILE) if not os.path.lexists(model_dir / n)]
    if gone:
        return gone
    try:
        load_model(model_dir.parent, key)
    except UserError:
        return [CONFIG_FILE, MODEL_FILE]
    return []


def rewrite_from_state(model_dir, key: str) -> list[str]:
    """Write a finished model's lost or damaged config.json and model.safetensors again from its training
    state (which holds its weights and record), keeping its history; returns the names rewritten. A resume
    does this for the finished models it otherwise leaves alone: without it they stayed unusable for good."""
    gone = files_to_rewrite(model_dir, key)
    if gone:
        model, record, _, _ = load_train_state(model_dir, key)
        save_model(model_dir, model, record, read_history(model_dir, up_to_step=record.step))
    return gone


def _state_budget(weights: footprint.Weights) -> int:
    """The most bytes a train_state's tensors take: the weights, AdamW's two moments of each, a step count
    per parameter and the partial loss."""
    return 3 * weights.needs.weight_bytes + 8 * (len(weights.shapes) + 2)


def check_resumable(model_dir, key: str) -> ModelRecord:
    """What a resume reads of a model, looked at before any work (no tensor read): train_state's record,
    the parameters its config implies, the file's size against them, and the history up to its step.
    UserError naming the damaged file; else the record."""
    path = Path(model_dir) / STATE_FILE
    record = read_state_record(model_dir)
    _checkpoint_size(path, _state_budget(_weights_of(record, key, path)))
    read_history(model_dir, up_to_step=record.step)
    return record


def _partial_loss(tensors: dict, path: Path) -> tuple[torch.Tensor, int] | None:
    if PARTIAL_SUM not in tensors and PARTIAL_STEPS not in tensors:
        return None  # saved on a logging step, or by a version that did not keep it
    total, steps = tensors.get(PARTIAL_SUM), tensors.get(PARTIAL_STEPS)
    if total is None or steps is None or total.numel() != 1 or steps.numel() != 1 or steps.is_floating_point() \
            or not bool(torch.isfinite(total).all()) or not 1 <= int(steps) <= 10_000_000:
        raise UserError(f"{path}: {PARTIAL_SUM} and {PARTIAL_STEPS} must be a finite loss and a step count")
    return total.reshape(()), int(steps)


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], path, step: int = 0) -> None:
    """Put saved AdamW state back (checked first: one moment pair per parameter, of its shape, finite, the
    second moments >= 0, a step count >= 1, and a state at all when the model has trained `step` steps);
    the param groups (lr etc.) stay as the fresh optimizer has them."""
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        try:
            _, index, entry = name.split(".", 2)
            state.setdefault(int(index), {})[entry] = tensor
        except ValueError:
            raise UserError(f"{path}: unexpected tensor {name!r} in the optimizer state") from None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if step > 0 and not state:
        raise UserError(f"{path}: holds no optimizer state, but the model has trained {step} steps")
    if state and set(state) != set(range(len(params))):
        raise UserError(f"{path}: optimizer state covers {len(state)} parameters, the model has {len(params)}")
    for index, entries in state.items():
        _check_moments(entries, params[index], f"{path}: optimizer state of parameter {index}")
    fresh = optimizer.state_dict()
    try:
        optimizer.load_state_dict({"state": state, "param_groups": fresh["param_groups"]})
    except (ValueError, RuntimeError, KeyError) as exc:
        raise UserError(f"{path}: optimizer state does not fit the model ({exc})") from None


def _check_moments(entries: dict, param: torch.Tensor, where: str) -> None:
    if set(entries) != {"step", "exp_avg", "exp_avg_sq"}:
        raise UserError(f"{where}: holds {sorted(entries)}, not step, exp_avg and exp_avg_sq")
    step = entries["step"]
    if step.numel() != 1 or not bool(torch.isfinite(step).all()) or float(step) < 1:
        raise UserError(f"{where}: its step count must be a finite number of at least 1")
    for name in ("exp_avg", "exp_avg_sq"):
        t = entries[name]
        if t.shape != param.shape or t.dtype != param.dtype:
            raise UserError(f"{where}: {name} has shape {tuple(t.shape)} {t.dtype}, the parameter "
                            f"{tuple(param.shape)} {param.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise UserError(f"{where}: {name} holds values that are not finite")
    if bool((entries["exp_avg_sq"] < 0).any()):
        raise UserError(f"{where}: exp_avg_sq holds negative values")


def read_history(model_dir, up_to_step: int | None = None) -> list[dict]:
    """history.csv rows as dicts of floats (None where blank), only rows <= up_to_step (default: the step of
    the model's config.json, where its history ends).

    Read line by line and bounded before anything is kept: a row is one short line (MAX_HISTORY_LINE), the
    steps rise from row to row (a run logs a step once), and reading ends at the first row past the bound,
    so what is held is at most one row per step the model has trained. Damage (a line of NUL bytes, a sparse file, a
    row out of order) is a UserError naming the file."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.exists():
        return []
    regular_size(path, "training history", MAX_HISTORY_BYTES)
    if up_to_step is None:  # where the model stands; a folder without its config (no front end reads one): any step
        up_to_step = read_record(model_dir).step if (Path(model_dir) / CONFIG_FILE).exists() else MAX_STEP
    rows: list[dict] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for raw in csv.DictReader(_short_lines(f, path)):
                row = {k: (float(v) if v not in ("", None) else None) for k, v in raw.items() if k in HISTORY_FIELDS}
                row["step"] = int(row["step"])
                if rows and row["step"] <= rows[-1]["step"]:
                    raise UserError(f"{path}: damaged training history: step {row['step']} follows step "
                                    f"{rows[-1]['step']} (a run logs each step once, in order)")
                if row["step"] > up_to_step:
                    break  # the steps rise: no later row is kept either
                rows.append(row)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, OverflowError, csv.Error) as exc:
        raise UserError(f"{path}: unreadable training history ({exc})") from None
    return rows


def _short_lines(f, path: Path):
    """The lines of `f`, each read with a bound (a history row is about 100 characters)."""
    while line := f.readline(MAX_HISTORY_LINE + 1):
        if len(line) > MAX_HISTORY_LINE:
            raise UserError(f"{path}: damaged training history: a line of more than {MAX_HISTORY_LINE:,} "
                            f"characters (a row is about 100)")
        yield line
