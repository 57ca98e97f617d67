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
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine.core import resources
from engine.core.atomic import atomic_write
from engine.core.errors import UserError
from engine.core.validation import Limit
from engine.models import MODEL_KEYS, MODEL_LABELS, ModelConfig, SequenceModel, config_from_dict, model_from_config
from engine.music.tokens import TokenConfig
from engine.training.train_config import TrainConfig

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
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
        step = Limit("int", 0, 10_000_000).check(doc.get("step", 0), "step", where)
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


def save_checkpoint(model_dir, model: SequenceModel, optimizer, record: ModelRecord, history: list[dict]) -> list[Path]:
    """Write one model's checkpoint: its training state first (all a resume needs, in one file), then the
    model, its history and config.json (save_model)."""
    model_dir = _made(model_dir)
    state = {f"model.{k}": v for k, v in _weights(model).items()} | _optimizer_tensors(optimizer)
    atomic_write(model_dir / STATE_FILE, st_save(state, metadata=_metadata(record)), durable=True)
    return save_model(model_dir, model, record, history)


def save_model(model_dir, model: SequenceModel, record: ModelRecord, history: list[dict] = ()) -> list[Path]:
    """Write a model without training state (as the bundled models ship): it loads everywhere, and a
    resume never touches it."""
    model_dir = _made(model_dir)
    paths = [model_dir / MODEL_FILE, model_dir / HISTORY_FILE, model_dir / CONFIG_FILE]
    atomic_write(paths[0], st_save(_weights(model), metadata=_metadata(record)), durable=True)
    atomic_write(paths[1], _history_csv(list(history)), durable=True)
    atomic_write(paths[2], (_metadata(record)["config"] + "\n").encode(), durable=True)
    return [paths[0], paths[2]]


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


def read_config(model_dir) -> dict:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing (no trained model here)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable config ({exc})") from None
    ModelRecord.from_dict(doc, str(path))  # every value range-checked before anyone builds from it
    return doc


def read_record(model_dir) -> ModelRecord:
    """A model's config.json as a typed, range-checked ModelRecord (UserError naming the file)."""
    path = Path(model_dir) / CONFIG_FILE
    return ModelRecord.from_dict(read_config(model_dir), str(path))


def has_train_state(model_dir) -> bool:
    """Whether a model can be resumed: bundled and exported models carry no optimizer state."""
    return (Path(model_dir) / STATE_FILE).is_file()


def read_safetensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; never unpickles. Damage -> UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        data = path.read_bytes()
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_len])
        tensors = st_load(data)
    except Exception as exc:  # truncated, corrupted or not safetensors at all: all the same to the user
        raise UserError(f"{path}: corrupted or truncated checkpoint ({type(exc).__name__}: {exc})") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a Melody Memory checkpoint (format {meta.get('format')!r})")
    return tensors, meta


def read_state_record(model_dir) -> ModelRecord:
    """The config record inside train_state.safetensors, read from its header alone (a resume plan looks at
    every model of a run without loading its weights). Damage -> UserError naming the file."""
    path = Path(model_dir) / STATE_FILE
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > 100_000_000:
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


def _build(doc: dict, key: str, where: Path) -> tuple[SequenceModel, ModelRecord]:
    record = ModelRecord.from_dict(doc, str(where))
    if record.key != key:
        raise UserError(f"{where}: holds model {record.key!r}, expected {key!r}")
    return model_from_config(record.model, str(where)), record


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
    model, record = _build(doc, key, model_dir / CONFIG_FILE)
    path = model_dir / MODEL_FILE
    tensors, _ = read_safetensors(path)
    _load_weights(model, tensors, path)
    return LoadedModel(model.to(device).eval(), doc, record.tokens, record)


def load_train_state(model_dir, key: str) -> tuple[SequenceModel, ModelRecord, dict[str, torch.Tensor]]:
    """For --resume: (model with its weights, the config record saved with them, optimizer tensors).

    Everything comes from train_state.safetensors alone, so it is consistent even if the process was
    killed between writing it and the other files."""
    path = Path(model_dir) / STATE_FILE
    tensors, meta = read_safetensors(path)
    try:
        doc = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: no readable config in its metadata ({exc})") from None
    model, record = _build(doc, key, path)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_weights(model, weights, path)
    opt = {k: v for k, v in tensors.items() if k.startswith("opt.")}
    for name, tensor in opt.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{path}: {name} holds values that are not finite (a broken run): not resumed")
    return model, record, opt


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
    """history.csv rows as dicts of floats (None where blank), optionally only rows <= up_to_step."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for raw in csv.DictReader(f):
                row = {k: (float(v) if v not in ("", None) else None) for k, v in raw.items() if k in HISTORY_FIELDS}
                row["step"] = int(row["step"])
                if up_to_step is None or row["step"] <= up_to_step:
                    rows.append(row)
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise UserError(f"{path}: unreadable training history ({exc})") from None
    return rows
