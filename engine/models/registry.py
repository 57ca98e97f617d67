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

Adding a model: one file with its config (a ModelConfig subclass with its LIMITS) and its module (a
SequenceModel: forward, init_state, step), plus one `register(ModelSpec(...))` line below. Every command,
tab, plot and the evaluation then know it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from engine.core.errors import UserError
from engine.models.attention_rnn import AttentionRNN, AttentionRNNConfig
from engine.models.base import DEFAULT_VOCAB_SIZE, ModelConfig, SequenceModel
from engine.models.mingru import MinGRUConfig, MinGRULM
from engine.models.recurrent import RecurrentConfig, RecurrentLM
from engine.models.ssm import SelectiveSSM, SSMConfig
from engine.models.transformer import TransformerConfig, TransformerLM

DEFAULT_PRESET = "small"
# The training crop of each preset, and the attention span of the attention models.
PRESET_WINDOWS = {"tiny": 64, "small": 256, "medium": 512}


@dataclass(frozen=True)
class ModelSpec:
    """One model as the rest of the app knows it: key (CLI, files), label and colour (plots, legends),
    its config and module classes, and its sizes per preset (config fields; the window is the preset's)."""

    key: str
    label: str
    colour: str
    config_cls: type[ModelConfig]
    model_cls: type[SequenceModel]
    sizes: dict[str, dict]
    group: str = "other"  # a key of GROUPS: where the Train tab lists it, and whether it is ticked by default
    about: str = ""  # two or three sentences for a student, with the reference (the app's Help shows them)


# The Train tab's groups, in order; the seed's five (seed.md) are the default selection.
GROUPS = {"seed": "the seed's five", "modern": "modern parallel RNNs", "other": "other models"}
DEFAULT_GROUP = "seed"
# The seed's baseline: the vanilla tanh RNN whose short memory the app is about (the classroom figure
# checks that it ends worst).
BASELINE = "rnn"
# What the modern parallel RNNs' training speed is measured against, per parameter (issue 22): the gated RNN that
# minGRU ablates.
SPEED_REFERENCE = "gru"


# Names a report gives beside model keys: the reference sources "human" and "floor", and the influence block's
# own keys (engine.evaluation.report_file.INFLUENCE_KEYS: each model's entry sits at influence.<model>).
RESERVED_KEYS = frozenset({"human", "floor", "method", "bars", "primers", "temperature", "repeats", "models"})


# Views of the registry, kept in step by register() (modules import them once, so they change in place).
MODEL_KEYS: list[str] = []
MODEL_COLOURS: dict[str, str] = {}
MODEL_LABELS: dict[str, str] = {}
PRESETS: dict[str, dict[str, ModelConfig]] = {name: {} for name in PRESET_WINDOWS}
_SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    """Add a model to every list, menu, plot and command (its key must be new)."""
    if spec.key in _SPECS:
        raise ValueError(f"model {spec.key!r} is registered already")
    if spec.key in RESERVED_KEYS:
        raise ValueError(f"model key {spec.key!r} is a name the report gives beside the models; choose another")
    if spec.group not in GROUPS:
        raise ValueError(f"model {spec.key!r}: group {spec.group!r} is not one of {sorted(GROUPS)}")
    for method in ("embed_tokens", "forward_embedded", "init_state", "step"):
        if getattr(spec.model_cls, method) is getattr(SequenceModel, method):
            raise ValueError(f"model {spec.key!r}: {spec.model_cls.__name__} does not implement {method}() "
                             "(engine/models/base.py lists what a model implements)")
    missing = set(PRESET_WINDOWS) - set(spec.sizes)
    if missing:
        raise ValueError(f"model {spec.key!r} has no sizes for preset(s) {sorted(missing)}")
    _SPECS[spec.key] = spec
    MODEL_KEYS.append(spec.key)
    MODEL_COLOURS[spec.key] = spec.colour
    MODEL_LABELS[spec.key] = spec.label
    for preset, window in PRESET_WINDOWS.items():
        PRESETS[preset][spec.key] = spec.config_cls(key=spec.key, window=window, **spec.sizes[preset])


def spec(key: str) -> ModelSpec:
    return _SPECS[key]


def models_in_group(group: str) -> list[str]:
    """The registered models of one group, in registration order."""
    return [k for k in MODEL_KEYS if _SPECS[k].group == group]


def default_selection() -> list[str]:
    """What the Train tab ticks and `train` trains when no models are named: the seed's five."""
    return models_in_group(DEFAULT_GROUP)


def models_with_attention(keys=None) -> list[str]:
    """The models (of `keys`, default all) that offer attention weights."""
    return [k for k in (MODEL_KEYS if keys is None else keys) if _SPECS[k].model_cls.has_attention]


def unregister(key: str) -> None:
    """Remove a model added by register() (tests register toy models)."""
    _SPECS.pop(key)
    MODEL_KEYS.remove(key)
    MODEL_COLOURS.pop(key)
    MODEL_LABELS.pop(key)
    for table in PRESETS.values():
        table.pop(key, None)


# Sizes solved for parameter matching (hidden sizes in multiples of 4); see the table in the docstring.
register(ModelSpec("rnn", "vanilla RNN", "#d62728", RecurrentConfig, RecurrentLM, {
    "tiny": dict(cell="rnn", embed_dim=16, hidden_size=136),
    "small": dict(cell="rnn", embed_dim=64, hidden_size=396),
    "medium": dict(cell="rnn", embed_dim=128, hidden_size=912)}, group="seed"))
register(ModelSpec("lstm", "LSTM", "#1f77b4", RecurrentConfig, RecurrentLM, {
    "tiny": dict(cell="lstm", embed_dim=16, hidden_size=68),
    "small": dict(cell="lstm", embed_dim=64, hidden_size=188),
    "medium": dict(cell="lstm", embed_dim=128, hidden_size=432)}, group="seed"))
register(ModelSpec("gru", "GRU", "#2ca02c", RecurrentConfig, RecurrentLM, {
    "tiny": dict(cell="gru", embed_dim=16, hidden_size=80),
    "small": dict(cell="gru", embed_dim=64, hidden_size=220),
    "medium": dict(cell="gru", embed_dim=128, hidden_size=508)}, group="seed"))
register(ModelSpec("attention", "RNN + attention", "#9467bd", AttentionRNNConfig, AttentionRNN, {
    "tiny": dict(embed_dim=16, hidden_size=76),
    "small": dict(embed_dim=64, hidden_size=212),
    "medium": dict(embed_dim=128, hidden_size=476)}, group="seed"))
register(ModelSpec("transformer", "Transformer", "#ff7f0e", TransformerConfig, TransformerLM, {
    "tiny": dict(d_model=32, n_layers=2, n_heads=2),
    "small": dict(d_model=88, n_layers=2, n_heads=2),
    "medium": dict(d_model=128, n_layers=5, n_heads=4)}, group="seed"))
register(ModelSpec("ssm", "selective SSM (Mamba-style)", "#8c564b", SSMConfig, SelectiveSSM, {
    "tiny": dict(d_model=36, n_layers=2, d_state=8, dt_rank=16),
    "small": dict(d_model=120, n_layers=2, d_state=8, dt_rank=8),
    "medium": dict(d_model=276, n_layers=2, d_state=8, dt_rank=16)}, group="modern", about=(
    "A linear recurrence over many small decaying states, like an RNN, but 'selective': how much each "
    "step writes and how fast the state forgets (the step size, B and C) depend on the current note, so it "
    "can choose to hold a theme or let it go. Because the state is updated linearly, training computes all "
    "steps at once with a parallel scan, while generation steps one note at a time with a fixed-size state; "
    "its memory should fade smoothly, further than a vanilla RNN's. Gu & Dao 2023, \"Mamba: Linear-Time "
    "Sequence Modeling with Selective State Spaces\".")))
register(ModelSpec("mingru", "minGRU (parallel RNN)", "#17becf", MinGRUConfig, MinGRULM, {
    "tiny": dict(d_model=44, n_layers=2, expand=2),
    "small": dict(d_model=124, n_layers=2, expand=2),
    "medium": dict(d_model=284, n_layers=2, expand=2)}, group="modern", about=(
    "The GRU with its gates reading only the current note, not the previous hidden state: the update "
    "h = (1 - z) h + z h~ becomes linear in h, so training computes every step at once with a scan in "
    "log space, and generation still runs step by step with a fixed-size state. It is the GRU's ablation "
    "partner: if its memory curve falls below the GRU's, the hidden-state dependence of the gates mattered. "
    "Feng et al. 2024, \"Were RNNs All We Needed?\"; the scan after Heinsen 2023.")))


def model_config(key: str, preset: str = DEFAULT_PRESET, vocab_size: int = DEFAULT_VOCAB_SIZE, **overrides) -> ModelConfig:
    """The config of model `key` in `preset`, with the vocabulary size and any field overridden."""
    if key not in MODEL_KEYS:
        raise UserError(f"unknown model {key!r}: choose from {', '.join(MODEL_KEYS)}")
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose from {', '.join(PRESETS)}")
    return replace(PRESETS[preset][key], vocab_size=vocab_size, **overrides)


def build_model(key: str, preset: str = DEFAULT_PRESET, vocab_size: int = DEFAULT_VOCAB_SIZE, **overrides) -> SequenceModel:
    """A freshly initialised model (uses torch's global RNG: seed it first for reproducible weights)."""
    return model_from_config(model_config(key, preset, vocab_size, **overrides))


def config_from_dict(doc: dict, where: str | None = None) -> ModelConfig:
    """A model config from its to_dict() (as stored in a checkpoint's config.json), every field range-checked
    (ModelConfig.validate): a malformed or tampered config is a UserError naming `where` and the field."""
    prefix = f"{where}: " if where else ""
    key = doc.get("key") if isinstance(doc, dict) else None
    if key not in _SPECS:
        raise UserError(f"{prefix}unknown model {key!r}: choose from {', '.join(MODEL_KEYS)}")
    config_cls = _SPECS[key].config_cls
    unknown = set(doc) - {f.name for f in fields(config_cls)}
    if unknown:
        raise UserError(f"{prefix}unknown model config fields {sorted(map(str, unknown))}")
    try:
        config = config_cls(**doc)
    except TypeError as exc:
        raise UserError(f"{prefix}unreadable model config ({exc})") from None
    config.validate(where)
    return config


def model_from_config(config: ModelConfig | dict, where: str | None = None) -> SequenceModel:
    """Build a model from a config object or its to_dict(); the config is checked before any memory is allocated."""
    if isinstance(config, dict):
        config = config_from_dict(config, where)
    else:
        config.validate(where)
    return _SPECS[config.key].model_cls(config)
