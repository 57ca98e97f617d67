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
    `optional` lets None through (a default chosen later). With `count` (fewest, most) the field holds a list
    of such numbers, all different: given as a sequence or as text with commas ("1.0,0.7"), kept as a tuple."""

    kind: str  # "int" | "float" | "choice" | "bool"
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    optional: bool = False
    lo_open: bool = False
    count: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.count is not None:
            items = "whole numbers" if self.kind == "int" else "numbers"
            span = self._scalar().describe()  # "a number from 1 to 9"
            span = span.removeprefix("a whole number " if self.kind == "int" else "a number ")
            fewest, most = self.count
            return f"{fewest} to {most} different {items} {span}, separated by commas"
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
        if self.count is not None:
            problem, converted = self._read_list(value)
            return problem is None, converted
        ok, converted = self._convert(value)
        if ok and self.kind in ("int", "float"):
            # compared with the finite bounds first: nan and inf fail, and a huge int never becomes a float
            ok = (converted > self.lo if self.lo_open else converted >= self.lo) and converted <= self.hi
        return ok, converted

    def refusal(self, value) -> str:
        """What is wrong with a value this limit refuses, without the setting's name."""
        why = f" ({self._read_list(value)[0]})" if self.count is not None else ""
        return f"must be {self.describe()}, not {_shown(value)}{why}"

    def _scalar(self) -> Limit:
        """What each item of a list may hold."""
        return Limit(self.kind, self.lo, self.hi, lo_open=self.lo_open)

    def _item(self, item):
        """(ok, the number) for one item of a list, text or number."""
        if isinstance(item, str):
            try:
                item = int(item) if self.kind == "int" and item.lstrip("+-").isdigit() else float(item)
            except ValueError:
                return False, item
        ok, number = self._scalar().accepts(item)
        return ok, number if ok else item  # refused: as given (1.5, not the whole number it was cut to)

    def _read_list(self, value) -> tuple[str | None, object]:
        """(why a list value is refused, in words, or None; the value as a tuple of numbers)."""
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",") if item.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            return "not a list", value
        read = [self._item(item) for item in items]
        numbers_read = tuple(number for _ok, number in read)
        fewest, most = self.count
        if not fewest <= len(items) <= most:
            return f"{len(items)} given", numbers_read
        seen = set()
        for item, (ok, number) in zip(items, read):
            if not ok:
                if not isinstance(number, numbers.Real):
                    return f"{_shown(item)} is not a number", numbers_read
                whole = self.kind != "int" or (math.isfinite(number) and float(number).is_integer())
                return f"{_shown(item)} is {'out of range' if whole else 'not a whole number'}", numbers_read
            if number in seen:
                return f"{number:g} is listed twice", numbers_read
            seen.add(number)
        return None, numbers_read

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
