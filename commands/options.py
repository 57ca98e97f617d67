"""Argument types that range-check a command-line value as argparse reads it.

An out-of-range value stops the command before anything is loaded or built, with argparse's usage line
and `main.py CMD: error: argument --name: ...` naming the allowed range (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_in(lo: int, hi: int, note: str = "") -> Callable[[str], int]:
    """An integer from lo to hi inclusive; `note` explains a special value ("0 = all cores")."""
    allowed = f"an integer from {lo} to {hi}" + (f" ({note})" if note else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{allowed}, not {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{allowed}, not {value}")
        return value

    parse.__name__ = "integer"  # what argparse calls the type in its own messages
    return parse


def float_in(lo: float, hi: float, note: str = "") -> Callable[[str], float]:
    """A finite number from lo to hi inclusive (nan and inf are refused)."""
    allowed = f"a number from {lo:g} to {hi:g}" + (f" ({note})" if note else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{allowed}, not {text!r}") from None
        if not (math.isfinite(value) and lo <= value <= hi):
            raise argparse.ArgumentTypeError(f"{allowed}, not {text.strip()}")
        return value

    parse.__name__ = "number"
    return parse
