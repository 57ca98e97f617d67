"""The peak-memory estimate of an evaluation (engine/core/memory_budget.py), one definition for the
command line and the Memory tab: made from the models' configs and the settings before anything is loaded,
refused above the machine's share."""

from __future__ import annotations

from pathlib import Path

from engine.core import memory_budget
from engine.evaluation.settings import EvalSettings
from engine.models import model_config
from engine.training import footprint
from engine.training.checkpoint import CONFIG_FILE, read_record

# The estimate's primers when `primers` does not bound them (every eligible test tune).
ASSUMED_PRIMERS = 200
STEPS_PER_BAR = 16  # 4/4 on the 16th grid, the common meter


def check_evaluation_memory(run_dir, keys: list[str], settings: EvalSettings, names: dict[str, str] | None = None) -> str:
    """The line that tells the person the estimate; UserError above the machine's share naming the settings
    to lower (`names`: each setting as the front end words it)."""
    run_dir, names = Path(run_dir), names or {}
    needs = [footprint.needs(read_record(run_dir / k).model, str(run_dir / k / CONFIG_FILE))
             for k in keys if (run_dir / k / CONFIG_FILE).is_file()]
    probe = settings.probe
    estimate = memory_budget.evaluation(
        needs, decoding_rows=(settings.primers or ASSUMED_PRIMERS) * settings.samples,
        steps=settings.bars * STEPS_PER_BAR, measure_rows=16,
        measure_length=max(settings.gradient_max_k, settings.nll_bars * STEPS_PER_BAR,
                           (settings.primer_bars + settings.bars) * STEPS_PER_BAR),
        probe=[footprint.needs(model_config(k, probe.preset)) for k in keys] if probe else [],
        probe_batch=probe.batch_size if probe else 0, probe_length=probe.length if probe else 0)
    words = [names.get(name, name) for name in ("primers", "samples", "bars")]
    return memory_budget.check(estimate, f"{words[0]}, {words[1]} or {words[2]}")
