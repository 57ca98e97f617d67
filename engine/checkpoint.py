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
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import resources
from .atomic import atomic_write
from .errors import UserError
from .models import MODEL_KEYS, SequenceModel, model_from_config
from .tokens import TokenConfig

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
class LoadedModel:
    model: SequenceModel  # in eval mode, on the requested device
    config: dict  # the config.json document
    token_config: TokenConfig


# ---------------------------------------------------------------------------------------------- writing


def _weights(model: SequenceModel) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """AdamW's per-parameter state (step, exp_avg, exp_avg_sq) as flat named tensors."""
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for field, value in state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(float(value))
            out[f"opt.{index}.{field}"] = tensor.detach().to("cpu").contiguous()
    return out


def save_checkpoint(model_dir, model: SequenceModel, optimizer, doc: dict, history: list[dict]) -> list[Path]:
    """Write one model's checkpoint; `doc` is the config.json document (must carry "step")."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    step = str(doc["step"])
    doc_json = json.dumps(doc, indent=2, sort_keys=True)
    weights = _weights(model)
    state = {f"model.{k}": v for k, v in weights.items()} | _optimizer_tensors(optimizer)
    meta = {"format": FORMAT, "step": step, "config": doc_json}
    paths = [model_dir / STATE_FILE, model_dir / MODEL_FILE, model_dir / HISTORY_FILE, model_dir / CONFIG_FILE]
    atomic_write(paths[0], st_save(state, metadata=meta), durable=True)
    atomic_write(paths[1], st_save(weights, metadata=meta), durable=True)
    atomic_write(paths[2], _history_csv(history), durable=True)
    atomic_write(paths[3], (doc_json + "\n").encode(), durable=True)
    return [paths[1], paths[3]]


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
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict) or not isinstance(doc.get("tokens"), dict):
        raise UserError(f"{path}: not a Melody Memory model config (no 'model' or 'tokens' section)")
    return doc


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


def _build(doc: dict, key: str, where: Path) -> tuple[SequenceModel, TokenConfig]:
    model_cfg = doc["model"]
    if model_cfg.get("key") != key:
        raise UserError(f"{where}: holds model {model_cfg.get('key')!r}, expected {key!r}")
    try:
        token_config = TokenConfig(**{k: doc["tokens"][k] for k in ("min_pitch", "max_pitch")})
        model = model_from_config(model_cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: malformed model or token config ({exc})") from None
    if model.config.vocab_size != token_config.vocab_size:
        raise UserError(f"{where}: model vocabulary {model.config.vocab_size} != token vocabulary "
                        f"{token_config.vocab_size}")
    return model, token_config


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
    model.load_state_dict(tensors, strict=True)


def load_model(run_dir, key: str, device="cpu") -> LoadedModel:
    """The trained model `key` of a run, ready for generation and evaluation."""
    model_dir = Path(run_dir) / key
    doc = read_config(model_dir)
    model, token_config = _build(doc, key, model_dir / CONFIG_FILE)
    path = model_dir / MODEL_FILE
    tensors, _ = read_safetensors(path)
    _load_weights(model, tensors, path)
    return LoadedModel(model.to(device).eval(), doc, token_config)


def load_train_state(model_dir, key: str) -> tuple[SequenceModel, dict, dict[str, torch.Tensor]]:
    """For --resume: (model with its weights, the config document saved with them, optimizer tensors).

    Everything comes from train_state.safetensors alone, so it is consistent even if the process was
    killed between writing it and the other files."""
    path = Path(model_dir) / STATE_FILE
    tensors, meta = read_safetensors(path)
    try:
        doc = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: no readable config in its metadata ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict) or "tokens" not in doc:
        raise UserError(f"{path}: metadata config lacks the model or token section")
    model, _ = _build(doc, key, path)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_weights(model, weights, path)
    opt = {k: v for k, v in tensors.items() if k.startswith("opt.")}
    return model, doc, opt


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], path) -> None:
    """Put saved AdamW state back; the param groups (lr etc.) stay as the fresh optimizer has them."""
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        _, index, field = name.split(".", 2)
        state.setdefault(int(index), {})[field] = tensor
    fresh = optimizer.state_dict()
    n_params = sum(len(g["params"]) for g in fresh["param_groups"])
    if state and set(state) != set(range(n_params)):
        raise UserError(f"{path}: optimizer state covers {len(state)} parameters, the model has {n_params}")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": fresh["param_groups"]})
    except (ValueError, RuntimeError, KeyError) as exc:
        raise UserError(f"{path}: optimizer state does not fit the model ({exc})") from None


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
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable training history ({exc})") from None
    return rows
