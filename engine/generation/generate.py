"""Continue a primer with a trained model: incremental decoding, temperature, top-k, top-p, seeds.

Decoding goes through the model's own step(): the RNNs carry their hidden state, the attention model
its past states, the Transformer its key/value cache (sliding once the window is full). Each step
costs the same however long the piece already is, which is what makes 64 bars x 8 variations quick.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from engine.core.device import model_device
from engine.core.errors import UserError
from engine.core.settings import Setting, Settings
from engine.core.validation import Limit
from engine.music.melody import Melody
from engine.music.tokens import PAD, TokenConfig, decode, encode

MAX_BARS = 1024
MAX_VARIATIONS = 64
# Below this temperature sampling is indistinguishable from taking the most likely token, and
# dividing logits by it would only invite overflow; take the argmax instead.
ARGMAX_TEMPERATURE = 1e-3


class GenerationCancelled(Exception):
    """Raised by generate() when its cancel event is set; nothing half-made is returned."""


@dataclass(frozen=True)
class SampleSettings:
    bars: int = 64  # bars to generate after the primer
    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k cut
    top_p: float = 1.0  # 1 = no nucleus cut
    variations: int = 1  # continuations sampled side by side in one batch
    seed: int = 0

    def validate(self) -> None:
        """SettingError naming the setting and its range for anything a user could mistype."""
        SAMPLE_SETTINGS.check(self)


# The one definition of every sampling setting (engine/core/settings.py): generate's and influence's flags,
# the Listen tab's fields, validation and docs/settings.md; the defaults are SampleSettings' own.
SAMPLE_SETTINGS = Settings(
    SampleSettings,
    Setting("bars", "Bars", Limit("int", 1, MAX_BARS), "bars to generate after the primer", unit="bars"),
    Setting("temperature", "Temperature", Limit("float", 0, 10, lo_open=True),
            "lower is safer, higher is wilder; near 0 takes the most likely path"),
    Setting("top_k", "Top-k", Limit("int", 0, 100_000), "sample among the k likeliest tokens; 0 = off"),
    Setting("top_p", "Top-p", Limit("float", 0, 1, lo_open=True), "nucleus sampling mass; 1 = off"),
    Setting("variations", "Variations", Limit("int", 1, MAX_VARIATIONS),
            "continuations sampled side by side; above 1 the files are numbered FILE-1.mid, FILE-2.mid, ..."),
    Setting("seed", "Seed", Limit("int", 0, 2**63 - 1), "the same seed gives the same melody"),
)


def filter_logits(logits, temperature: float, top_k: int = 0, top_p: float = 1.0):
    """Logits [B, V] -> log-probability-like scores with PAD, the top-k tail and the nucleus tail at -inf.

    Top-p keeps the smallest set of most likely tokens whose probability adds up to at least top_p
    (always at least the most likely one), as in Holtzman et al. 2020.
    """
    import torch

    logits = logits.float() / temperature
    logits[:, PAD] = -math.inf  # PAD only fills batches; it is never a note
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Probability mass strictly before each token: a token is in the nucleus while that is < p.
        before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def sample_next(logits, settings: SampleSettings, generator):
    """One token per row of logits [B, V] -> int64 [B]."""
    import torch

    if settings.temperature <= ARGMAX_TEMPERATURE:
        logits = logits.float().clone()
        logits[:, PAD] = -math.inf
        return torch.argmax(logits, dim=-1)
    scores = filter_logits(logits, settings.temperature, settings.top_k, settings.top_p)
    # Inverse-CDF sampling: a fifth of torch.multinomial's cost per call on the CPU. right=True picks
    # the first token whose cumulative mass exceeds u, so a token of probability 0 (PAD, the cut tail)
    # is never chosen, even for u = 0.
    cdf = torch.cumsum(torch.softmax(scores, dim=-1), dim=-1)
    u = torch.rand((cdf.shape[0], 1), generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)


def sample_tokens(
    model,
    primer_tokens,
    n_new: int,
    settings: SampleSettings,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """int64 tensor [primers x variations, n_new] of tokens sampled after `primer_tokens`.

    `primer_tokens` is one primer (1-D, >= 1 token) or a batch of primers of equal length [k, L]
    (evaluate continues every primer of one meter at once); row i * variations + v is variation v of
    primer i. This is the one decoding loop: `generate` and `evaluate` both sample through it. The
    same seed, model, primers and settings give the same tokens. `progress(done, total)` is called
    every 64 steps and at the end; `cancel` is checked every step.
    """
    import torch

    settings.validate()
    device = model_device(model)
    primer = torch.as_tensor(np.asarray(primer_tokens), dtype=torch.long, device=device)
    if primer.ndim == 1:
        primer = primer.unsqueeze(0)
    if primer.ndim != 2 or primer.numel() == 0:
        raise UserError("the primer has no tokens to continue from")
    k, length = primer.shape
    batch = k * settings.variations
    # each primer is fed once where the model can copy a state (the variations of primer i are rows i * variations
    # ...); otherwise [k, L] -> [k * variations, L], each primer's variations side by side
    repeat_state = getattr(model, "repeat_state", None)  # as prime below: any model with init_state and step decodes
    repeat = settings.variations > 1 and repeat_state is not None
    if not repeat:
        primer = primer[:, None, :].expand(k, settings.variations, length).reshape(batch, length)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(settings.seed))
    out = torch.empty((batch, n_new), dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            state = model.init_state(primer.shape[0], device)
            logits, state = _prefill(model, primer, state, cancel)
            if repeat:
                logits = logits.repeat_interleave(settings.variations, dim=0)
                state = repeat_state(state, settings.variations)
            for i in range(n_new):
                if cancel is not None and cancel.is_set():
                    raise GenerationCancelled("generation cancelled")
                token = sample_next(logits, settings, generator)
                out[:, i] = token
                if i + 1 < n_new:
                    logits, state = model.step(token, state)
                if progress is not None and ((i + 1) % 64 == 0 or i + 1 == n_new):
                    progress(i + 1, n_new)
    finally:
        model.train(was_training)
    return out


def _prefill(model, tokens, state, cancel):
    """Feed the primer [B, P]; return the logits after its last token and the state.

    Models offer prime(tokens, state) (the RNN families run it as one cuDNN-style pass); anything
    else goes step by step. The primer is short next to the continuation, so cancel is checked
    around it rather than inside.
    """
    if cancel is not None and cancel.is_set():
        raise GenerationCancelled("generation cancelled")
    prime = getattr(model, "prime", None)
    if callable(prime):
        return prime(tokens, state)
    logits = None
    for t in range(tokens.shape[1]):
        logits, state = model.step(tokens[:, t], state)
    return logits, state


def generate(
    model,
    primer: Melody,
    settings: SampleSettings,
    token_config: TokenConfig,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Melody]:
    """`settings.variations` continuations of `primer`, each `settings.bars` bars long.

    Each continuation starts at step 0 (the first step after the primer) and carries the primer's
    meter, tempo and key; meta holds its tokens, the variation number and the settings.
    """
    settings.validate()
    primer = fold_into_range(primer, token_config)
    tokens = encode(primer, token_config)
    n_new = settings.bars * primer.steps_per_bar
    sampled = sample_tokens(model, tokens, n_new, settings, cancel, progress).cpu().numpy()
    results = []
    for i, row in enumerate(sampled):
        melody = decode(row, primer, token_config)
        results.append(
            replace(
                melody,
                tune_id=f"{primer.tune_id}-cont{i + 1}" if primer.tune_id else f"continuation-{i + 1}",
                title=f"{primer.title or primer.tune_id or 'primer'} (continuation {i + 1})",
                meta={
                    **primer.meta,
                    "tokens": row,
                    "variation": i + 1,
                    "primer_id": primer.tune_id,
                    "primer_steps": primer.n_steps,
                    "settings": settings,
                },
            )
        )
    return results


def fold_into_range(melody: Melody, cfg: TokenConfig) -> Melody:
    """The melody with every pitch moved by octaves into the model's vocabulary."""
    if all(cfg.min_pitch <= n.pitch <= cfg.max_pitch for n in melody.notes):
        return melody
    notes = tuple(replace(n, pitch=cfg.fold(n.pitch)) for n in melody.notes)
    return replace(melody, notes=notes)
