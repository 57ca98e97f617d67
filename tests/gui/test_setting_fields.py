"""The app's setting fields come from the engine's settings tables (engine/core/settings.py): each field of the
Train, Listen and Memory tabs takes its range, unit, tooltip and label from its Setting, so the app offers
what the command line and the engine accept, and says it in the same words."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel

from engine.core.validation import Limit
from engine.evaluation.settings import EVAL_SETTINGS
from engine.generation.generate import SAMPLE_SETTINGS
from engine.training.train_config import TRAIN_SETTINGS

QT_INT_MAX = 2**31 - 1  # a Qt spin box holds a 32-bit int


def _type(qtbot, box, text: str) -> None:
    box.setFocus()
    box.lineEdit().selectAll()
    QTest.keyClicks(box.lineEdit(), text)
    QTest.keyClick(box, Qt.Key.Key_Return)


def _label_beside(field) -> str:
    """The text the person reads beside a field: its form row's label, or the label that names it."""
    parent = field.parentWidget()
    form = parent.layout() if parent is not None else None
    while form is not None and not isinstance(form, QFormLayout):
        form = next((form.itemAt(i).layout() for i in range(form.count())
                     if isinstance(form.itemAt(i).layout(), QFormLayout)), None)
    if isinstance(form, QFormLayout) and form.labelForField(field) is not None:
        return form.labelForField(field).text()
    named = [lab.text() for lab in field.window().findChildren(QLabel) if lab.buddy() is field]
    assert named, f"no label beside {field.accessibleName()!r}"
    return named[0]


def _assert_from_table(field, setting, beside: str | None = None) -> None:
    """Range, unit, tooltip and names as the table says (an int's maximum cut to what Qt can hold). `beside`:
    the words beside the field where a sentence reads better than the label alone."""
    limit = setting.limit
    assert field.isVisible(), setting.name
    assert field.accessibleName() == setting.label and _label_beside(field) == (beside or setting.label)
    assert field.toolTip().lower().startswith(setting.help.lower()), (field.toolTip(), setting.help)
    if isinstance(field, QComboBox):
        assert [field.itemText(i) for i in range(field.count())] == [str(c) for c in limit.choices]
        return
    assert field.suffix() == (f" {setting.unit}" if setting.unit else "")
    if limit.kind == "int":
        assert field.minimum() == int(limit.lo) and field.maximum() == min(int(limit.hi), QT_INT_MAX)
    else:  # an open lower bound: the smallest step the field shows
        assert (limit.lo < field.minimum() <= limit.lo + 0.01) if limit.lo_open else field.minimum() == limit.lo
        assert field.maximum() == limit.hi


def test_the_train_tab_fields_are_the_training_table(window, user, qtbot):
    user.show_tab("Train")
    tab = window.train_tab
    for name, field in (("preset", tab.preset), ("steps", tab.steps), ("window", tab.window_len), ("seed", tab.seed)):
        _assert_from_table(field, TRAIN_SETTINGS[name])
    for name, field in (("processes", tab.workers.processes), ("threads", tab.workers.threads)):
        assert field.text() == "auto"  # unset: the engine chooses
        assert field.accessibleName() == TRAIN_SETTINGS[name].label
        assert field.minimum() == TRAIN_SETTINGS[name].limit.lo - 1 and field.maximum() == TRAIN_SETTINGS[name].limit.hi
    lr = TRAIN_SETTINGS["lr"]
    assert tab.learning_rate.accessibleName() == lr.label and _label_beside(tab.learning_rate) == lr.label
    assert tab.learning_rate.toolTip().lower().startswith(lr.help.lower()) and tab.learning_rate.maximum() == lr.limit.hi
    assert 0 < tab.learning_rate.minimum() < 1e-9  # (0, 1]: anything above zero
    # typed past the table's maximum (8192, the old field stopped at 4096), the window stops at it
    _type(qtbot, tab.window_len, "8192")
    assert tab.window_len.value() == 8192 and tab.window_len.text() == "8192 steps"
    QTest.keyClick(tab.window_len, Qt.Key.Key_Up)
    _type(qtbot, tab.window_len, "9000")
    assert tab.window_len.value() <= 8192
    _type(qtbot, tab.seed, "4000000000")  # above what the field can hold: never more than a 32-bit int
    assert 0 <= tab.seed.value() <= QT_INT_MAX


def test_the_listen_and_memory_fields_are_the_sampling_and_evaluation_tables(window, user):
    user.show_tab("Listen")
    listen = window.listen_tab
    _assert_from_table(listen.bars, SAMPLE_SETTINGS["bars"], beside="then compose")  # "then compose 16 bars"
    for name in ("temperature", "top_p", "variations", "seed"):
        _assert_from_table(getattr(listen, name), SAMPLE_SETTINGS[name])
    user.show_tab("Memory")
    memory = window.memory_tab
    for name in ("primers", "primer_bars", "bars"):
        _assert_from_table(getattr(memory, name), EVAL_SETTINGS[name])


@pytest.fixture
def narrower_window(monkeypatch):
    """The training table's window changed (before the app starts): 8 to 512 steps, with new words."""
    setting = replace(TRAIN_SETTINGS["window"], limit=Limit("int", 8, 512, optional=True), help="a new help text")
    monkeypatch.setitem(TRAIN_SETTINGS.by_name, "window", setting)
    return setting


def test_a_change_in_the_table_changes_the_field(narrower_window, window, user, qtbot):
    user.show_tab("Train")
    field = window.train_tab.window_len
    assert field.maximum() == 512 and field.toolTip() == "A new help text"
    _type(qtbot, field, "500")
    QTest.keyClick(field, Qt.Key.Key_PageUp)  # ten steps up from 500: stops at the table's 512
    assert field.value() == 512


def test_a_setting_the_engine_refuses_is_named_by_its_label(window, user, qtbot):
    """Batch x window^2 attention scores over the limit: the message names the fields, not the CLI flags."""
    user.show_tab("Train")
    tab = window.train_tab
    tab.preset.setCurrentText("tiny")
    tab.window_len.setValue(8192)
    user.click("Start training")
    messages = [m.text for m in user.warnings()]
    assert len(messages) == 1 and "Window" in messages[0] and "Batch size" in messages[0], messages
    assert "--" not in messages[0] and tab.start_button.isEnabled() and not tab.running


def test_a_float_field_keeps_the_decimals_typed_or_says_why_not(window, user, qtbot):
    """Temperature and top-p show 2 decimals; 0.123 typed there became 0.12 without a word (issue 25 item 6).
    What is typed is kept and shown as typed, as the learning rate keeps 1e-3, and what the field cannot hold
    is refused where the person reads messages."""
    user.show_tab("Listen")
    listen = window.listen_tab
    for box, typed in ((listen.temperature, "0.123"), (listen.top_p, "0.955")):
        _type(qtbot, box, typed)
        QTest.keyClick(box, Qt.Key.Key_Tab)  # the person moves on: the field shows what it holds
        assert box.lineEdit().text() == typed and box.value() == float(typed), box.accessibleName()
    settings = listen.controls.sample_settings()  # what Generate composes with
    assert (settings.temperature, settings.top_p) == (0.123, 0.955)
    _type(qtbot, listen.temperature, "1")
    assert listen.temperature.lineEdit().text() == "1.00"  # a round value keeps the field's usual places
    _type(qtbot, listen.temperature, "0.1234567890123")  # past the 12 places kept: refused, not rounded
    assert listen.temperature.value() == 1.0 and listen.temperature.lineEdit().text() == "1.00"
    assert window.message_area.isVisible()
    assert window.message_area.text() == "Temperature: '0.1234567890123' has more than 12 decimals; kept 1.00"
