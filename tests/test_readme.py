"""The README's results table is the summary of the shipped evaluation report, to the digit."""

import importlib.util
import json
from dataclasses import replace
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


def test_the_bundled_models_are_the_converged_recipe_stopped_by_their_own_validation():
    """README: the bundled models are `train --recipe converged --seed 1` (issue 23: memory is measured on models
    trained to convergence), each stopped by its own validation curve rather than the step budget, and the
    curves the report shows are the models' own histories, to their last step."""
    from engine.evaluation.evaluate import training_curve
    from engine.training.checkpoint import read_record
    from engine.training.run_plan import RESUMABLE_OVERRIDES
    from engine.training.train_config import CONVERGED_BEFORE_FLAT_GAIN, converged_config

    # the recipe's version before the last-quarter rule, until the retrain of seed_runs/retrain-N lands
    recipe = replace(converged_config(seed=1), **CONVERGED_BEFORE_FLAT_GAIN).resolved().to_dict()
    report = json.loads((ROOT / "docs" / "report.json").read_text())
    assert len(report["training_curves"]) == 7
    for model, curve in report["training_curves"].items():
        record = read_record(ROOT / "pretrained" / model)
        trained = record.training.to_dict()
        differ = {k for k in recipe if trained[k] != recipe[k]} - set(RESUMABLE_OVERRIDES)
        assert not differ, (model, {k: (trained[k], recipe[k]) for k in differ})
        assert record.stopped_early and record.step < recipe["steps"], model
        assert curve == training_curve(ROOT / "pretrained" / model), model
        assert curve["step"][-1] == report["run"]["models"][model]["step"] == record.step


def test_every_interval_the_readme_reading_quotes_is_in_the_report_summary():
    """The prose under the results ("What it shows", up to the originality paragraph, whose figures are the
    report's `originality` block) quotes every interval as the summary prints it, sign included: a figure that
    drifts from the report, or a comparison made from a number the report does not have, fails here."""
    import re

    script = _script()
    block = " ".join(script.results_block().split())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prose = readme.split(script.END, 1)[1].split("- **Composing, not copying.**", 1)[0]
    number = r"[-+]?\d+\.\d+"
    quoted = [" ".join(m.group().split()) for m in re.finditer(rf"{number}\s+\[{number},\s+{number}\]", prose)]
    assert len(quoted) > 30, quoted  # the reading rests on the report's intervals
    missing = [q for q in quoted if not re.search(rf"(?<![\d.+-]){re.escape(q)}", block)]
    assert not missing, missing


def test_the_originality_reading_quotes_the_reports_figures():
    """The README's originality paragraph (issue 27) answers its two questions with the shipped report's
    figures: every copy rate it quotes with an interval is a model's or the human baseline's at some
    temperature, in %, and the counts of long runs are the report's histograms'."""
    import re

    report = json.loads((ROOT / "docs" / "report.json").read_text())["originality"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("- **Composing, not copying.**", 1)[1].split("\n\n", 1)[0]
    paragraph = " ".join(paragraph.split())
    rates = {(f"{100 * c['mean']:.2f}", f"{100 * c['lo']:.2f}", f"{100 * c['hi']:.2f}")
             for by_t in report.values() for entry in by_t.values() for c in [entry["copy_rate"]]}
    quoted = re.findall(r"(\d+\.\d+)% \[(\d+\.\d+), (\d+\.\d+)\]", paragraph)
    assert len(quoted) >= 12, quoted  # the reading rests on the report's intervals
    assert [q for q in quoted if q not in rates] == []
    bare = re.findall(r"(?<!% )\[(\d+\.\d+), (\d+\.\d+)\]", paragraph)  # an interval quoted without its mean
    assert bare and [b for b in bare if b not in {r[1:] for r in rates}] == []
    human = report["human"]["1.0"]
    assert f"n = {human['copy_rate']['n']} tunes" in paragraph

    def long_runs(entry) -> int:
        hist = entry["longest_run_bars"]["histogram"]
        return sum(c for bars, c in zip(hist["bars"], hist["continuations"]) if bars >= 3)

    models = [entry for src, by_t in report.items() if src != "human" for entry in by_t.values()]
    total = sum(e["longest_run_bars"]["n_continuations"] for e in models)
    assert f"{long_runs(human)} of the {human['longest_run_bars']['n_continuations']} hold a copied run of 3 bars" \
        in paragraph
    assert f"{sum(map(long_runs, models))} of the {total:,} model continuations hold a run of 3 bars" in paragraph
