"""What did it remember (issue 16): after Generate, clicking a composed note on a Listen row draws, in
every row at once, what that row's note at the same moment drew on, with the engine's own weights
(engine.memory.influence, whose known answers are tested in tests/test_influence.py); each row says
how far back its notes reach; the attention rows switch to attention weights; Escape clears.

The expected weights are computed here from what the user sees (the primer tune and the row's melody)
through melody_influence, apart from the tab's own lookup tables.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

PRIMER_BARS, BARS = 4, 4
MODELS = ("rnn", "lstm", "gru", "attention", "transformer")


@pytest.fixture
def composed(bundled, window, user):
    """The bundled (here: tiny) models have composed, and what their notes drew on is in."""
    user.show_tab("Listen")
    tab = window.listen_tab
    tab.primer_bars.setValue(PRIMER_BARS)
    tab.bars.setValue(BARS)
    user.click("Generate")  # waits for the composing and then for the influence job
    assert all(tab.row(k).melody is not None for k in MODELS)
    return tab


def _primer(tab):
    from engine.data.primer import take_primer

    return take_primer(tab.current_tune(), PRIMER_BARS)


def _expected(window, tab, key: str, step: int, method: str = "gradient"):
    """The engine's answer for the note of `key`'s row sounding at `step` (from the primer's first step):
    (target (onset, pitch, length) in bars, {(onset, pitch) in bars: weight}, the row's summary)."""
    from engine.memory.influence import influence_summary, melody_influence

    loaded = window.state.models[key]
    primer = _primer(tab)
    result = melody_influence(loaded.model, primer, tab.row(key).melody, loaded.token_config, method, key)
    spb = primer.steps_per_bar
    notes = result["notes"]
    entry = next(e for e in result["influence"]
                 if notes[e["note"]][0] <= step < notes[e["note"]][0] + notes[e["note"]][2])
    onset, pitch, length = notes[entry["note"]]
    sources = {(notes[j][0] / spb, notes[j][1]): w for j, w in entry["sources"]}
    return (onset / spb, pitch, length / spb), sources, influence_summary(result, spb)


def _sounding(melody, step: int):
    notes = melody.note_array()
    hit = notes[(notes[:, 0] <= step) & (step < notes[:, 0] + notes[:, 2])]
    return hit[0] if len(hit) else None


def _a_moment_every_row_plays(tab) -> int:
    """A continuation step (from the primer's first step) where every model row and the human play a note."""
    primer_steps = PRIMER_BARS * tab.row("human").melody.steps_per_bar
    for step in range(primer_steps + 1, primer_steps + BARS * tab.row("human").melody.steps_per_bar):
        if all(_sounding(tab.row(k).melody, step - primer_steps) is not None for k in (*MODELS, "human")):
            return step
    pytest.fail("no moment where every row sounds a note")


def _point(roll, x_bars: float, pitch: float):
    vb = roll.getPlotItem().vb
    return roll.mapFromScene(vb.mapViewToScene(QPointF(x_bars, pitch)))


def _click_note(user, tab, key: str, step: int) -> None:
    """Click, with the mouse, the note of `key`'s row sounding at `step`, in the middle of that step."""
    row = tab.row(key)
    spb = row.melody.steps_per_bar
    note = _sounding(row.melody, step - PRIMER_BARS * spb)
    tab.scroll.ensureWidgetVisible(row)
    with user.qtbot.captureExceptions() as errors:
        QTest.mouseClick(row.roll.viewport(), Qt.MouseButton.LeftButton,
                         pos=_point(row.roll, (step + 0.5) / spb, float(note[1])))
    assert not errors, errors


def _leave(roll) -> None:
    """What Qt sends a widget when the mouse leaves it."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(roll, QEvent(QEvent.Type.Leave))


def _drawn(roll):
    shown = roll.influence_shown
    assert shown is not None
    return shown["target"], {(s[0], s[1]): s[3] for s in shown["sources"]}


def _assert_drawn_as_engine(window, tab, key: str, step: int, method: str = "gradient"):
    target, sources, summary = _expected(window, tab, key, step, method)
    drawn_target, drawn = _drawn(tab.row(key).roll)
    assert drawn_target == pytest.approx(target), key
    assert drawn.keys() == sources.keys(), key
    for where, weight in sources.items():
        assert drawn[where] == pytest.approx(weight, abs=1e-9), (key, where)
    # causal and normalised, as drawn
    assert all(onset < target[0] for onset, _pitch in drawn), key
    assert all(w >= 0 for w in drawn.values()) and sum(drawn.values()) <= 1 + 1e-9, key
    return summary


def test_clicking_a_note_draws_its_sources_in_every_row_with_the_engines_weights(composed, window, user):
    tab = composed
    step = _a_moment_every_row_plays(tab)
    _click_note(user, tab, "rnn", step)
    for key in MODELS:
        summary = _assert_drawn_as_engine(window, tab, key, step)
        # the row says how far back its notes reach, on how many notes, against the uniform spread
        label = tab.row(key).info.text()
        assert label == (f"{summary['mean_distance_bars']:.1f} bars back ({summary['n_notes']} notes; "
                         f"uniform {summary['uniform_distance_bars']:.1f})"), (key, label)
        assert "not a chance level" in tab.row(key).info.toolTip()
    # the human row: the real note's nearest earlier repeat, a whole number of bars back, same pitch
    human = tab.row("human")
    spb = human.melody.steps_per_bar
    assert human.info.text().startswith("repeats ")
    (onset, pitch, _), drawn = _drawn(human.roll)
    assert onset * spb <= step < onset * spb + _sounding(human.melody, step - PRIMER_BARS * spb)[2]
    for source_onset, source_pitch in drawn:  # none when the note repeats nothing earlier
        assert source_pitch == pitch and (onset - source_onset) % 1 == 0 and onset - source_onset >= 1
        assert drawn[(source_onset, source_pitch)] == 1.0
    # the other notes fade while sources are shown; Escape clears every row
    assert tab.row("rnn").roll._note_items[0].opacity() < 1
    user.press_keys(Qt.Key.Key_Escape)
    assert all(r.roll.influence_shown is None for r in tab.rows)
    assert tab.row("rnn").roll._note_items[0].opacity() == 1
    assert (step // spb) < PRIMER_BARS + BARS


def test_the_attention_box_switches_method_where_the_model_has_attention(composed, window, user):
    tab = composed
    step = _a_moment_every_row_plays(tab)
    for key in ("rnn", "lstm", "gru"):
        box = tab.row(key).attention_box
        assert box.isVisible() and not box.isEnabled(), key
        assert "no attention weights" in box.toolTip(), key
    assert not tab.row("human").attention_box.isVisible()
    _click_note(user, tab, "transformer", step)
    for key in ("attention", "transformer"):
        row = tab.row(key)
        gradient_label = row.info.text()
        user.click(row.attention_box)
        assert row.attention_box.isChecked()
        summary = _assert_drawn_as_engine(window, tab, key, step, "attention")
        assert _drawn(row.roll)[1] != _expected(window, tab, key, step, "gradient")[1], key
        assert row.info.text().startswith(f"{summary['mean_distance_bars']:.1f} bars back"), key
        assert "attention weights" in row.info.toolTip()
        user.click(row.attention_box)  # and back
        _assert_drawn_as_engine(window, tab, key, step, "gradient")
        assert row.info.text() == gradient_label
    _assert_drawn_as_engine(window, tab, "rnn", step)  # the other rows were not touched


def test_pointing_is_a_lookup_and_a_new_generate_replaces_the_tables(composed, window, user, monkeypatch):
    """Hovering never computes (the tables are precomputed); a click on the pinned note unpins it; the
    mouse leaving clears; after another Generate the drawing is the new melodies' own."""
    import importlib

    influence = importlib.import_module("engine.memory.influence")  # the module (the package exports a function)
    tab = composed
    step = _a_moment_every_row_plays(tab)

    def no_computing(*_args, **_kwargs):
        raise AssertionError("influence computed while pointing")

    target, sources, _summary = _expected(window, tab, "attention", step)
    with monkeypatch.context() as patch:
        patch.setattr(influence, "influence", no_computing)
        roll = tab.row("gru").roll
        spb = tab.row("gru").melody.steps_per_bar
        note = _sounding(tab.row("gru").melody, step - PRIMER_BARS * spb)
        QTest.mouseMove(roll.viewport(), _point(roll, (step + 0.5) / spb, float(note[1])))
        assert all(tab.row(k).roll.influence_shown is not None for k in MODELS)
        assert _drawn(tab.row("attention").roll) == (pytest.approx(target), pytest.approx(sources))
        _leave(tab.row("gru").roll)  # the mouse leaves the rolls: nothing was pinned
        assert all(r.roll.influence_shown is None for r in tab.rows)
        _click_note(user, tab, "gru", step)  # pinned: it stays after the mouse leaves
        _leave(tab.row("gru").roll)
        assert tab.row("gru").roll.influence_shown is not None
        _click_note(user, tab, "gru", step)  # the pinned note again: unpinned
        assert tab.row("gru").roll.influence_shown is None
    before = {k: tab.row(k).melody.notes for k in MODELS}
    tab.seed.setValue(tab.seed.value() + 1)
    user.click("Generate")
    assert all(r.roll.influence_shown is None for r in tab.rows)
    assert {k: tab.row(k).melody.notes for k in MODELS} != before
    step = _a_moment_every_row_plays(tab)
    _click_note(user, tab, "lstm", step)
    for key in MODELS:
        _assert_drawn_as_engine(window, tab, key, step)


def test_only_the_first_bars_are_attributed_and_the_screen_says_so(bundled, window, user):
    """A long continuation: the first 16 bars are attributed (cost grows with the square of the length)."""
    from engine.evaluation.evaluate import INFLUENCE_BARS

    user.show_tab("Listen")
    tab = window.listen_tab
    tab.primer_bars.setValue(2)
    tab.bars.setValue(INFLUENCE_BARS + 4)
    user.click("Generate")
    assert f"the first {INFLUENCE_BARS} bars" in tab.status.text() and "square" in tab.status.text()
    roll = tab.row("rnn").roll
    assert roll._influence_end.isVisible() and roll._influence_end.value() == 2 + INFLUENCE_BARS
    table = tab.influence.table("rnn")
    spb = tab.row("rnn").melody.steps_per_bar
    assert table.end_step == (2 + INFLUENCE_BARS) * spb
    assert all(table.note_at(s) is None for s in range(table.end_step, (2 + INFLUENCE_BARS + 4) * spb))
    summary = tab.influence.table("rnn").summary
    assert np.isfinite(summary["mean_distance_bars"]) and summary["n_notes"] > 0


def test_the_help_page_says_what_the_view_shows_and_what_it_does_not(qtbot):
    from PySide6.QtWidgets import QTextBrowser

    from gui.help import show_why_rnns_forget

    dialog = show_why_rnns_forget()
    qtbot.addWidget(dialog)
    text = " ".join(dialog.findChild(QTextBrowser).toPlainText().split())
    assert "What did it remember? (Listen)" in text
    for point in ("Attention weights are not explanations on their own", "It is local",
                  "they say where a model looked, not how strongly it remembers", "Rests take some of the weight",
                  "the cost grows with the square of the length", "uniform spread", "not a chance level"):
        assert point in text, point


def test_the_screenshot_flag_pin_needs_generate(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, str(root / "main.py"), "gui", "--pin", "12.5", "--quit-after", "1"],
                         capture_output=True, text=True, timeout=60, cwd=root)
    assert run.returncode != 0
    assert run.stderr.startswith("error: --pin BAR needs --generate") and "Traceback" not in run.stderr
