"""The peak-memory estimate of composing (engine/core/memory_budget.py), one definition for the command
line and the Listen tab: checked before a model composes, refused above the machine's share."""

from __future__ import annotations

from engine.core import memory_budget
from engine.generation.generate import SampleSettings
from engine.models import ModelConfig
from engine.music.midi_io import MAX_STEPS_PER_BAR  # the longest bar a melody may have: the estimate's bound
from engine.training import footprint


def check_generation_memory(configs: list[ModelConfig], settings: SampleSettings, names: dict[str, str] | None = None,
                            where: str | None = None) -> str:
    """The line that tells the person the estimate of composing with each model in turn; UserError above the
    machine's share naming the settings to lower (`names`: each setting as the front end words it)."""
    names = names or {}
    needs = [footprint.needs(config, where) for config in configs]
    estimate = memory_budget.generation(needs, settings.variations, settings.bars * MAX_STEPS_PER_BAR)
    return memory_budget.check(estimate, f"{names.get('variations', 'variations')} or {names.get('bars', 'bars')}")
