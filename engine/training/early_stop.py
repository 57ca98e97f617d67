"""Early stopping on the validation split: a model stops when `patience` validations in a row have not
improved on its best by more than `min_delta` bits per token (docs/training.md, the converged recipe).

With `lr_drop` set, a plateau first lowers the model's learning rate (times lr_drop, at most `lr_drops`
times) and the count starts again; only a plateau after the last drop stops the model. A model is then
stopped because its validation is flat at a low learning rate, not at the peak rate, where the attention RNN's
validation jumps by 0.2 bits from one validation to the next (runs/converged-1, 2026-12-06).

The state is a pure function of the validation figures in the model's history, so a resumed run replays
it from history.csv and stops exactly where an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStop:
    patience: int | None  # None: never stop early (the classroom recipe runs its steps)
    min_delta: float
    lr_drop: float | None = None  # on a plateau, the learning rate is multiplied by this (None: stop at once)
    lr_drops: int = 0  # at most this many drops; the plateau after the last one stops the model
    best: float | None = None
    since_best: int = 0  # validations since the last improvement (or since the last drop)
    drops: int = 0  # drops so far

    def update(self, valid_bpt: float) -> bool:
        """Record one validation; True when the model should stop now."""
        if self.best is None or valid_bpt < self.best - self.min_delta:
            self.best, self.since_best = valid_bpt, 0
        else:
            self.since_best += 1
        if self.patience is None or self.since_best < self.patience:
            return False
        if self.lr_drop is not None and self.drops < self.lr_drops:
            self.drops, self.since_best = self.drops + 1, 0  # a lower rate first, then `patience` more chances
            return False
        return True

    @property
    def lr_scale(self) -> float:
        """What the schedule's learning rate is multiplied by for this model now."""
        return 1.0 if self.lr_drop is None else self.lr_drop ** self.drops

    @classmethod
    def replay(cls, patience: int | None, min_delta: float, history: list[dict], lr_drop: float | None = None,
               lr_drops: int = 0) -> EarlyStop:
        """The state after the validations of `history` (rows of history.csv, oldest first)."""
        state = cls(patience, min_delta, lr_drop, lr_drops)
        for row in history:
            if row.get("valid_bpt") is not None:
                state.update(row["valid_bpt"])
        return state
