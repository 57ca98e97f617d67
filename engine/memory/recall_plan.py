"""What recall by distance asks the models (docs/design.md section 5, "Recall by distance"; issue 23): which
bars are targets, which earlier bars are replaced by foreign bars, and which unrelated bars the control
replaces instead. No model is involved: one plan serves every model and every training seed.

- Material: every test tune played twice through (the tune, then itself again, each pass a whole number of
  bars). The first pass is the tune itself (the models are causal), the second gives distances beyond 16
  bars and beyond the training length.
- A target bar b restates an earlier bar a when sim(a, b) >= 0.9, sim being the untransposed Jaccard
  similarity of the bar note sets (engine/metrics/bars.py).
- Ablation: every earlier bar a' with sim(a', b) >= 0.5 becomes a foreign bar: a bar of another test tune
  of the same meter with the nearest onset vector (the same one where it exists), in the tune's scale
  where one is, shifted by whole semitones to the replaced bar's mean pitch, rejected if once shifted it
  has sim >= 0.2 to the target. Same meter, so the same step count. Rhythm and register stay, pitches go.
- Distance d(b) = b - a' for the nearest replaced bar, in bars and in steps.
- Control: as many non-empty earlier bars with sim < 0.2 to the target, each at or beyond the distance of
  the replaced bar it pairs with, never bar b-1, replaced the same way. A target without enough such bars
  has no control and is left out (counted in `dropped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.metrics.bars import BarSets, bar_sets, hamming, transposed_similarity
from engine.metrics.keys import best_key, in_key
from engine.music.melody import Melody
from engine.music.tokens import FIRST_PITCH_TOKEN, HOLD, REST

RESTATES = 0.9  # sim at which a target restates an earlier bar
RESEMBLES = 0.5  # sim at which an earlier bar is replaced (partial matches too: they set the real distance)
UNRELATED = 0.2  # a foreign bar must stay below this sim to the target; control bars lie below it too
RANKED = 48  # foreign candidates kept per replaced bar (ranked once, checked against each target)


@dataclass
class Material:
    """One test tune played twice through, as tokens, with its bar sets."""

    tune: int  # index into the test tunes
    meter: str
    steps_per_bar: int
    tune_bars: int  # bars of one pass
    tokens: np.ndarray  # [2 * tune_bars * S]
    bars: BarSets  # the bar note sets of both passes
    key: int | None  # the tune's scale (most notes in it)


@dataclass
class Target:
    material: int  # index into RecallPlan.materials
    bar: int
    distance_bars: int
    distance_steps: int
    replaced: dict[int, np.ndarray] = field(default_factory=dict)  # bar -> foreign tokens [S]
    control: dict[int, np.ndarray] = field(default_factory=dict)
    # (which, bar) -> (test tune, bar of it, semitone shift): where each foreign bar came from
    origins: dict[tuple[str, int], tuple[int, int, int]] = field(default_factory=dict)

    def tokens(self, material: Material, which: str) -> np.ndarray:
        """The past and the target bar, with the replaced (`"ablated"`) or control (`"control"`) bars swapped."""
        S = material.steps_per_bar
        out = material.tokens[: (self.bar + 1) * S].copy()
        for bar, foreign in (self.replaced if which == "ablated" else self.control).items():
            out[bar * S : (bar + 1) * S] = foreign
        return out


@dataclass
class RecallPlan:
    materials: list[Material]
    targets: list[Target]
    dropped: int  # restating bars left out: no foreign bar or no control bars to be found

    def summary(self) -> dict:
        return {"tunes": len(self.materials), "targets": len(self.targets), "dropped_targets": self.dropped,
                "restates_sim": RESTATES, "replaced_sim": RESEMBLES, "unrelated_sim": UNRELATED}


def twice_through(melody: Melody, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, notes) of the tune followed by itself, each pass padded to whole bars.

    The second pass starts with a REST where the tune starts with a HOLD (a rest before its first note), so
    that the first pass's last note does not run on into it."""
    S = melody.steps_per_bar
    length = melody.n_bars * S
    one = np.full(length, HOLD, dtype=np.int64)
    one[: len(tokens)] = tokens[:length]
    second = one.copy()
    if second[0] == HOLD:
        second[0] = REST
    notes = melody.note_array()
    shifted = notes.copy()
    shifted[:, 0] += length
    return np.concatenate([one, second]), np.concatenate([notes, shifted])


def _subset(bars: BarSets, index, shift=None) -> BarSets:
    """Some bars of `bars`, their pitches moved by `shift` semitones (one per bar) where given."""
    pitch = bars.pitch[index]
    if shift is not None:
        pitch = pitch + np.asarray(shift)[:, None, None] * bars.valid[index]
    return BarSets(bars.steps_per_bar, pitch, bars.duration[index], bars.valid[index], bars.size[index])


def _mean_pitch(bars: BarSets) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (bars.pitch * bars.valid).sum(axis=(1, 2)) / bars.size


class ForeignBars:
    """The bars of one meter's test tunes (first passes), to draw foreign bars from."""

    def __init__(self, materials: list[Material], vocab_size: int):
        self.vocab_size = vocab_size
        first = [(m, b) for m in materials for b in range(m.tune_bars) if m.bars.size[b] > 0]
        S = materials[0].steps_per_bar
        self.tune = np.array([m.tune for m, _ in first], dtype=np.int64)
        self.bar = np.array([b for _, b in first], dtype=np.int64)
        self.tokens = np.stack([m.tokens[b * S : (b + 1) * S] for m, b in first]) if first else np.zeros((0, S))
        self.bars = _concat([_subset(m.bars, [b]) for m, b in first], S)
        self.onsets = self.bars.onsets
        self.mean = _mean_pitch(self.bars)
        self.cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.picked: dict[tuple, tuple[np.ndarray, tuple[int, int, int]] | None] = {}

    def ranked(self, material: Material, bar: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(pool indices, semitone shifts) for replacing `bar`: nearest onset vector first, then in the tune's
        scale, then a seeded order; only candidates from other tunes whose shifted pitches fit the tokens."""
        one = bar % material.tune_bars  # the second pass's bars are the first's
        key = (material.tune, one)
        if key in self.cache:
            return self.cache[key]
        own = _subset(material.bars, [one])
        other = self.tune != material.tune
        shift = np.rint(_mean_pitch(own)[0] - self.mean).astype(np.int64)
        low, high = self._token_range(shift)
        fits = other & (low >= FIRST_PITCH_TOKEN) & (high < self.vocab_size)
        index = np.flatnonzero(fits)
        distance = hamming(own.onsets, self.onsets[index])[0]
        pitches = self.bars.pitch[index] + shift[index, None, None]
        outside = ((~in_key(pitches, material.key)) & self.bars.valid[index]).any(axis=(1, 2))
        rng = np.random.default_rng([seed, material.tune, one])
        order = np.lexsort((rng.permutation(len(index)), outside, distance))[:RANKED]
        found = (index[order], shift[index[order]])
        self.cache[key] = found
        return found

    def _token_range(self, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pitched = self.tokens >= FIRST_PITCH_TOKEN
        moved = self.tokens + shift[:, None]
        low = np.where(pitched, moved, np.iinfo(np.int64).max).min(axis=1)
        high = np.where(pitched, moved, -1).max(axis=1)
        return low, high

    def pick(self, material: Material, bar: int, target: BarSets, seed: int):
        """(tokens, (tune, bar, shift)) of the foreign bar that replaces `bar` for the target bar `target`,
        or None. The answer depends on the replaced bar and the target's note set alone: a target of the second
        pass asks what its first-pass twin asked, and is answered from `picked`."""
        key = (material.tune, bar % material.tune_bars, seed, target.pitch.tobytes(), target.duration.tobytes(),
               target.valid.tobytes())
        if key not in self.picked:
            self.picked[key] = self._pick(material, bar, target, seed)
        found = self.picked[key]
        return None if found is None else (found[0].copy(), found[1])

    def _pick(self, material: Material, bar: int, target: BarSets, seed: int):
        index, shift = self.ranked(material, bar, seed)
        if not len(index):
            return None
        sim = transposed_similarity(_subset(self.bars, index, shift), target, max_shift=0)[:, 0]
        ok = np.flatnonzero(sim < UNRELATED)
        if not len(ok):
            return None
        i, s = index[ok[0]], shift[ok[0]]
        tokens = self.tokens[i].copy()
        tokens[tokens >= FIRST_PITCH_TOKEN] += s
        return tokens, (int(self.tune[i]), int(self.bar[i]), int(s))


def _concat(parts: list[BarSets], S: int) -> BarSets:
    if not parts:
        empty = np.zeros((0, S, 1), dtype=np.int64)
        return BarSets(S, empty, empty, empty.astype(bool), np.zeros(0, dtype=np.int64))
    layers = max(p.pitch.shape[2] for p in parts)

    def pad(a, fill):
        return np.concatenate([np.pad(p, ((0, 0), (0, 0), (0, layers - p.shape[2])), constant_values=fill)
                               for p in a])

    return BarSets(S, pad([p.pitch for p in parts], 0), pad([p.duration for p in parts], 0),
                   pad([p.valid for p in parts], False), np.concatenate([p.size for p in parts]))


def make_materials(tunes: list[Melody], tokens: list[np.ndarray]) -> list[Material]:
    out = []
    for i, (melody, toks) in enumerate(zip(tunes, tokens)):
        both, notes = twice_through(melody, toks)
        S = melody.steps_per_bar
        n = 2 * melody.n_bars
        out.append(Material(i, melody.meter, S, melody.n_bars, both, bar_sets(notes, S, n),
                            best_key(melody.note_array()[:, 1])))
    return out


def make_plan(tunes: list[Melody], tokens: list[np.ndarray], vocab_size: int, seed: int = 0) -> RecallPlan:
    """Targets with their replaced and control bars, for every test tune (tokens: the tunes' token arrays)."""
    materials = make_materials(tunes, tokens)
    pools = {meter: ForeignBars([m for m in materials if m.meter == meter], vocab_size)
             for meter in dict.fromkeys(m.meter for m in materials)}
    targets, dropped = [], 0
    for mi, material in enumerate(materials):
        sim = transposed_similarity(material.bars, material.bars, max_shift=0)
        pool = pools[material.meter]
        for b in range(1, len(sim)):
            earlier = sim[b, :b]
            if material.bars.size[b] == 0 or earlier.max(initial=0.0) < RESTATES:
                continue
            target = make_target(mi, material, b, earlier, pool, seed)
            if target is None:
                dropped += 1
            else:
                targets.append(target)
    return RecallPlan(materials, targets, dropped)


def make_target(mi: int, material: Material, b: int, earlier: np.ndarray, pool: ForeignBars,
                seed: int) -> Target | None:
    """The target bar b of one material (earlier = sim of bars 0..b-1 to it), or None without a control."""
    replaced = np.flatnonzero(earlier >= RESEMBLES)[::-1]  # nearest first
    distances = b - replaced
    filled = material.bars.size[:b] > 0
    candidates = [a for a in range(b - 2, -1, -1) if filled[a] and earlier[a] < UNRELATED]  # nearest first
    control_bars = []
    for d in distances:  # each control bar at or beyond the distance of the replaced bar it pairs with
        a = next((a for a in candidates if b - a >= d and a not in control_bars), None)
        if a is None:
            return None
        control_bars.append(a)
    own = _subset(material.bars, [b])
    S = material.steps_per_bar
    target = Target(mi, b, int(distances[0]), int(distances[0]) * S)
    for which, bars, into in (("ablated", replaced, target.replaced), ("control", control_bars, target.control)):
        for a in bars:
            found = pool.pick(material, int(a), own, seed)
            if found is None:
                return None
            into[int(a)], target.origins[(which, int(a))] = found
    return target
