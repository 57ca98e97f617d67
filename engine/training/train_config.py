"""The training settings as one typed, range-checked dataclass: what the CLI's flags, the Train tab's
fields and a run's files all become before anything is built.

`TrainConfig.validate()` is the only check (engine/core/validation.py says how messages read); `from_dict`
reads a saved config (config.json's "training", run.json) strictly; `resolved()` fills the defaults that
depend on other fields (window, evaluation and checkpoint intervals) once, so a run's files record the
values it really used and a resume reuses them exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from engine.core.errors import SettingError, UserError
from engine.core.settings import Setting, Settings
from engine.core.validation import Limit, known_fields
from engine.models import PRESET_WINDOWS, PRESETS

# Tokens in one batch (batch x window): bounds the memory a typo can ask for (1M tokens is ~3 GB of
# LSTM activations) long before anything is allocated.
MAX_BATCH_TOKENS = 1 << 20
# Whole tunes longer than this are cut into pieces of this length (2 of the 3,626 bundled training tunes).
DEFAULT_MAX_LEN = 2048



@dataclass
class TrainConfig:
    preset: str = "small"
    steps: int = 1500
    batch_size: int = 32  # rows of window tokens; with sequences="tunes", batch_size x window tokens per batch
    window: int | None = None  # None: the preset's window (training crop; attention span of the attention models)
    lr: float = 6e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    transpose: int = 5  # random transposition of each sequence by -5..+5 semitones (kept in range)
    seed: int = 0
    eval_every: int | None = None  # None: about 30 validations over the run
    save_every: int | None = None  # None: at every validation
    log_every: int | None = None  # None: every 10 steps (or every validation, if that is more often)
    max_valid_windows: int = 256  # caps validation cost: a fixed, evenly spaced subset of sequences
    device: str = "auto"
    threads: int | None = None  # torch CPU threads per training process; None: the cores / the processes
    processes: int | None = None  # training processes; None: one per core, at most one per model
    # "bf16": autocast where the device supports it; "auto": bf16 where the hardware has it. Off by default: on
    # this project's CPU bf16 is ~1.3x faster but the vanilla RNN ends 0.03 bits worse (docs/sweep/).
    precision: str = "fp32"
    sequences: str = "tunes"  # "tunes": whole tunes from their start; "crops": random window-long crops
    max_len: int = DEFAULT_MAX_LEN  # with sequences="tunes": longer tunes are cut into pieces this long
    # Early stopping (engine/training/early_stop.py): stop a model once this many validations in a row
    # improved on its best by no more than min_delta bits per token. None: run all `steps` (the classroom recipe).
    patience: int | None = None
    min_delta: float = 0.001
    # With patience: a plateau first multiplies the model's learning rate by lr_drop (at most lr_drops times);
    # only a plateau after the last drop stops it. None: a plateau stops the model at once.
    lr_drop: float | None = None
    lr_drops: int = 0
    # With patience: the plateau that would stop a model stops it only once its validation fell by less than
    # flat_gain bits per token over the last quarter of its steps (early_stop.late_gain). None: at once.
    flat_gain: float | None = None

    def validate(self, where: str | None = None, names: dict[str, str] | None = None) -> TrainConfig:
        """Range-check every field (UserError naming it, where it came from and its range); returns self."""
        TRAIN_SETTINGS.check(self, where, names)
        betas = self.betas
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise UserError(f"{where + ': ' if where else ''}betas must be two numbers in [0, 1), not {betas!r}")
        self.betas = tuple(Limit("float", 0, 0.999999).check(b, "betas", where) for b in betas)
        window = self.resolved_window()
        if self.batch_size * window > MAX_BATCH_TOKENS:
            raise SettingError(TRAIN_SETTINGS["batch_size"], f"x window = {self.batch_size} x {window} tokens per batch; "
                               f"at most {MAX_BATCH_TOKENS:,} fit in memory", where, (names or {}).get("batch_size"))
        return self

    def resolved_window(self) -> int:
        return self.window or PRESET_WINDOWS[self.preset]

    def resolved(self) -> TrainConfig:
        """A copy with every default that depends on other fields filled in (what a run's files record)."""
        eval_every = self.eval_every or min(250, max(10, self.steps // 30))
        return replace(
            self,
            window=self.resolved_window(),
            eval_every=eval_every,
            save_every=self.save_every or eval_every,
            log_every=self.log_every or min(10, eval_every),
        )

    def warmup(self) -> int:
        """Warm-up steps actually used: short runs (tests, demos) keep most of their budget."""
        return min(self.warmup_steps, self.steps // 10)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, doc, where: str = "training settings") -> TrainConfig:
        """Read a saved config strictly: unknown fields and out-of-range values are UserErrors naming `where`.

        Runs saved before a field existed get the value they were trained with, not today's default."""
        doc = known_fields({k: v for k, v in (doc or {}).items() if k not in _NOT_FIELDS} if isinstance(doc, dict)
                           else doc, cls, where, "training")
        for name, old_default in _BEFORE_IT_EXISTED.items():
            doc.setdefault(name, old_default)
        try:
            config = cls(**doc)
        except TypeError as exc:
            raise UserError(f"{where}: unreadable training settings ({exc})") from None
        return config.validate(where, {f.name: f"training.{f.name}" for f in fields(cls)})


# The one definition of every training setting (engine/core/settings.py): the CLI's flags, the Train tab's
# fields, validation and docs/settings.md are built from it; the defaults are TrainConfig's own.
TRAIN_SETTINGS = Settings(
    TrainConfig,
    Setting("preset", "Model size", Limit("choice", choices=tuple(PRESETS)),
            "model sizes, parameter-matched across models (tiny is for tests)"),
    Setting("steps", "Steps", Limit("int", 1, 10_000_000), "optimizer steps per model", unit="steps"),
    Setting("batch_size", "Batch size", Limit("int", 1, 4096),
            "rows per batch: whole tunes (up to batch x window tokens) or window-long crops"),
    Setting("window", "Window", Limit("int", 8, 8192, optional=True),
            "training crop and attention span in steps (16 steps = one 4/4 bar); unset: the preset's", unit="steps"),
    Setting("lr", "Learning rate", Limit("float", 0, 1, lo_open=True), "peak learning rate (cosine decay after warm-up)"),
    Setting("min_lr_ratio", "Final learning rate ratio", Limit("float", 0, 1), "the cosine decays to lr x this"),
    Setting("warmup_steps", "Warm-up steps", Limit("int", 0, 10_000_000), "linear warm-up (at most a tenth of the steps)"),
    Setting("weight_decay", "Weight decay", Limit("float", 0, 1), "AdamW weight decay on the models' matrices"),
    Setting("grad_clip", "Gradient clip", Limit("float", 0, 1e6, lo_open=True), "largest gradient norm"),
    Setting("transpose", "Transposition", Limit("int", 0, 24),
            "random transposition of each sequence by up to this many semitones", unit="semitones"),
    Setting("seed", "Seed", Limit("int", 0, 2**32 - 1), "seed of the initial weights and the batches"),
    Setting("eval_every", "Validate every", Limit("int", 1, 10_000_000, optional=True),
            "validate every N steps; unset: about 30 times a run", unit="steps"),
    Setting("save_every", "Checkpoint every", Limit("int", 1, 10_000_000, optional=True),
            "checkpoint every N steps; unset: at every validation", unit="steps"),
    Setting("log_every", "Log every", Limit("int", 1, 10_000_000, optional=True),
            "log the training loss every N steps; unset: every 10 steps", unit="steps"),
    Setting("max_valid_windows", "Validation sequences", Limit("int", 1, 1_000_000),
            "caps the validation cost: a fixed, evenly spaced subset"),
    Setting("device", "Device", Limit("choice", choices=("auto", "cpu", "cuda", "mps")),
            "where to train: auto picks CUDA, then MPS, then the CPU"),
    Setting("threads", "Threads per process", Limit("int", 1, 1024, optional=True),
            "torch CPU threads per training process; unset: the cores / the processes"),
    Setting("processes", "Training processes", Limit("int", 1, 64, optional=True),
            "training processes on a CPU; unset: one per core, at most one per model"),
    Setting("precision", "Precision", Limit("choice", choices=("auto", "fp32", "bf16")),
            "bf16 autocast where the hardware has it natively (auto), or always fp32"),
    Setting("sequences", "Sequences", Limit("choice", choices=("tunes", "crops")),
            "train on whole tunes from their start, or on random window-long crops"),
    Setting("max_len", "Longest sequence", Limit("int", 16, 65536),
            "with whole tunes: longer tunes are cut into pieces this long", unit="steps"),
    Setting("patience", "Early-stopping patience", Limit("int", 1, 10_000, optional=True),
            "stop a model after this many validations without an improvement of more than min-delta; unset: off"),
    Setting("min_delta", "Early-stopping threshold", Limit("float", 0, 1),
            "the smallest improvement in bits per token that early stopping counts", unit="bits"),
    Setting("lr_drop", "Learning-rate drop on a plateau", Limit("float", 0, 1, lo_open=True, optional=True),
            "with patience: a plateau multiplies the model's learning rate by this (up to lr-drops times) "
            "before one stops it; unset: a plateau stops the model"),
    Setting("lr_drops", "Learning-rate drops", Limit("int", 0, 100),
            "with lr-drop: how many times a plateau lowers the learning rate before one stops the model"),
    Setting("flat_gain", "Flat last quarter", Limit("float", 0, 10, lo_open=True, optional=True),
            "with patience: the last plateau stops a model only once validation fell by less than this over "
            "the last quarter of its steps; unset: at once", unit="bits", unset="off"),
)


# Written beside the settings by older versions (not settings themselves): skipped when reading.
_NOT_FIELDS = {"ranks"}
# Fields added after runs were first saved, with the behaviour those runs had.
_BEFORE_IT_EXISTED = {"sequences": "crops", "precision": "fp32", "processes": 1, "patience": None, "min_delta": 0.001,
                      "lr_drop": None, "lr_drops": 0, "flat_gain": None}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warm-up, then cosine to min_lr."""
    warmup = cfg.warmup()
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    span = max(1, cfg.steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def converged_config(seed: int = 0) -> TrainConfig:
    """The bundled models' recipe (docs/training.md): the classroom recipe's optimiser, batches, peak rate and
    warm-up, then the peak rate held (min_lr_ratio 1: no cosine) and lowered on plateaus of the validation
    split: after `patience` validations without an improvement of more than `min_delta` bits per token, a
    model's rate is multiplied by lr_drop; the plateau after the third drop (6e-3 -> 1.8e-3 -> 5.4e-4 ->
    1.6e-4) stops it, once the last quarter of its steps gained less than flat_gain (0.01 bits per token; a
    version without that stopped every model with its third drop inside its last quarter, still 0.01-0.11 bits
    from flat). The stop is set by each model's own validation curve, flat at a low rate; the 16,000 steps are
    a budget (replayed through this rule, the longest model of the earlier version stops at 11,300).
    Validation every 100 steps makes a plateau 400 steps long: validation is cheap (a fixed subset), and a
    plateau held at the peak rate only costs time (and lets the attention RNN overfit). (A first version ran
    one cosine over the 12,000 steps with early stopping alone: at the near-peak rate the attention
    RNN's validation rose from 1.11 to 1.35 bits between steps 800 and 1,200, and it would have stopped there,
    worse than the 1,500-step classroom model.)"""
    return replace(TrainConfig(), steps=16_000, eval_every=100, min_lr_ratio=1.0, patience=4, min_delta=0.002,
                   lr_drop=0.3, lr_drops=3, flat_gain=0.01, seed=seed)


# What the converged recipe was before its last-quarter rule (flat_gain, 2026-12-07): the bundled models (seed 1)
# and seed_runs/converged-2 and -3 were trained with it. Their retrain with the recipe above runs in
# seed_runs/retrain-N (docs/training.md) and replaces them when all 21 models are done; this goes then.
CONVERGED_BEFORE_FLAT_GAIN = {"steps": 12_000, "flat_gain": None}


def classroom_config() -> TrainConfig:
    """The Train tab's defaults, which are also the CLI's: the settings that reach a visible, correct answer
    fastest on a CPU (chosen by the sweep in docs/sweep/; `main.py bench` measures them end to end as
    `classroom`). One recipe, so what Start trains is what `main.py train` trains and what is bundled."""
    return TrainConfig()
