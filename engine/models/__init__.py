"""The five sequence models behind one interface (base.SequenceModel) and their registry."""

from .base import ModelConfig, SequenceModel
from .registry import (
    DEFAULT_PRESET,
    MODEL_COLOURS,
    MODEL_KEYS,
    MODEL_LABELS,
    PRESETS,
    build_model,
    model_config,
    model_from_config,
)

__all__ = [
    "DEFAULT_PRESET",
    "MODEL_COLOURS",
    "MODEL_KEYS",
    "MODEL_LABELS",
    "PRESETS",
    "ModelConfig",
    "SequenceModel",
    "build_model",
    "model_config",
    "model_from_config",
]
