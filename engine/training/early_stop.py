"""Early stopping on the validation split: a model stops when `patience` validations in a row have not
improved on its best by more than `min_delta` bits per token (docs/training.md, the converged recipe).

With `lr_drop` set, a plateau first lowers the model's learning rate (times lr_drop, at most `lr_drops`
times) and the count starts again; only a plateau after the last drop stops the model. A model is then
stopped because its validation is flat at a low learning rate, not at the peak rate, where the attention RNN's
validation jumps by 0.2 bits from one validation to the next (runs/converged-1, 2026-12-06).

With `flat_gain` set, that last plateau stops the model only once the last quarter of its run gained less than
flat_gain bits per token (`late_gain`, the figure the report reads): the last drop still buys 0.01-0.04 bits,
and a curve is flat at its end only when the drop lies far enough behind it (docs/training.md, 2026-12-07).

The state is a pure function of the validation figures in the model's history, so a resumed run replays
it from history.csv and stops exactly where an uninterrupted run would (a resume keeps the run's validation
cadence: engine/training/run_plan.resumable_overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_VALIDATIONS_FOR_LATE_GAIN = 4  # fewer: no curve to speak of


def late_gain(steps: list[int], valid_bpt: list[float]) -> tuple[float, int] | None:
    """How much validation fell over the last quarter of a run: bits per token at the validation nearest
    75% of the last step minus at the last, and that validation's step. None with too few validations."""
    if len(steps) < MIN_VALIDATIONS_FOR_LATE_GAIN:
        return None
    quarter = min(range(len(steps)), key=lambda i: abs(steps[i] - 0.75 * steps[-1]))  # the first on a tie
    return valid_bpt[quarter] - valid_bpt[-1], steps[quarter]


@dataclass
class EarlyStop:
    patience: int | None  # None: never stop early (the classroom recipe runs its steps)
    min_delta: float
    lr_drop: float | None = None  # on a plateau, the learning rate is multiplied by this (None: stop at once)
    lr_drops: int = 0  # at most this many drops; the plateau after the last one stops the model
    flat_gain: float | None = None  # and only once the last quarter gained less than this (None: at once)
    best: float | None = None
    since_best: int = 0  # validations since the last improvement (or since the last drop)
    drops: int = 0  # drops so far
    steps: list[int] = field(default_factory=list)  # every validation so far, for the last quarter's gain
    seen: list[float] = field(default_factory=list)

    def update(self, step: int, valid_bpt: float) -> bool:
        """Record the validation at `step`; True when the model should stop now."""
        self.steps.append(step)
        self.seen.append(valid_bpt)
        if self.best is None or valid_bpt < self.best - self.min_delta:
            self.best, self.since_best = valid_bpt, 0
        else:
            self.since_best += 1
        if self.patience is None or self.since_best < self.patience:
            return False
        if self.lr_drop is not None and self.drops < self.lr_drops:
            self.drops, self.since_best = self.drops + 1, 0  # a lower rate first, then `patience` more chances
            return False
        if self.flat_gain is not None:
            gain = late_gain(self.steps, self.seen)
            return gain is not None and gain[0] < self.flat_gain  # else on at the last rate, checked each time
        return True

    @property
    def lr_scale(self) -> float:
        """What the schedule's learning rate is multiplied by for this model now."""
        return 1.0 if self.lr_drop is None else self.lr_drop ** self.drops

    @classmethod
    def replay(cls, patience: int | None, min_delta: float, history: list[dict], lr_drop: float | None = None,
               lr_drops: int = 0, flat_gain: float | None = None) -> EarlyStop:
        """The state after the validations of `history` (rows of history.csv, oldest first)."""
        state = cls(patience, min_delta, lr_drop, lr_drops, flat_gain)
        for row in history:
            if row.get("valid_bpt") is not None:
                state.update(row["step"], row["valid_bpt"])
        return state
