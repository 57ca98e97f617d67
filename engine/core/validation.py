"""The one place where a value from a user or a file is checked before anything is built from it.

Every setting a person can type (a command-line flag, a field of the app) or a file can carry (a run's
config.json, run.json) goes through `Limit.check` on its way in, so that a bad value ends as a
`UserError` naming the value, where it came from and the allowed range, never as a traceback, a hang or
a terabyte allocation later on. A settings dataclass lists its limits in a table (`LIMITS`) and calls
`check_fields`; a caller that knows the user's name for a field (``--lr``) passes it in `names`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from engine.core.errors import UserError


@dataclass(frozen=True)
class Limit:
    """What one field may hold: an int or float in [lo, hi] (open at lo with lo_open), or one of `choices`.
    `optional` lets None through (a default chosen later)."""

    kind: str  # "int" | "float" | "choice" | "bool"
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    optional: bool = False
    lo_open: bool = False

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        what = "a whole number" if self.kind == "int" else "a number"
        lo, hi = (int(self.lo), int(self.hi)) if self.kind == "int" else (f"{self.lo:g}", f"{self.hi:g}")
        span = f"above {lo} and at most {hi}" if self.lo_open else f"from {lo} to {hi}"
        extra = " (or unset for the default)" if self.optional else ""
        return f"{what} {span}{extra}"

    def check(self, value, name: str, where: str | None = None):
        """The value, converted to its kind (a float-valued int stays an int); UserError otherwise."""
        ok, converted = self.accepts(value)
        if not ok:
            prefix = f"{where}: " if where else ""
            raise UserError(f"{prefix}{name} {self.refusal(value)}")
        return converted

    def accepts(self, value) -> tuple[bool, object]:
        """(whether the value is allowed, the value converted to its kind)."""
        if value is None and self.optional:
            return True, None
        ok, converted = self._convert(value)
        if ok and self.kind in ("int", "float"):
            # compared with the finite bounds first: nan and inf fail, and a huge int never becomes a float
            ok = (converted > self.lo if self.lo_open else converted >= self.lo) and converted <= self.hi
        return ok, converted

    def refusal(self, value) -> str:
        """What is wrong with a value this limit refuses, without the setting's name."""
        return f"must be {self.describe()}, not {_shown(value)}"

    def _convert(self, value):
        if self.kind == "choice":
            return value in self.choices, value
        if self.kind == "bool":
            return isinstance(value, bool), value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False, value
        if self.kind == "int":
            if isinstance(value, numbers.Integral):
                return True, int(value)
            return (math.isfinite(value) and float(value).is_integer()), int(value) if math.isfinite(value) else value
        try:
            return True, float(value)
        except OverflowError:  # an int too large for a float is out of every range
            return False, value


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def check_fields(obj, limits: dict[str, Limit], where: str | None = None, names: dict[str, str] | None = None,
                 prefix: str = "") -> None:
    """Check (and normalise in place) every field of dataclass `obj` that `limits` lists.

    `names` maps a field to the user's name for it (a flag); otherwise the message says `prefix + field`.
    Frozen dataclasses are normalised with object.__setattr__ (the value only changes type, e.g. 3.0 -> 3).
    """
    names = names or {}
    for f in fields(obj):
        limit = limits.get(f.name)
        if limit is None:
            continue
        value = limit.check(getattr(obj, f.name), names.get(f.name, prefix + f.name), where)
        object.__setattr__(obj, f.name, value)


def known_fields(doc, cls, where: str, section: str) -> dict:
    """The entries of a JSON object that name fields of dataclass `cls`; UserError for a non-object or an
    unknown name (a typo in a hand-edited file should not be silently ignored)."""
    if not isinstance(doc, dict):
        raise UserError(f"{where}: '{section}' must be a JSON object, not {type(doc).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(doc) - names)
    if unknown:
        raise UserError(f"{where}: unknown field(s) in '{section}': {', '.join(map(str, unknown))}")
    return dict(doc)
