"""The app's composing and evaluating go through the same peak-memory estimate as the commands (issue 26
item 1): above the machine's share they are refused before any work, naming the fields to lower by their
labels."""

from __future__ import annotations

from engine.core import memory_budget
from tests.gui.driving import set_small_evaluation


def test_generate_and_evaluate_above_the_budget_are_refused_naming_the_fields(window, user, qtbot, tiny_run,
                                                                            small_evaluations, monkeypatch):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    monkeypatch.setenv(memory_budget.BUDGET_VARIABLE, "1")  # a 1 MB machine: nothing fits
    window.show_tab("listen")
    with qtbot.waitSignal(window.listen_tab.generationFinished, timeout=20000):
        user.click("Generate", wait=False)
    window.show_tab("memory")
    set_small_evaluation(window)  # enough primers for the tiny run's test tunes: the memory is what is refused
    user.click("Evaluate models")
    # both dialogs may be open at once: Qt lists its top-level windows in no set order, so each is found by title
    by_title = {m.title: m for m in user.warnings()}
    assert sorted(by_title) == ["Evaluation failed", "Generation failed"], sorted(by_title)
    composing, evaluating = by_title["Generation failed"], by_title["Evaluation failed"]
    assert f"allows 1.0 MB ({memory_budget.BUDGET_VARIABLE}=1): lower Variations or Bars" in composing.text
    assert "lower Primers, Samples or Bars to continue" in evaluating.text, evaluating.text
    assert all(row.melody is None for row in window.listen_tab.rows if row.key != "human")
