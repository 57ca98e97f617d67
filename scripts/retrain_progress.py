"""Prints the progress rows of seed_runs/README.md's retrain table: per seed, each model's last logged step
and last validation (bits per token), read from the run folders' history.csv.

    python scripts/retrain_progress.py "2026-12-07 22:10 UTC"
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.models.registry import MODEL_KEYS  # noqa: E402
from engine.training.checkpoint import read_history, read_record  # noqa: E402


def cell(model_dir: Path) -> str:
    if not (model_dir / "history.csv").is_file():
        return "not started"
    rows = read_history(model_dir)
    valid = [r for r in rows if r.get("valid_bpt") is not None]
    text = f"{rows[-1]['step']:,}" + (f", {valid[-1]['valid_bpt']:.3f}" if valid else "")
    record = read_record(model_dir) if (model_dir / "config.json").is_file() else None
    return text + (" (finished)" if record is not None and record.finished else "")


def main(when: str) -> None:
    for seed in (1, 2, 3):
        run = ROOT / "seed_runs" / f"retrain-{seed}"
        print(f"| {when} | {seed} | " + " | ".join(cell(run / key) for key in MODEL_KEYS) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "now")
