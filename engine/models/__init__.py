"""The five sequence models behind one interface (base.SequenceModel) and their registry."""

from .base import ModelConfig, SequenceModel
from .registry import (
    DEFAULT_PRESET,
    MODEL_COLOURS,
    MODEL_KEYS,
    MODEL_LABELS,
    PRESET_WINDOWS,
    PRESETS,
    ModelSpec,
    build_model,
    config_from_dict,
    model_config,
    model_from_config,
    register,
    unregister,
)

__all__ = [
    "DEFAULT_PRESET",
    "MODEL_COLOURS",
    "MODEL_KEYS",
    "MODEL_LABELS",
    "PRESETS",
    "PRESET_WINDOWS",
    "ModelSpec",
    "ModelConfig",
    "SequenceModel",
    "build_model",
    "config_from_dict",
    "model_config",
    "model_from_config",
    "register",
    "unregister",
]
