"""Training batches, transposed at random: whole tunes from their start (TuneSampler, the default), or
random crops of the window length (CropSampler, how the first bundled models were trained).

Why whole tunes: a model used on a whole tune (every evaluation primes it with a tune's opening and lets it
continue for 64 bars) should have been trained on whole tunes. Trained only on 256-step crops that start
anywhere with an empty state, the recurrent models never saw their state run longer than 256 steps and the
attention models never stacked their windows past one crop; both got worse with more context, which
confounds forgetting with length generalisation (docs/design.md section 5, "Length"). Most tunes are far
shorter than 1,100 steps, so whole tunes cost no more tokens than crops; tunes are bucketed by length so
that a batch wastes little on padding.

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

from engine.music.tokens import FIRST_PITCH_TOKEN, PAD, TokenConfig


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

    def batch(self, step: int, batch_size: int, rank: int | None = None, world: int = 1) -> np.ndarray:
        """[batch_size, window + 1] crops; with `rank`, that rank's rows (every world-th) of them."""
        rng = np.random.default_rng([self.seed, step])
        tune = rng.choice(len(self.lengths), size=batch_size, p=self.weights)
        span = self.window + 1
        room = np.maximum(self.lengths[tune] - span, 0)
        start = (rng.random(batch_size) * (room + 1)).astype(np.int64)
        pos = start[:, None] + np.arange(span)[None, :]  # [B, W+1] position inside each tune
        crops = self.flat[self.offsets[tune][:, None] + pos].astype(np.int64)
        crops[pos >= self.lengths[tune][:, None]] = PAD  # short tunes: pad the tail
        shift = _transpositions(crops, rng, self.transpose, self.last_pitch_token)
        crops = np.where(crops >= FIRST_PITCH_TOKEN, crops + shift[:, None], crops)
        return crops if rank is None else crops[rank::world]


class TuneSampler:
    """Draws batches of whole tunes (from their first step), padded to the longest in the batch.

    Tunes longer than `max_len` + 1 tokens are cut into consecutive pieces overlapping by one token (every
    target is still predicted once). Pieces are grouped into buckets of similar length (a quarter octave
    wide); step `step` draws a bucket with probability proportional to the tokens it holds, then
    `rows` = batch_size x window // (the bucket's longest piece) pieces of it with probability proportional
    to their length. So every training token is about equally likely, a batch holds about batch_size x window
    tokens whatever the tune lengths, and padding stays small. Like CropSampler, a batch is a pure function
    of (seed, step): resume and data-parallel ranks draw exactly the same stream.
    """

    def __init__(self, sequences, window: int, token_config: TokenConfig, transpose: int = 5, seed: int = 0,
                 max_len: int = 2048):
        pieces = [p for s in sequences for p in _pieces(s, max_len)]
        if not pieces:
            raise ValueError("no training sequence has two or more tokens")
        self.window, self.transpose, self.seed = window, transpose, seed
        self.last_pitch_token = token_config.vocab_size - 1
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        self.lengths = lengths[order]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.flat = np.empty(int(self.lengths.sum()), dtype=token_dtype(token_config.vocab_size))
        for start, i in zip(self.offsets.tolist(), order.tolist()):
            self.flat[start : start + len(pieces[i])] = pieces[i]
        bucket_of = np.floor(np.log2(self.lengths) * 4).astype(np.int64)
        edges = np.flatnonzero(np.diff(bucket_of)) + 1
        self.buckets = np.split(np.arange(len(self.lengths)), edges)  # piece indices, each bucket sorted by length
        tokens = np.array([self.lengths[b].sum() for b in self.buckets], dtype=np.float64)
        self.bucket_p = tokens / tokens.sum()

    def batch(self, step: int, batch_size: int, rank: int | None = None, world: int = 1) -> np.ndarray:
        """[rows, T + 1] tokens (inputs [:, :-1], targets [:, 1:]); with `rank`, that rank's rows (every
        world-th) of them. Rows do not depend on `world` (so ranks together draw what one process draws),
        except that there are at least `world` of them, one for each rank."""
        rng = np.random.default_rng([self.seed, step])
        bucket = self.buckets[int(rng.choice(len(self.buckets), p=self.bucket_p))]
        longest = int(self.lengths[bucket[-1]])
        rows = max(world, batch_size * self.window // longest)
        weights = self.lengths[bucket] / self.lengths[bucket].sum()
        chosen = bucket[rng.choice(len(bucket), size=rows, p=weights)]
        span = int(self.lengths[chosen].max())
        pos = np.arange(span)[None, :]
        inside = pos < self.lengths[chosen][:, None]
        index = np.where(inside, self.offsets[chosen][:, None] + pos, 0)
        out = np.where(inside, self.flat[index], PAD).astype(np.int64)
        shift = _transpositions(out, rng, self.transpose, self.last_pitch_token)
        out = np.where(out >= FIRST_PITCH_TOKEN, out + shift[:, None], out)
        return out if rank is None else out[rank::world]


def _pieces(seq, max_len: int) -> list:
    """A tune as pieces of at most max_len + 1 tokens, consecutive pieces sharing one token."""
    if len(seq) < 2:
        return []
    return [seq[start : start + max_len + 1] for start in range(0, len(seq) - 1, max_len)]


def validation_sequences(sequences, max_len: int, max_sequences: int | None = None,
                         batch_tokens: int = 16384) -> list[np.ndarray]:
    """The fixed validation set for whole-tune training: each tune (cut like TuneSampler's pieces) from its
    first step, no augmentation, as padded [rows, T + 1] batches of similar lengths (each at most about
    `batch_tokens` tokens). Every token after a piece's first is predicted exactly once. With
    max_sequences, an evenly spaced subset of the tunes (deterministic)."""
    sequences = [s for s in sequences if len(s) >= 2]
    if max_sequences is not None and len(sequences) > max_sequences:
        keep = np.linspace(0, len(sequences) - 1, max_sequences).round().astype(np.int64)
        sequences = [sequences[k] for k in keep]
    pieces = sorted((p for s in sequences for p in _pieces(s, max_len)), key=len)
    if not pieces:
        raise ValueError("no validation sequence has two or more tokens")
    batches, start = [], 0
    while start < len(pieces):
        end = start + 1  # pieces are sorted by length: the last one of a group sets its padded width
        while end < len(pieces) and (end - start + 1) * len(pieces[end]) <= batch_tokens:
            end += 1
        group = pieces[start:end]
        out = np.full((len(group), len(group[-1])), PAD, dtype=np.int64)
        for row, piece in enumerate(group):
            out[row, : len(piece)] = piece
        batches.append(out)
        start = end
    return batches


def _transpositions(crops: np.ndarray, rng, transpose: int, last_pitch_token: int) -> np.ndarray:
    """A shift in [-transpose, transpose] per row that keeps every pitch of the row in range."""
    is_pitch = crops >= FIRST_PITCH_TOKEN
    low = np.where(is_pitch, crops, last_pitch_token).min(axis=1)
    high = np.where(is_pitch, crops, FIRST_PITCH_TOKEN).max(axis=1)
    lo = np.maximum(-transpose, FIRST_PITCH_TOKEN - low)
    hi = np.minimum(transpose, last_pitch_token - high)
    hi = np.maximum(hi, lo)  # a row spanning the whole range cannot move: lo == hi == 0
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
