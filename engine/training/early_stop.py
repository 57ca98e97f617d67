"""Early stopping on the validation split: a model stops when `patience` validations in a row have not
improved on its best by more than `min_delta` bits per token (docs/training.md, the converged recipe).

The state is a pure function of the validation figures in the model's history, so a resumed run replays
it from history.csv and stops exactly where an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStop:
    patience: int | None  # None: never stop early (the classroom recipe runs its steps)
    min_delta: float
    best: float | None = None
    since_best: int = 0  # validations since the last improvement

    def update(self, valid_bpt: float) -> bool:
        """Record one validation; True when the model should stop now."""
        if self.best is None or valid_bpt < self.best - self.min_delta:
            self.best, self.since_best = valid_bpt, 0
        else:
            self.since_best += 1
        return self.patience is not None and self.since_best >= self.patience

    @classmethod
    def replay(cls, patience: int | None, min_delta: float, history: list[dict]) -> EarlyStop:
        """The state after the validations of `history` (rows of history.csv, oldest first)."""
        state = cls(patience, min_delta)
        for row in history:
            if row.get("valid_bpt") is not None:
                state.update(row["valid_bpt"])
        return state
