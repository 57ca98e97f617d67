"""One estimate of a job's peak memory (training, generation, evaluation, influence), made from its settings before
anything is allocated, shown to the person, and refused above a share of the machine's memory.

Every range check of a single setting can pass while their product asks for tens of gigabytes (a config
of 7 G parameters, a batch of 128 windows of 8192 steps through attention); the allocator's error, or the
kernel's OOM killer, then ends the job after its work has started. Here the settings are multiplied out
first. What a model costs comes from the model itself (engine/training/footprint.py counts its parameters
on the meta device and measures what it keeps for backward per token); this module only adds it up, so it
imports nothing above the core.

The estimate is deliberately generous (the allocator's slack, gradients beside activations, a checkpoint's
copy of the weights): it is meant to refuse what cannot fit, not to predict the last megabyte.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from engine.core.errors import UserError

SHARE = 0.8  # of the memory available now (MemAvailable): what a job may plan to use
BUDGET_VARIABLE = "MELODY_MEMORY_BUDGET_MB"  # a person who knows better sets the limit in MB
PROCESS_BYTES = 400 * 2**20  # Python, torch and numpy in one process, before any model (measured ~300 MB RSS)
FLOAT = 4  # bytes; every model trains and runs in float32 (bf16 autocast only makes activations smaller)
# Activations: those kept for backward (measured per token), their gradients and the allocator's slack.
ACTIVATION_FACTOR = 3
# Weights, their gradients, AdamW's two moments, and the CPU copy a checkpoint makes of all of them.
TRAINING_BYTES_PER_PARAM = 5 * FLOAT
# Attention scores, their softmax and its gradient, per score.
ATTENTION_BYTES_PER_SCORE = 3 * FLOAT
DOUBLE = 8  # bytes; the influence attribution's tables are float64
# The influence attribution's notes x steps tables: the step weights, their normalised copy, the steps'
# ownership by notes and the notes' weights (engine/memory/influence.py).
INFLUENCE_TABLES = 4

_LIMIT_HELP = (f"it refuses to start when the estimate is above {SHARE:.0%} of the memory available (MemAvailable), "
               f"naming the settings to lower. {BUDGET_VARIABLE}=N sets another limit, in MB.")
HELP = ("Memory: before any work the command estimates its peak memory from the settings (the models' "
        "weights and optimizer state, the activations of one batch as each model reports them, attention's "
        "batch x window^2 x heads per layer (whole tunes: also the longest piece, up to --max-len), a process "
        "per worker) and prints it; " + _LIMIT_HELP)
INFLUENCE_HELP = ("Memory: once the primer is read, and before the model is loaded, the command estimates its peak "
                  "memory from the model's config and the settings (its weights, composing the continuation, the "
                  "attribution's forward and backward of 16 copies of primer and continuation at a time, or with "
                  "--method attention every head's weights over them, and float64 tables of notes x steps: the "
                  "cost grows with the square of the primer's and the continuation's bars) and prints it; "
                  + _LIMIT_HELP)


@dataclass(frozen=True)
class ModelNeeds:
    """What one model costs, as the model reports it (engine/training/footprint.py)."""

    key: str
    params: int
    weight_bytes: int  # its state dict (parameters and buffers)
    window: int  # the most keys one of its attention queries sees
    vocab_size: int
    state_bytes: int = 0  # one sequence's generation state (hidden state, a key/value cache)
    activation_bytes_per_token: float = 0.0  # what a forward keeps for backward, per token
    attention_heads: int = 0  # attention heads summed over its layers (0: no attention)


@dataclass
class Estimate:
    """A job's estimated peak memory, in named parts (bytes)."""

    job: str  # "training", "generation", "evaluation"
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return int(sum(self.parts.values()))

    def describe(self) -> str:
        parts = ", ".join(f"{name} {size_text(b)}" for name, b in self.parts.items() if b >= 2**20)
        return f"about {size_text(self.total)} ({parts})"


def size_text(n: float) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def machine_memory() -> tuple[int | None, int | None]:
    """(available, total) bytes of this machine's memory: MemAvailable and MemTotal from /proc/meminfo, else
    what os.sysconf knows (free pages stand in for available); None where the OS does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        kb = {name: int(fields[name].split()[0]) * 1024 for name in ("MemAvailable", "MemTotal") if name in fields}
        if "MemTotal" in kb:
            return kb.get("MemAvailable", kb["MemTotal"]), kb["MemTotal"]
    except (OSError, ValueError):
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        available = os.sysconf("SC_AVPHYS_PAGES") * page if "SC_AVPHYS_PAGES" in os.sysconf_names else total
        return available, total
    except (AttributeError, ValueError, OSError):
        return None, None


def budget() -> tuple[int | None, str]:
    """(bytes a job may plan to use, how that limit was chosen); None when nothing is known."""
    given = os.environ.get(BUDGET_VARIABLE, "").strip()
    if given:
        try:
            mb = float(given)
            if not (math.isfinite(mb) and mb > 0):
                raise ValueError
        except ValueError:
            raise UserError(f"{BUDGET_VARIABLE} must be a number of MB above 0, not {given!r}") from None
        return int(mb * 2**20), f"{BUDGET_VARIABLE}={given}"
    available, total = machine_memory()
    if available is None:
        return None, "this system does not say how much memory it has"
    return int(SHARE * available), (f"{SHARE:.0%} of the {size_text(available)} available now, of "
                                    f"{size_text(total)}")


def check(estimate: Estimate, lower: str) -> str:
    """UserError when the estimate is above the budget, naming what to lower; else the line to show."""
    limit, how = budget()
    if limit is not None and estimate.total > limit:
        raise UserError(f"{estimate.job} would need {estimate.describe()} of memory; this machine allows "
                        f"{size_text(limit)} ({how}): lower {lower}")
    allowed = f"; allowed {size_text(limit)}: {how}" if limit is not None else ""
    return f"memory: {estimate.job} needs {estimate.describe()}{allowed}"


# ---------------------------------------------------------------------------------------- the four jobs


# engine/models/attention_rnn.sliding_window_attention: a sequence shorter than this many windows is scored in
# full (a [T, T] mask), a longer one in blocks of two windows per query.
FULL_MASK_WINDOWS = 4


def attention_scores(needs: ModelNeeds, rows: int, length: int) -> int:
    """Attention scores a forward of `rows` sequences of `length` holds, in every head of every layer: each
    query scores every earlier position of a sequence shorter than FULL_MASK_WINDOWS windows (the sliding
    window is a mask over the full [T, T] scores), two windows of keys in a longer one. For training crops
    that is batch x window^2 x heads per layer."""
    keys = length if length < FULL_MASK_WINDOWS * needs.window else 2 * needs.window
    return rows * length * keys * needs.attention_heads


def _forward_bytes(needs: ModelNeeds, rows: int, length: int) -> float:
    """One forward and backward of `rows` x `length` tokens: activations, attention scores, logits."""
    tokens = rows * length
    return (ACTIVATION_FACTOR * (needs.activation_bytes_per_token + FLOAT * needs.vocab_size) * tokens
            + ATTENTION_BYTES_PER_SCORE * attention_scores(needs, rows, length))


def training(models: list[ModelNeeds], shapes: list[tuple[int, int]], processes: int) -> Estimate:
    """Training `models` side by side, `processes` of them at a time, on batches of (rows, length) tokens:
    the costliest of `shapes` (crops: batch x window; whole tunes: also the longest piece, max_len)."""
    busy = max(1, min(processes, len(models)))  # each process steps one model at a time
    heaviest = sorted((max(_forward_bytes(m, rows, length) for rows, length in shapes) for m in models),
                      reverse=True)[:busy]
    return Estimate("training", {
        "processes": PROCESS_BYTES * busy,
        "weights and optimizer": TRAINING_BYTES_PER_PARAM * sum(m.params for m in models),
        "activations": sum(heaviest),
    })


def generation(models: list[ModelNeeds], variations: int, steps: int) -> Estimate:
    """Composing `steps` tokens in `variations` rows with each model in turn (weights loaded from a file:
    the file's bytes and the tensors, at once)."""
    return Estimate("generation", {
        "process": PROCESS_BYTES,
        "weights": 2 * sum(m.weight_bytes for m in models),
        "decoding": max((_decoding_bytes(m, variations, steps) for m in models), default=0),
    })


def _decoding_bytes(needs: ModelNeeds, rows: int, steps: int) -> float:
    """`rows` sequences decoded token by token: their states (and a copy), the tokens and scores kept, and
    the activations of one step (no gradients: nothing else is kept)."""
    return rows * (2 * needs.state_bytes + FLOAT * needs.vocab_size * steps) + _forward_bytes(needs, rows, 1)


def evaluation(models: list[ModelNeeds], decoding_rows: int, steps: int, measure_rows: int, measure_length: int,
               probe: list[ModelNeeds] = (), probe_batch: int = 0, probe_length: int = 0) -> Estimate:
    """The protocol: every model loaded; continuations decoded `decoding_rows` at a time, `steps` long; the
    model-side measures teacher-forced (with gradients) on `measure_rows` x `measure_length` tokens at a
    time; the probe trains fresh models on batches of `probe_batch` x `probe_length`."""
    return Estimate("evaluation", {
        "process": PROCESS_BYTES,
        "weights": 2 * sum(m.weight_bytes for m in models),
        "decoding": max((_decoding_bytes(m, decoding_rows, steps) for m in models), default=0),
        "teacher-forced measures": max((_forward_bytes(m, measure_rows, measure_length) for m in models), default=0),
        "probe": max((TRAINING_BYTES_PER_PARAM * m.params + _forward_bytes(m, probe_batch, probe_length)
                      for m in probe), default=0),
    })


def influence(model: ModelNeeds, length: int, new_steps: int, rows: int, attention: bool) -> Estimate:
    """Composing `new_steps` tokens with one model, then attributing each new note over the `length` tokens of
    primer and continuation: the gradient method runs forward and backward on `rows` copies of the piece at a
    time; the attention method one forward that keeps every head's [length, length] weights in every layer
    (and their float64 copy). Both fill float64 tables of notes x steps (notes <= steps): the cost grows with
    the square of the length."""
    if attention:
        attribution = _forward_bytes(model, 1, length) + (FLOAT + DOUBLE) * model.attention_heads * length**2
    else:
        attribution = _forward_bytes(model, rows, length)
    return Estimate("influence", {
        "process": PROCESS_BYTES,
        "weights": 2 * model.weight_bytes,
        "decoding": _decoding_bytes(model, 1, new_steps),
        "attribution": attribution,
        "tables": INFLUENCE_TABLES * DOUBLE * length**2,
    })
