"""What a model costs in memory, asked of the model itself before it is built for real.

- `weights(config)`: the model built on torch's meta device (shapes only: nothing is allocated, and the
  random initialisation is skipped, which on meta costs seconds of imports and fills nothing): its
  parameter count, its state dict's shapes (what a checkpoint of it must hold) and the size of one
  sequence's generation state (`init_state` on meta). A config above MAX_PARAMS is refused here, before
  anything is allocated.
- `needs(config)`: the above, plus what a forward keeps for backward per token (measured with autograd's
  saved-tensor hooks on a real but uninitialised copy, on 16 and 32 tokens) and the attention heads summed
  over its layers (from `attention_weights`, whose shape is [layers, batch, heads, T, T]). The real copy
  is built only after the parameter count has passed.

engine/core/memory_budget.py adds these up into a job's estimate. Results are cached per config.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from engine.core.errors import UserError
from engine.core.memory_budget import ModelNeeds, size_text
from engine.models import ModelConfig, SequenceModel, model_from_config

# 100x the largest preset (medium, 1M parameters): 0.4 GB of float32 weights, 2 GB while training.
MAX_PARAMS = 100_000_000
# In-place fills the initialisers call: skipped while shapes are all that is wanted.
_FILLS = frozenset({"normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                    "xavier_normal_", "trunc_normal_", "orthogonal_", "constant_", "ones_", "zeros_", "fill_",
                    "zero_"})


@dataclass(frozen=True)
class Weights:
    """A model's weights as its config implies them (no tensor allocated)."""

    needs: ModelNeeds  # without the activation figures (see needs())
    shapes: dict[str, tuple[tuple[int, ...], torch.dtype]]  # state dict name -> (shape, dtype)


def weights(config: ModelConfig, where: str | None = None) -> Weights:
    """The model's parameter count and state-dict shapes, from its config alone; UserError above MAX_PARAMS."""
    found = _weights(_config_key(config))
    if found.needs.params > MAX_PARAMS:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}this {config.key} config implies {found.needs.params:,} parameters "
                        f"({size_text(found.needs.weight_bytes)} of weights); at most {MAX_PARAMS:,} are "
                        f"allowed: a damaged or edited config, or sizes far beyond the presets'")
    return found


def needs(config: ModelConfig, where: str | None = None) -> ModelNeeds:
    """ModelNeeds with the per-token activations and the attention heads (see the module docstring)."""
    weights(config, where)  # the parameter count is checked before anything is built for real
    return _needs(_config_key(config))


def _config_key(config: ModelConfig) -> str:
    # the config's class too: a test may register another model under a key that was used before
    return json.dumps([type(config).__module__, type(config).__qualname__, config.to_dict()], sort_keys=True)


def _config(key: str) -> ModelConfig:
    from engine.models import config_from_dict

    return config_from_dict(json.loads(key)[2])


class _NoFill(TorchFunctionMode):
    """Inside, the initialisers' in-place fills do nothing (torch function modes are per thread, so a
    model built at the same time on another thread is initialised as usual)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in _FILLS:
            return args[0] if args else kwargs.get("tensor")
        return func(*args, **kwargs)


def _built(config: ModelConfig, device: str) -> SequenceModel:
    with torch.device(device), _NoFill():
        return model_from_config(config)


@functools.lru_cache(maxsize=128)
def _weights(key: str) -> Weights:
    config = _config(key)
    model = _built(config, "meta")
    shapes = {name: (tuple(t.shape), t.dtype) for name, t in model.state_dict().items()}
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    state = model.init_state(1, torch.device("meta"))
    return Weights(ModelNeeds(key=config.key, params=sum(p.numel() for p in model.parameters()),
                              weight_bytes=weight_bytes, window=config.window, vocab_size=config.vocab_size,
                              state_bytes=_tensor_bytes(state)), shapes)


@functools.lru_cache(maxsize=128)
def _needs(key: str) -> ModelNeeds:
    config = _config(key)
    base = _weights(key).needs
    with torch.random.fork_rng(devices=[]):  # nothing here may move the global generator training seeds from
        model = _built(config, "cpu")
        per_token = (_saved_bytes(model, 32) - _saved_bytes(model, 16)) / 16
        heads = 0
        if model.has_attention:
            with torch.no_grad():
                shape = model.attention_weights(torch.ones(1, 2, dtype=torch.long)).shape
            heads = shape[0] * shape[2]
    return ModelNeeds(**{**base.__dict__, "activation_bytes_per_token": max(0.0, per_token),
                         "attention_heads": heads})


def _saved_bytes(model: SequenceModel, length: int) -> int:
    """Bytes of the distinct storages a forward of one sequence keeps for backward."""
    storages: dict[int, tuple[int, object]] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        storages[id(storage)] = (storage.nbytes(), storage)  # the storage is kept alive: ids stay unique
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.ones(1, length, dtype=torch.long))
    return sum(n for n, _ in storages.values())


def _tensor_bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0
