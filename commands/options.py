"""Range checks of command-line values, run first thing in a command's run(), before anything is built.

An out-of-range value ends the command with `error: --name must be a whole number from A to B, not V`
(exit 2), never a traceback. The wording is engine.validation.Limit.check's (the lead's validation layer
on main), so that `Limit("int", lo, hi).check(value, name)` can replace `check_range` one for one.
"""

from __future__ import annotations

import math

from engine.errors import UserError


def check_range(value, name: str, lo, hi, whole: bool = True):
    """`value` when it is a finite number in [lo, hi] (a whole one when `whole`); UserError otherwise."""
    ok = lo <= value <= hi  # nan and inf fail here too: the bounds are finite, and huge ints compare exactly
    if ok and not whole:
        ok = math.isfinite(value)
    if not ok:
        what = "a whole number" if whole else "a number"
        raise UserError(f"{name} must be {what} from {lo:g} to {hi:g}, not {_shown(value)}")
    return value


def _shown(value) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else f"{str(value)[:40]}..."
    return text
