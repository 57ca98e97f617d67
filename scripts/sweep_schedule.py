"""The small sweep behind the classroom defaults (docs/sweep/): several learning rates and batch sizes,
each trained with the project's own `train` command, their validation curves kept.

    python scripts/sweep_schedule.py --out runs/sweep --docs docs/sweep [--only NAME ...]

Each configuration trains the five small models on the bundled corpus (whole tunes, seed 0, two
processes on this machine). What is compared is validation bits per token against tokens seen: time
follows from the training throughput that `main.py bench` measures, so the comparison holds on a busy
machine too. docs/sweep/curves.csv holds every validation point; docs/sweep/summary.json the final
figures; the README and docs/training.md say which configuration won and why.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("rnn", "lstm", "gru", "attention", "transformer")

# name: train flags. The same token budget (1500 x 32 rows of 256 steps = 12.3M tokens) for each.
CONFIGS = {
    "lr6e-3_b32": ["--lr", "6e-3", "--batch-size", "32", "--steps", "1500"],
    "lr1.2e-2_b32": ["--lr", "1.2e-2", "--batch-size", "32", "--steps", "1500"],
    "lr6e-3_b16": ["--lr", "6e-3", "--batch-size", "16", "--steps", "3000"],
    "lr6e-3_b32_bf16": ["--lr", "6e-3", "--batch-size", "32", "--steps", "1500", "--precision", "bf16"],
    "lr3e-3_b32": ["--lr", "3e-3", "--batch-size", "32", "--steps", "1500"],
    "lr6e-3_b32_crops": ["--lr", "6e-3", "--batch-size", "32", "--steps", "1500", "--sequences", "crops"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "runs" / "sweep"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "sweep"))
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    out, docs = Path(args.out), Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    for name, flags in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        run_dir = out / name
        if (run_dir / "run.json").is_file():  # started before: continue it (a finished run is left alone)
            cmd = [sys.executable, str(ROOT / "main.py"), "train", "--resume", "--out", str(run_dir)]
        else:
            cmd = [sys.executable, str(ROOT / "main.py"), "train", "--out", str(run_dir), "--preset", "small",
                   "--seed", "0", "--eval-every", "50", *flags]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    collect(out, docs)
    return 0


def collect(out: Path, docs: Path) -> None:
    rows, summary = [], {}
    for name, flags in CONFIGS.items():
        run_dir = out / name
        if not all((run_dir / k / "history.csv").is_file() for k in MODELS):
            continue
        run = json.loads((run_dir / "run.json").read_text())
        batch, window = run["training"]["batch_size"], run["training"]["window"]
        summary[name] = {"flags": " ".join(flags), "models": {}}
        for key in MODELS:
            history = list(csv.DictReader(open(run_dir / key / "history.csv")))
            valid = [r for r in history if r["valid_bpt"]]
            for r in valid:
                rows.append({"config": name, "model": key, "step": r["step"],
                             "tokens": int(r["step"]) * batch * window, "valid_bpt": r["valid_bpt"],
                             "elapsed_s": r["elapsed_s"]})
            summary[name]["models"][key] = {"final_valid_bpt": float(valid[-1]["valid_bpt"]),
                                            "elapsed_s": float(valid[-1]["elapsed_s"])}
    with open(docs / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["config", "model", "step", "tokens", "valid_bpt", "elapsed_s"])
        writer.writeheader()
        writer.writerows(rows)
    (docs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
