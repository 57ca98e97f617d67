"""docs/settings.md from the settings tables: `python -m commands.settings_doc` rewrites it, and
tests/test_settings.py fails while it differs from the tables (one source per setting, docs included)."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def render() -> str:
    from engine.evaluation.settings import EVAL_SETTINGS
    from engine.generation.generate import SAMPLE_SETTINGS
    from engine.memory.probe import PROBE_SETTINGS
    from engine.training.train_config import TRAIN_SETTINGS

    from .flags import COMMAND_FLAGS

    parts = [
        "# Settings\n",
        "Every setting a person can give, as the app labels it and as the command line spells it, with its range and "
        "default. Written by `python -m commands.settings_doc` from the one table per settings class "
        "(engine/core/settings.py); the CLI's flags, the app's fields and every range check are built from the same "
        "tables. A value out of range is refused before any work starts, with the flag's name on the command line "
        "and the field's label in the app.\n",
        TRAIN_SETTINGS.markdown("Training (`train`, the Train tab)"),
        SAMPLE_SETTINGS.markdown("Composing (`generate`, `influence`, the Listen tab)"),
        EVAL_SETTINGS.markdown("Evaluation (`evaluate`, the Memory tab)"),
        PROBE_SETTINGS.markdown("The theme-recall probe (`evaluate`, the Memory tab's Run probe)"),
        COMMAND_FLAGS.markdown("One command's own numbers (`generate`, `influence`, `originality`, `metrics`, "
                               "`corpus`, `train --workers`, `gui`)"),
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
