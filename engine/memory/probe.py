"""The synthetic theme-recall probe: a motif, g bars of filler, then the motif again.

It isolates memory from musical taste (docs/design.md section 5). Each sequence, on the 16th grid:

    bar 0          a motif: 2 half notes (a bar is the meter's, 16 steps in 4/4) drawn from an 8-note
                   scale, high register
    bars 1..g      filler: random notes of random lengths from a separate low register
    (last step of the filler is a REST: the cue "the theme comes back now")
    bar g+1        the motif again
    after it       (g bars of filler, the motif) again while the sequence lasts

A fresh model of each architecture (preset `tiny` by default: ~29k parameters each) is trained for a fixed
number of steps, with the loss on the 2 note onsets of every return of the motif only (everything else is
unpredictable by design). Accuracy = share of the onsets of the FIRST return where the model's most likely
token is the motif's note, per gap; chance = 1/8 (a model that knows the scale but not the motif).

Bars and seeds (issue 24). The first version counted gaps in 4-step "bars" (two eighth notes), so that
its "gap 8" was two real bars of 4/4; the probe's bar is now a real bar of the meter (`steps_per_bar`,
16 in 4/4), so that its gaps are the bars of the per-bar plots. Each model is trained with `seeds` seeds
(seed, seed + 1, ...): its figure is the mean, and the range over the seeds is reported beside it, because
the figures move with the seed, and with the platform (thread count and CPU kernels change the float
sums of training). Gaps 1-16 by default: 16 bars = 256 steps, past the tiny attention window (64 steps,
4 bars) and the tiny Transformer's stacked reach (126 steps, about 8 bars).

The recipe, and why (measured with tiny models, 1 thread, when the bar was 4 steps):
- A curriculum over gaps. Every batch has a top gap m: half its rows at m, the rest at shorter gaps
  (gap 0, the motif twice in a row, included), and the batch is only as long as m needs, so short-gap
  batches are cheap. m = 2 for the first half of training (where every model finds the copying trick)
  and for half the batches after it (so it is kept); otherwise m is one of the longer gaps. With one
  fixed length for all gaps and gaps mixed uniformly, `rnn`/`lstm` never left chance in 300 steps.
- Adam (AdamW without decay), learning rate 3e-3 with a short warm-up and cosine decay, gradient clip 1,
  batch 32, 600 steps. 1e-2 made the vanilla RNN and the attention RNN worse, not faster.
- With 4-step bars every model learnt the short gaps (the vanilla RNN gaps 1-2, 8-12 steps back; the
  LSTM 0.88-0.98 at gap 1). In real bars (the bundled evaluation, 600 steps, seeds 0, 1, 2; ranges over
  the seeds) the motif is 32+ steps back at gap 1, and within this budget the vanilla RNN and the LSTM
  stay at chance at every gap (0.07-0.19); the GRU holds 0.88-1.00 to gap 16; the attention RNN is
  seed-dependent at gaps 1-2 (0.13-0.89) and at chance from gap 4 (its 64-step window is 4 bars); the
  Transformer is 1.00 to gap 4 and at chance from gap 8 (its reach is 126 steps). What separates the
  models is memory learnt within one training budget, not memory they could hold: a longer budget lifts
  the weaker recurrent models, so compare models within one run of the probe.
Cost: three seeds of five tiny models took 740 s of a shared 2-core machine in the bundled evaluation
(`python main.py evaluate` prints it).

Entry point for the CLI and the GUI: `run_probe(keys, settings, progress, cancel)`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.core.settings import Setting, Settings
from engine.core.validation import Limit, check_fields
from engine.music.tokens import HOLD, REST, TokenConfig

STEPS_PER_BAR = 16  # a real 4/4 bar on the 16th grid (issue 24): gaps are bars a listener counts
MOTIF_NOTES = 2
NOTE_STEPS = STEPS_PER_BAR // MOTIF_NOTES  # two half notes
SEEDS = 3  # seeds per model: the probe's figures move with the seed (and the platform), so its spread is shown
MOTIF_PITCHES = (72, 74, 76, 77, 79, 81, 83, 84)  # C major, C5..C6
FILLER_PITCHES = tuple(range(55, 67))  # G3..F#4 chromatic: never confused with the motif
FILLER_LENGTHS = (1, 2, 4)
MIN_TRAIN_BARS = 4
WARMUP_SHARE = 0.5  # the first half of training sees only the short gaps (a curriculum) ...
WARMUP_MAX_GAP = 2  # ... up to this one
SHORT_SHARE = 0.5  # and afterwards this share of batches still do, so that the copying trick is kept


class ProbeCancelled(Exception):
    """Raised by run_probe when its cancel event is set."""


# The recipe's own fields: set by code, never typed, so checked by limits alone (PROBE_SETTINGS, after
# the dataclass, holds the two a person gives, with their flags and labels).
PROBE_LIMITS = {
    "preset": Limit("choice", choices=("tiny", "small", "medium")),
    "batch_size": Limit("int", 1, 4096),
    "learning_rate": Limit("float", 0, 1, lo_open=True),
    "eval_sequences": Limit("int", 1, 100_000),
    "max_seconds_per_model": Limit("float", 0, 86_400, optional=True, lo_open=True),
    "seed": Limit("int", 0, 2**32 - 1),
    "seeds": Limit("int", 1, 16),
    "steps_per_bar": Limit("choice", choices=(4, 8, 12, 16, 24, 32)),
}


@dataclass(frozen=True)
class ProbeSettings:
    gaps: tuple[int, ...] = (1, 2, 4, 8, 16)  # in bars of steps_per_bar; 16: past the tiny Transformer's reach
    preset: str = "tiny"
    train_steps: int = 600
    batch_size: int = 32
    learning_rate: float = 3e-3
    eval_sequences: int = 64  # per gap
    max_seconds_per_model: float | None = None  # a time cap (reported); None keeps runs reproducible
    seed: int = 0  # the first seed; the others follow it (seed + 1, ...)
    seeds: int = SEEDS  # how many seeds each model is trained with
    steps_per_bar: int = STEPS_PER_BAR  # the bar the gaps count in: 16 = 4/4 on the 16th grid
    token_config: TokenConfig = field(default_factory=TokenConfig)

    @property
    def length(self) -> int:
        """Room for the motif and one return at the longest gap."""
        return sequence_length(max(self.gaps), steps_per_bar=self.steps_per_bar)

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    @property
    def train_gaps(self) -> tuple[int, ...]:
        """Gap 0 (the motif twice in a row) is where a fresh model finds the copying trick first."""
        return tuple(sorted({0, *self.gaps}))

    @property
    def chance(self) -> float:
        return 1.0 / len(MOTIF_PITCHES)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["gaps"] = list(self.gaps)
        out["seeds"] = self.seed_list  # the seeds themselves (settings.probe.seeds)
        return out

    def validate(self) -> None:
        """Range-check the settings (the command line's flags named) before any probe model is built."""
        PROBE_SETTINGS.check(self)
        check_fields(self, PROBE_LIMITS, names={"seed": "--seed"})
        object.__setattr__(self, "gaps", tuple(sorted(self.gaps)))  # the plot's x axis runs from short to long


# What a person gives the probe (evaluate's flags, the Memory tab's fields), from one table
# (engine/core/settings.py); the seed is evaluate's own --seed.
PROBE_SETTINGS = Settings(
    ProbeSettings,
    Setting("train_steps", "Probe training steps", Limit("int", 1, 100_000), "training steps of each fresh probe model",
            flag="--probe-steps", unit="steps"),
    Setting("gaps", "Probe gaps", Limit("int", 1, 256, count=(1, 16)),
            "gaps in bars between the motif and its return", flag="--probe-gaps", unit="bars"),
)


def sequence_length(gap: int, returns: int = 1, steps_per_bar: int = STEPS_PER_BAR) -> int:
    """Steps of a sequence with the motif and `returns` returns at `gap`."""
    return (1 + returns * (gap + 1)) * steps_per_bar


def training_length(gap: int, steps_per_bar: int = STEPS_PER_BAR) -> int:
    """A training sequence at `gap`: at least 3 returns' worth of steps, so short gaps repeat several
    times per sequence, and each batch only as long as its gap needs (cost grows with the length)."""
    return max(sequence_length(gap, steps_per_bar=steps_per_bar), MIN_TRAIN_BARS * steps_per_bar)


def training_gaps(rng: np.random.Generator, settings: ProbeSettings, step: int) -> tuple[np.ndarray, int]:
    """The gaps of one training batch and its length: the curriculum.

    A batch has a top gap m: half its rows are at m, the rest at shorter gaps (gap 0 included), and it
    is only as long as m needs. m is WARMUP_MAX_GAP for the first WARMUP_SHARE of the steps and for a
    SHORT_SHARE of the later ones; otherwise any longer gap of settings.gaps."""
    gaps = np.array(settings.train_gaps)
    longer = gaps[gaps > WARMUP_MAX_GAP]
    warm = step <= settings.train_steps * WARMUP_SHARE or rng.random() < SHORT_SHARE
    top = min(WARMUP_MAX_GAP, int(gaps.max())) if warm or not longer.size else int(rng.choice(longer))
    shorter = gaps[gaps < top]
    rows = np.full(settings.batch_size, top)
    if shorter.size:
        half = settings.batch_size // 2
        rows[half:] = rng.choice(shorter, size=settings.batch_size - half)
    return rows, training_length(top, settings.steps_per_bar)


def make_batch(rng: np.random.Generator, gaps: np.ndarray, length: int, cfg: TokenConfig = TokenConfig(),
               steps_per_bar: int = STEPS_PER_BAR):
    """tokens [B, length] int64, the first return's onsets [B, MOTIF_NOTES], every return's onsets [B, length].

    After the motif, (g bars of filler, the motif) repeats until the sequence is full: short gaps give
    many returns per sequence, which is what lets a fresh model find the copying trick within a few
    hundred steps. Only the first return measures memory at gap g (later ones have a nearer copy).
    """
    batch = len(gaps)
    tokens = np.full((batch, length), HOLD, dtype=np.int64)
    returns = np.zeros((batch, length), dtype=bool)
    motif_pitch = rng.choice(MOTIF_PITCHES, size=(batch, MOTIF_NOTES))
    motif_tokens = np.array([[cfg.pitch_token(p) for p in row] for row in motif_pitch])
    onsets = np.arange(MOTIF_NOTES) * (steps_per_bar // MOTIF_NOTES)
    first = np.zeros((batch, MOTIF_NOTES), dtype=np.int64)
    for i, gap in enumerate(gaps.tolist()):
        _fill(rng, tokens[i], 0, length, cfg)
        period = (gap + 1) * steps_per_bar
        for n, start in enumerate(range(0, length - steps_per_bar + 1, period)):
            tokens[i, start : start + steps_per_bar] = HOLD
            tokens[i, start + onsets] = motif_tokens[i]
            if start > 0:
                tokens[i, start - 1] = REST  # the cue
                returns[i, start + onsets] = True
            if n == 1:
                first[i] = start + onsets
            nxt = start + steps_per_bar
            if nxt < length and tokens[i, nxt] == HOLD:  # the motif's last note ends where filler resumes
                tokens[i, nxt] = REST
    return tokens, first, returns


def _fill(rng: np.random.Generator, row: np.ndarray, start: int, stop: int, cfg: TokenConfig) -> None:
    """Random filler notes from `start` to `stop`: each a pitch of FILLER_PITCHES, then a length of FILLER_LENGTHS.

    `rng.integers(n)` picks the index: the very draws of `rng.choice` on the tuple (which, without weights, is
    integers(0, n) and an index), a seventh of its cost; it was half of the probe's time."""
    draw = rng.integers
    pitches = [cfg.pitch_token(p) for p in FILLER_PITCHES]
    n_pitches, n_lengths = len(FILLER_PITCHES), len(FILLER_LENGTHS)
    step = start
    while step < stop:
        row[step] = pitches[draw(n_pitches)]
        step += FILLER_LENGTHS[draw(n_lengths)]


def _logits(model, tokens):
    return model(tokens[:, :-1])  # logits at t predict token t+1


def _train_loss(model, tokens, returns):
    """Cross-entropy on the onsets of every return of the motif."""
    import torch

    logits = _logits(model, tokens)
    mask = returns[:, 1:]
    return torch.nn.functional.cross_entropy(logits[mask], tokens[:, 1:][mask])


def _first_return_hits(model, tokens, first):
    """Whether the most likely token at each onset of the first return is the motif's note."""
    import torch

    logits = _logits(model, tokens)
    rows = torch.arange(tokens.shape[0], device=tokens.device)[:, None]
    return logits[rows, first - 1].argmax(-1) == tokens[rows, first]


def train_probe_model(key: str, settings: ProbeSettings, progress: Callable[[dict], None] | None = None,
                      cancel: threading.Event | None = None):
    """A fresh `key` model of settings.preset trained on the probe; returns (model, training record)."""
    import torch

    from engine.models.registry import build_model

    torch.manual_seed(settings.seed)
    model = build_model(key, settings.preset, settings.token_config.vocab_size)
    device = torch.device("cpu")  # tiny models: the CPU beats a GPU's launch overhead here
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.0)
    warmup = max(1, settings.train_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, settings.train_steps) / settings.train_steps))
    )
    rng = np.random.default_rng([settings.seed, 1])
    started = time.monotonic()
    loss_value, step = float("nan"), 0
    for step in range(1, settings.train_steps + 1):
        if cancel is not None and cancel.is_set():
            raise ProbeCancelled("theme-recall probe cancelled")
        batch_gaps, length = training_gaps(rng, settings, step)
        tokens, _, returns = make_batch(rng, batch_gaps, length, settings.token_config, settings.steps_per_bar)
        loss = _train_loss(model, torch.from_numpy(tokens), torch.from_numpy(returns))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        loss_value = float(loss.detach())
        elapsed = time.monotonic() - started
        if progress is not None:
            progress({"stage": "probe", "model": key, "step": step, "steps": settings.train_steps,
                      "loss": loss_value})
        if settings.max_seconds_per_model is not None and elapsed > settings.max_seconds_per_model:
            break
    # No wall-clock time in the record: it is a result, identical between identical runs (evaluate
    # times the probe as a whole in its timings).
    record = {"train_steps": step, "final_loss": loss_value, "stopped_early": step < settings.train_steps}
    return model, record


def probe_accuracy(model, settings: ProbeSettings) -> list[float]:
    """Accuracy on the repeated motif per gap, on fresh seeded sequences (teacher-forced)."""
    import torch

    model.eval()
    rng = np.random.default_rng([settings.seed, 2])
    out = []
    with torch.inference_mode():
        for gap in settings.gaps:
            tokens, first, _ = make_batch(rng, np.full(settings.eval_sequences, gap),
                                          sequence_length(gap, steps_per_bar=settings.steps_per_bar),
                                          settings.token_config, settings.steps_per_bar)
            hits = _first_return_hits(model, torch.from_numpy(tokens), torch.from_numpy(first))
            out.append(float(hits.float().mean()))
    return out


def progress_line(event: dict) -> str:
    """A run_probe progress event in words: "gru (3 of 7), step 120/400" (", seed 2 of 3" with seeds)."""
    seeds = f", seed {event['seed_position']} of {event['seeds']}" if event.get("seeds", 1) > 1 else ""
    return (f"{event['model']} ({event['position']} of {event['models']}{seeds}), "
            f"step {event['step']}/{event['steps']}")


def progress_done(event: dict) -> tuple[int, int]:
    """How far the whole probe is at a run_probe progress event: (steps done, steps in all), over every model
    and seed."""
    per_model = event["seeds"] * event["steps"]
    done = (event["position"] - 1) * per_model + (event["seed_position"] - 1) * event["steps"] + event["step"]
    return done, event["models"] * per_model


def probe_seed(key: str, settings: ProbeSettings, progress: Callable[[dict], None] | None = None, stop=None) -> dict:
    """One model trained and tested with one seed (settings.seed): its training record with "accuracy".
    A job of its own (run_probe's workers): it seeds everything it draws."""
    model, record = train_probe_model(key, settings, progress, stop)
    record["accuracy"] = probe_accuracy(model, settings)
    return record


def run_probe(keys, settings: ProbeSettings = ProbeSettings(), progress: Callable[[dict], None] | None = None,
              cancel: threading.Event | None = None, processes: int = 1) -> dict:
    """Train and test each model on the probe with each seed (each progress event of train_probe_model also
    carries position and models, seed_position and seeds: progress_line): {"gaps", "chance", "settings", "models": {key:
    {"accuracy" (mean over seeds), "accuracy_min", "accuracy_max", "n_seeds", "by_seed": {seed: record},
    and the first seed's train_steps, final_loss, stopped_early}}}.

    With `processes` > 1 the (model, seed) jobs run in worker processes (engine/core/processes.run_jobs), with
    the same results: progress then comes once per job, as it ends (its last step's event, with "jobs_done"
    and "jobs"). Setting `cancel` raises ProbeCancelled."""
    from dataclasses import replace
    from itertools import count

    from engine.core.processes import run_jobs

    jobs = [(key, replace(settings, seed=seed)) for key in keys for seed in settings.seed_list]

    def where(n: int) -> dict:  # each event says which model of how many (and which seed): see progress_line
        return {"position": n // settings.seeds + 1, "models": len(keys), "seed_position": n % settings.seeds + 1,
                "seeds": settings.seeds}

    def here(key, one, stop=None):
        n = jobs.index((key, one))
        told = None if progress is None else (lambda event: progress({**event, **where(n)}))
        return probe_seed(key, one, told, stop)

    finished = count(1)

    def ended(n: int, record: dict) -> None:
        if progress is not None and processes > 1:
            progress({"stage": "probe", "model": jobs[n][0], "step": record["train_steps"],
                      "steps": settings.train_steps, "loss": record["final_loss"], **where(n),
                      "jobs_done": next(finished), "jobs": len(jobs)})

    records = run_jobs(probe_seed, jobs, processes, inline=here, cancel=cancel, cancelled=ProbeCancelled,
                       on_result=ended)
    result = {"gaps": list(settings.gaps), "chance": settings.chance, "settings": settings.to_dict(), "models": {}}
    for key in keys:
        by_seed = {str(one.seed): record for (k, one), record in zip(jobs, records) if k == key}
        table = np.array([r["accuracy"] for r in by_seed.values()], dtype=float)
        first = next(iter(by_seed.values()))
        result["models"][key] = {
            **{k: first[k] for k in ("train_steps", "final_loss", "stopped_early")},
            "accuracy": [round(float(v), 6) for v in table.mean(axis=0)],
            "accuracy_min": [float(v) for v in table.min(axis=0)],
            "accuracy_max": [float(v) for v in table.max(axis=0)],
            "n_seeds": len(by_seed), "by_seed": by_seed}
    return result
