"""The small sweep behind the classroom defaults (docs/sweep/): several learning rates and batch sizes,
each trained with the project's own `train` command, their validation curves kept.

    python scripts/sweep_schedule.py --out runs/sweep --docs docs/sweep [--only NAME ...] [--collect]

Each configuration trains the five small models on the bundled corpus (whole tunes, seed 0, two
processes on this machine). What is compared is validation bits per token against tokens seen: time
follows from the training throughput that `main.py bench` measures, so the comparison holds on a busy
machine too. docs/sweep/curves.csv holds every validation point; docs/sweep/summary.json the final
figures, docs/sweep/curves.png the curves; docs/training.md says which configuration won and why.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine.models import default_selection  # noqa: E402

MODELS = tuple(default_selection())

# name: train flags. The same token budget (1500 x 32 rows of 256 steps = 12.3M tokens) for each.
CONFIGS = {
    "lr6e-3_b32": ["--lr", "6e-3", "--batch-size", "32", "--steps", "1500"],
    "lr1.2e-2_b32": ["--lr", "1.2e-2", "--batch-size", "32", "--steps", "1500"],
    "lr6e-3_b16": ["--lr", "6e-3", "--batch-size", "16", "--steps", "3000"],
    "lr6e-3_b32_bf16": ["--lr", "6e-3", "--batch-size", "32", "--steps", "1500", "--precision", "bf16"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "runs" / "sweep"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "sweep"))
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--collect", action="store_true", help="train nothing: write docs/sweep/ from the runs there")
    args = parser.parse_args()
    out, docs = Path(args.out), Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    for name, flags in CONFIGS.items():
        if args.collect or (args.only and name not in args.only):
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
        summary[name] = {"flags": " ".join(flags), "steps_planned": run["training"]["steps"], "models": {}}
        for key in MODELS:
            with open(run_dir / key / "history.csv") as fh:
                history = list(csv.DictReader(fh))
            valid = [r for r in history if r["valid_bpt"]]
            for r in valid:
                rows.append({"config": name, "model": key, "step": r["step"],
                             "tokens": int(r["step"]) * batch * window, "valid_bpt": r["valid_bpt"],
                             "elapsed_s": r["elapsed_s"]})
            summary[name]["models"][key] = {"last_step": int(valid[-1]["step"]),
                                            "final_valid_bpt": float(valid[-1]["valid_bpt"]),
                                            "elapsed_s": float(valid[-1]["elapsed_s"])}
    with open(docs / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["config", "model", "step", "tokens", "valid_bpt", "elapsed_s"])
        writer.writeheader()
        writer.writerows(rows)
    (docs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(rows, docs / "curves.png")


def plot(rows: list[dict], path: Path) -> None:
    """One panel per model: validation bits per token against training tokens, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(r["config"] for r in rows))
    fig, axes = plt.subplots(1, len(MODELS), figsize=(4 * len(MODELS), 3.6), sharey=True)
    for ax, key in zip(axes, MODELS):
        for config in configs:
            pts = [(r["tokens"] / 1e6, float(r["valid_bpt"])) for r in rows if r["model"] == key and r["config"] == config]
            if pts:
                ax.plot(*zip(*pts), label=config, lw=1.4)
        ax.set_title(key)
        ax.set_xlabel("training tokens (millions)")
        ax.set_ylim(0.8, 3.0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation bits per token (197 tunes)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
