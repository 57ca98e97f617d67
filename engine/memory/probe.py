"""The synthetic theme-recall probe: a motif, g bars of filler, then the motif again.

It isolates memory from musical taste (design.md section 5). Each sequence, in 2/4 on the 16th grid:

    bar 0          a motif: 2 quarter notes drawn from an 8-note scale in a high register
    bars 1..g      filler: random notes of random lengths from a separate low register
    (last step of the filler is a REST: the cue "the theme comes back now")
    bar g+1        the motif again
    after it       more filler, so that every sequence in a batch has the same length

A fresh model of each architecture is trained for a fixed number of steps on a mix of all gaps, with
the loss on the 2 note onsets of the repeated motif only (everything else is unpredictable by design).
Accuracy = share of those onsets where the model's most likely token is the motif's note, per gap;
chance = 1/8 (a model that knows the scale but not the motif). Why this recipe works for every model:
the loss is on few, fully determined tokens, the two registers never mix, and the cue removes any need
to count bars, so what separates the models is how far back they can reach.

Entry point for the CLI and the GUI: `run_probe(keys, settings, progress, cancel)`.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from engine.tokens import HOLD, REST, TokenConfig

STEPS_PER_BAR = 8  # a 2/4 bar: short sequences keep training within a minute or two for all five
MOTIF_NOTES = 2
NOTE_STEPS = STEPS_PER_BAR // MOTIF_NOTES
MOTIF_PITCHES = (72, 74, 76, 77, 79, 81, 83, 84)  # C major, C5..C6
FILLER_PITCHES = tuple(range(55, 67))  # G3..F#4 chromatic: never confused with the motif
FILLER_LENGTHS = (1, 2, 4)


class ProbeCancelled(Exception):
    """Raised by run_probe when its cancel event is set."""


@dataclass(frozen=True)
class ProbeSettings:
    gaps: tuple[int, ...] = (1, 2, 4, 8, 16)
    preset: str = "tiny"
    train_steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    eval_sequences: int = 64  # per gap
    max_seconds_per_model: float | None = None  # a time cap (reported); None keeps runs reproducible
    seed: int = 0
    token_config: TokenConfig = field(default_factory=TokenConfig)

    @property
    def length(self) -> int:
        """Room for the motif and one return at the longest gap (shorter gaps fit several returns).

        Training cost grows with this length, which is what keeps five models within a few minutes."""
        return (max(self.gaps) + 2) * STEPS_PER_BAR

    @property
    def chance(self) -> float:
        return 1.0 / len(MOTIF_PITCHES)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["gaps"] = list(self.gaps)
        return out


def make_batch(rng: np.random.Generator, gaps: np.ndarray, length: int, cfg: TokenConfig = TokenConfig()):
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
    onsets = np.arange(MOTIF_NOTES) * NOTE_STEPS
    first = np.zeros((batch, MOTIF_NOTES), dtype=np.int64)
    for i, gap in enumerate(gaps.tolist()):
        _fill(rng, tokens[i], 0, length, cfg)
        period = (gap + 1) * STEPS_PER_BAR
        for n, start in enumerate(range(0, length - STEPS_PER_BAR + 1, period)):
            tokens[i, start : start + STEPS_PER_BAR] = HOLD
            tokens[i, start + onsets] = motif_tokens[i]
            if start > 0:
                tokens[i, start - 1] = REST  # the cue
                returns[i, start + onsets] = True
            if n == 1:
                first[i] = start + onsets
            nxt = start + STEPS_PER_BAR
            if nxt < length and tokens[i, nxt] == HOLD:  # the motif's last note ends where filler resumes
                tokens[i, nxt] = REST
    return tokens, first, returns


def _fill(rng: np.random.Generator, row: np.ndarray, start: int, stop: int, cfg: TokenConfig) -> None:
    step = start
    while step < stop:
        row[step] = cfg.pitch_token(int(rng.choice(FILLER_PITCHES)))
        step += int(rng.choice(FILLER_LENGTHS))


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
    gaps = np.array(sorted({0, *settings.gaps}))  # gap 0 (the motif twice in a row) teaches copying first
    started = time.monotonic()
    loss_value, step = float("nan"), 0
    for step in range(1, settings.train_steps + 1):
        if cancel is not None and cancel.is_set():
            raise ProbeCancelled("theme-recall probe cancelled")
        tokens, _, returns = make_batch(rng, rng.choice(gaps, size=settings.batch_size), settings.length,
                                        settings.token_config)
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
    record = {"train_steps": step, "final_loss": loss_value, "seconds": time.monotonic() - started,
              "stopped_early": step < settings.train_steps}
    return model, record


def probe_accuracy(model, settings: ProbeSettings) -> list[float]:
    """Accuracy on the repeated motif per gap, on fresh seeded sequences (teacher-forced)."""
    import torch

    model.eval()
    rng = np.random.default_rng([settings.seed, 2])
    out = []
    with torch.inference_mode():
        for gap in settings.gaps:
            tokens, first, _ = make_batch(rng, np.full(settings.eval_sequences, gap), settings.length,
                                          settings.token_config)
            hits = _first_return_hits(model, torch.from_numpy(tokens), torch.from_numpy(first))
            out.append(float(hits.float().mean()))
    return out


def run_probe(keys, settings: ProbeSettings = ProbeSettings(), progress: Callable[[dict], None] | None = None,
              cancel: threading.Event | None = None) -> dict:
    """Train and test each model on the probe: {"gaps", "chance", "settings", "models": {key: {...}}}."""
    result = {"gaps": list(settings.gaps), "chance": settings.chance, "settings": settings.to_dict(), "models": {}}
    for key in keys:
        model, record = train_probe_model(key, settings, progress, cancel)
        record["accuracy"] = probe_accuracy(model, settings)
        result["models"][key] = record
    return result
