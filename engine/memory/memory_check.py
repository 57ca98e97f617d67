"""The peak-memory estimate of `influence` (engine/core/memory_budget.py): composing one continuation and
attributing its notes, made from the model's config and the settings once the primer's length is known and
before the model is loaded; refused above the machine's share, naming the settings to lower."""

from __future__ import annotations

from engine.core import memory_budget
from engine.memory.influence import ATTENTION, ROWS_PER_BATCH
from engine.models import ModelConfig
from engine.training import footprint


def check_influence_memory(config: ModelConfig, primer_steps: int, bars: int, steps_per_bar: int, method: str,
                           names: dict[str, str] | None = None, where: str | None = None) -> str:
    """The line that tells the person the estimate of composing `bars` bars after a primer of `primer_steps`
    steps and attributing them with `method`; UserError above the machine's share naming the settings to
    lower (`names`: each setting as the front end words it)."""
    names = names or {}
    new_steps = bars * steps_per_bar
    estimate = memory_budget.influence(footprint.needs(config, where), primer_steps + new_steps, new_steps,
                                       ROWS_PER_BATCH, attention=method == ATTENTION)
    return memory_budget.check(estimate, f"{names.get('bars', 'bars')} or {names.get('primer_bars', 'primer bars')}")
