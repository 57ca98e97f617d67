"""Argument types that range-check a command-line value as argparse reads it.

An out-of-range value stops the command before anything is loaded or built, with argparse's usage line
and `main.py CMD: error: argument --name: ...` naming the allowed range (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_in(lo: int, hi: int, note: str = "") -> Callable[[str], int]:
    """An integer from lo to hi inclusive; `note` explains a special value ("0 = all cores")."""
    return _ranged(int, f"an integer from {lo} to {hi}", lo, hi, note)


def float_in(lo: float, hi: float, note: str = "") -> Callable[[str], float]:
    """A finite number from lo to hi inclusive (nan and inf are refused)."""
    return _ranged(float, f"a number from {lo:g} to {hi:g}", lo, hi, note)


def _ranged(convert, allowed: str, lo, hi, note: str):
    allowed += f" ({note})" if note else ""

    def parse(text: str):
        shown = text.strip() if len(text) <= 40 else text.strip()[:40] + "..."
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{allowed}, not {shown!r}") from None
        if not lo <= value <= hi:  # nan and inf fail this too: the bounds are finite
            raise argparse.ArgumentTypeError(f"{allowed}, not {shown}")
        return value

    parse.__name__ = convert.__name__  # what argparse calls the type in its own messages
    return parse
