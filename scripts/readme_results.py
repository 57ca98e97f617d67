"""Write the README's results table from docs/report.json (the evaluation of the bundled models).

The table is engine.evaluation.report.summary_markdown of that report, the same text `evaluate` writes to
summary.md, so the README cannot drift from the report: tests/test_readme.py checks it.

    python scripts/readme_results.py          # rewrite the block between the results markers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.evaluation.report import summary_markdown  # noqa: E402

START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_block(report_path: Path = ROOT / "docs" / "report.json") -> str:
    return summary_markdown(json.loads(report_path.read_text(encoding="utf-8")))


def readme_block(readme_path: Path = ROOT / "README.md") -> str:
    text = readme_path.read_text(encoding="utf-8")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{results_block()}{END}{tail}", encoding="utf-8")
    print(f"wrote the results table into {readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
