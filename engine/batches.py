"""Training batches: random crops of the window length from training tunes, transposed at random.

Batch number `step` is drawn from its own generator, seeded by (seed, step): the stream of batches is a
pure function of the seed, so a resumed run draws exactly the batches an uninterrupted one would, and
data-parallel ranks can later take disjoint rows of the same global batch (`rank`, `world`).
All work is vectorised numpy over the batch: no per-token Python.

Memory: the sampler keeps the training tokens as one flat array of the smallest integer type the
vocabulary fits (uint8 for the default range: 1 byte per token) plus one offset and one length per tune;
it keeps no reference to the arrays it was given, so a corpus of many files costs its tokens and
16 bytes per tune, nothing per file.
"""

from __future__ import annotations

import numpy as np

from .tokens import FIRST_PITCH_TOKEN, PAD, TokenConfig


class CropSampler:
    """Draws [batch, window + 1] token crops (inputs are [:, :-1], targets [:, 1:])."""

    def __init__(self, sequences, window: int, token_config: TokenConfig, transpose: int = 5, seed: int = 0):
        seqs = [s for s in sequences if len(s) >= 2]
        if not seqs:
            raise ValueError("no training sequence has two or more tokens")
        self.window, self.transpose, self.seed = window, transpose, seed
        self.last_pitch_token = token_config.vocab_size - 1
        self.lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        # Filled in place (no int64 copy of the corpus on the way); a PAD tail so that a crop running
        # past the last tune never indexes out of bounds.
        self.flat = np.full(int(self.lengths.sum()) + window + 1, PAD, dtype=token_dtype(token_config.vocab_size))
        for start, seq in zip(self.offsets.tolist(), seqs):
            self.flat[start : start + len(seq)] = seq
        # A tune is chosen in proportion to its length: every training token is equally likely.
        self.weights = self.lengths / self.lengths.sum()

    def batch(self, step: int, batch_size: int, rank: int = 0, world: int = 1) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        tune = rng.choice(len(self.lengths), size=batch_size, p=self.weights)
        span = self.window + 1
        room = np.maximum(self.lengths[tune] - span, 0)
        start = (rng.random(batch_size) * (room + 1)).astype(np.int64)
        pos = start[:, None] + np.arange(span)[None, :]  # [B, W+1] position inside each tune
        crops = self.flat[self.offsets[tune][:, None] + pos].astype(np.int64)
        crops[pos >= self.lengths[tune][:, None]] = PAD  # short tunes: pad the tail
        shift = self._transpositions(crops, rng)
        crops = np.where(crops >= FIRST_PITCH_TOKEN, crops + shift[:, None], crops)
        return crops[rank::world]

    def _transpositions(self, crops: np.ndarray, rng) -> np.ndarray:
        """A shift in [-transpose, transpose] per crop that keeps every pitch of the crop in range."""
        is_pitch = crops >= FIRST_PITCH_TOKEN
        low = np.where(is_pitch, crops, self.last_pitch_token).min(axis=1)
        high = np.where(is_pitch, crops, FIRST_PITCH_TOKEN).max(axis=1)
        lo = np.maximum(-self.transpose, FIRST_PITCH_TOKEN - low)
        hi = np.minimum(self.transpose, self.last_pitch_token - high)
        hi = np.maximum(hi, lo)  # a crop spanning the whole range cannot move: lo == hi == 0
        return lo + (rng.random(len(crops)) * (hi - lo + 1)).astype(np.int64)


def token_dtype(vocab_size: int):
    """The smallest unsigned integer type that holds every token id."""
    return np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.int64


def validation_windows(sequences, window: int, max_windows: int | None = None) -> np.ndarray:
    """The fixed validation set: each tune cut into consecutive [window + 1] chunks overlapping by one
    token (so every token after a tune's first is predicted exactly once), padded; no augmentation.
    With max_windows, an evenly spaced subset (deterministic)."""
    # (tune, start) of every window first; only the kept ones are built, so a large validation split
    # costs max_windows rows, not a padded copy of itself.
    where = [(i, start) for i, seq in enumerate(sequences) for start in range(0, max(len(seq) - 1, 0), window)]
    if not where:
        raise ValueError("no validation sequence has two or more tokens")
    if max_windows is not None and len(where) > max_windows:
        where = [where[k] for k in np.linspace(0, len(where) - 1, max_windows).round().astype(np.int64)]
    out = np.full((len(where), window + 1), PAD, dtype=np.int64)
    for row, (i, start) in enumerate(where):
        chunk = np.asarray(sequences[i][start : start + window + 1], dtype=np.int64)
        out[row, : len(chunk)] = chunk
    return out
