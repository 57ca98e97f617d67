"""The retrain's figures for the docs, read from the run folders' history.csv.

    python scripts/retrain_progress.py progress "2026-12-07 22:00 UTC"   # seed_runs/README.md's progress rows
    python scripts/retrain_progress.py table seed_runs/retrain-1         # docs/training.md's table of one seed

The table gives each model's steps, last validation (bits per token) and how much validation fell over its
last 400 and 1,000 steps and over its last quarter (the report's training_curve and late_gain_bits).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.evaluation.evaluate import training_curve  # noqa: E402
from engine.models.registry import MODEL_KEYS  # noqa: E402
from engine.training.checkpoint import read_history, read_record  # noqa: E402


def progress_cell(model_dir: Path) -> str:
    if not (model_dir / "history.csv").is_file():
        return "not started"
    rows = read_history(model_dir)
    valid = [r["valid_bpt"] for r in rows if r.get("valid_bpt") is not None]
    text = f"{rows[-1]['step']:,}" + (f", {valid[-1]:.3f}" if valid else "")
    record = read_record(model_dir) if (model_dir / "config.json").is_file() else None
    return text + (" (finished)" if record is not None and record.finished else "")


def _fell_over(steps: list[int], valid: list[float], span: int) -> str:
    back = [v for s, v in zip(steps, valid) if s <= steps[-1] - span]
    return f"{back[-1] - valid[-1]:.4f}" if back else "-"


def table(run: Path) -> None:
    print("| model | steps | validation | gain, last 400 steps | last 1,000 | last quarter |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key in MODEL_KEYS:
        curve = training_curve(run / key)  # the report's own reading of the history, its late_gain_bits too
        steps, valid, quarter = curve["step"], curve["valid_bpt"], curve["late_gain_bits"]
        quarter_text = "-" if quarter is None else f"{quarter:.4f}"
        print(f"| {key} | {steps[-1]:,} | {valid[-1]:.3f} | {_fell_over(steps, valid, 400)} | "
              f"{_fell_over(steps, valid, 1000)} | {quarter_text} |")


def progress(when: str) -> None:
    for seed in (1, 2, 3):
        run = ROOT / "seed_runs" / f"retrain-{seed}"
        print(f"| {when} | {seed} | " + " | ".join(progress_cell(run / key) for key in MODEL_KEYS) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "table":
        table(Path(sys.argv[2]))
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "progress":
        progress(sys.argv[2] if len(sys.argv) == 3 else "now")
    else:
        sys.exit(__doc__)
