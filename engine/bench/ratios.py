"""A ratio of two sides measured in turn (docs/design.md section 6).

The machine is shared and its load drifts, so a ratio is never one pair of timings: its two sides take turns
in at least ALTERNATIONS alternations, each alternation gives one ratio, and the bench reports their median
as the figure, with the min-max of the alternations and their number beside it (`<name>_range`,
`<name>_n`). A spread that straddles 1 says the two sides are not told apart on this machine.
"""

from __future__ import annotations

import statistics

ALTERNATIONS = 5


def ratio_fields(name: str, ratios: list[float]) -> dict:
    """{name: median, name_range: [min, max], name_n: alternations} of the per-alternation ratios."""
    if not ratios:
        return {name: None, f"{name}_range": None, f"{name}_n": 0}
    return {name: statistics.median(ratios), f"{name}_range": [min(ratios), max(ratios)], f"{name}_n": len(ratios)}
