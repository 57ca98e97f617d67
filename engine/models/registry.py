"""The five models as a registry of configs (after Magenta's melody_rnn): key x preset -> config.

Presets are parameter-matched: inside a preset every model has within 10% of the others' parameters
(tests/test_models.py checks it), so a difference between models is the architecture, not its size.
Sizes below were solved for that (hidden sizes in multiples of 4):

    preset  window  params (rnn / lstm / gru / attention / transformer), vocab 52
    tiny      64    28.9k / 27.8k / 28.6k / 29.4k / 28.5k      for tests; trains in seconds
    small    256     207k /  204k /  204k /  208k /  197k      the default
    medium   512     1.00M / 1.00M / 1.01M / 1.00M / 1.00M

Window (the training crop, and the attention span of `attention` and `transformer`): 256 steps in
`small` is 16 bars of 4/4 on the 16th grid: a folk tune's 8-bar strain and its repeat, so that a model
sees within one crop the repetition it should learn to exploit. `medium` sees 32 bars, a whole AABB
tune. `tiny` keeps tests fast.

Transformer shapes: `small` is 2 layers of width 88 with 2 heads of 44 rather than 4 layers of 64 with
4 heads of 16: two layers are what copying an earlier bar needs (an induction head is a two-layer
circuit), and on a CPU, attention with heads of 16 channels ran at a third of the GEMM rate (measured:
mfu 0.37 for 4 x 64 against 0.53 for 2 x 88, the same parameter budget, `python main.py bench`).
"""

from __future__ import annotations

from dataclasses import fields, replace

from ..errors import UserError
from .attention_rnn import AttentionRNN, AttentionRNNConfig
from .base import ModelConfig, SequenceModel
from .recurrent import RecurrentConfig, RecurrentLM
from .transformer import TransformerConfig, TransformerLM

MODEL_KEYS = ("rnn", "lstm", "gru", "attention", "transformer")

MODEL_COLOURS = {
    "rnn": "#d62728",
    "lstm": "#1f77b4",
    "gru": "#2ca02c",
    "attention": "#9467bd",
    "transformer": "#ff7f0e",
}

MODEL_LABELS = {
    "rnn": "vanilla RNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "attention": "RNN + attention",
    "transformer": "Transformer",
}

DEFAULT_PRESET = "small"


def _presets() -> dict[str, dict[str, ModelConfig]]:
    table = {
        # preset: (window, embed_dim, rnn H, lstm H, gru H, attention H, (d_model, layers, heads))
        "tiny": (64, 16, 136, 68, 80, 76, (32, 2, 2)),
        "small": (256, 64, 396, 188, 220, 212, (88, 2, 2)),
        "medium": (512, 128, 912, 432, 508, 476, (128, 5, 4)),
    }
    presets = {}
    for name, (window, e, h_rnn, h_lstm, h_gru, h_att, (d, layers, heads)) in table.items():
        presets[name] = {
            "rnn": RecurrentConfig(key="rnn", window=window, cell="rnn", embed_dim=e, hidden_size=h_rnn),
            "lstm": RecurrentConfig(key="lstm", window=window, cell="lstm", embed_dim=e, hidden_size=h_lstm),
            "gru": RecurrentConfig(key="gru", window=window, cell="gru", embed_dim=e, hidden_size=h_gru),
            "attention": AttentionRNNConfig(key="attention", window=window, embed_dim=e, hidden_size=h_att),
            "transformer": TransformerConfig(
                key="transformer", window=window, d_model=d, n_layers=layers, n_heads=heads
            ),
        }
    return presets


PRESETS: dict[str, dict[str, ModelConfig]] = _presets()

_FAMILIES = {
    "rnn": (RecurrentConfig, RecurrentLM),
    "lstm": (RecurrentConfig, RecurrentLM),
    "gru": (RecurrentConfig, RecurrentLM),
    "attention": (AttentionRNNConfig, AttentionRNN),
    "transformer": (TransformerConfig, TransformerLM),
}


def model_config(key: str, preset: str = DEFAULT_PRESET, vocab_size: int = 52, **overrides) -> ModelConfig:
    """The config of model `key` in `preset`, with the vocabulary size and any field overridden."""
    if key not in MODEL_KEYS:
        raise UserError(f"unknown model {key!r}: choose from {', '.join(MODEL_KEYS)}")
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose from {', '.join(PRESETS)}")
    return replace(PRESETS[preset][key], vocab_size=vocab_size, **overrides)


def build_model(key: str, preset: str = DEFAULT_PRESET, vocab_size: int = 52, **overrides) -> SequenceModel:
    """A freshly initialised model (uses torch's global RNG: seed it first for reproducible weights)."""
    return model_from_config(model_config(key, preset, vocab_size, **overrides))


def model_from_config(config: ModelConfig | dict) -> SequenceModel:
    """Build from a config object or its to_dict() (as stored in a checkpoint's config.json).

    Raises ValueError / KeyError / TypeError on a malformed dict; the checkpoint loader turns those
    into a UserError naming the file."""
    if isinstance(config, dict):
        key = config["key"]
        config_cls = _FAMILIES[key][0]
        names = {f.name for f in fields(config_cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}")
        config = config_cls(**config)
    return _FAMILIES[config.key][1](config)
