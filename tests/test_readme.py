"""The README's results table is the summary of the shipped evaluation report, to the digit."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "scripts" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_docs_report():
    script = _script()
    assert script.readme_block() == script.results_block()


def test_docs_report_is_an_evaluation_of_the_bundled_models():
    report = json.loads((ROOT / "docs" / "report.json").read_text())
    keys = [row["source"] for row in report["summary"]]
    assert keys[:5] == ["rnn", "lstm", "gru", "attention", "transformer"]
    for model in keys[:5]:
        assert (ROOT / "pretrained" / model / "model.safetensors").is_file()
        shipped = json.loads((ROOT / "pretrained" / model / "config.json").read_text())
        measured = report["run"]["models"][model]
        # the very checkpoints that ship: same training, same step, same save
        assert (measured["step"], measured["saved_at"], measured["valid_bpt"]) == \
            (shipped["step"], shipped["saved_at"], shipped["valid_bpt"]), model
    # the app's Memory tab opens on the same report
    assert json.loads((ROOT / "pretrained" / "memory-report.json").read_text())["summary"] == report["summary"]


def test_the_bundled_models_were_trained_until_their_validation_curves_flattened():
    """README: the last quarter of training gained at most 0.045 bits, and the curves shipped are the
    models' own histories."""
    from engine.evaluate import training_curve

    report = json.loads((ROOT / "docs" / "report.json").read_text())
    for model, curve in report["training_curves"].items():
        assert curve == training_curve(ROOT / "pretrained" / model), model
        assert curve["step"][-1] == report["run"]["models"][model]["step"]
        assert 0 <= curve["late_gain_bits"] < 0.05, (model, curve["late_gain_bits"])
