"""The app's fields built from the engine's settings tables (engine/core/settings.py): a `Setting` gives a
field its widget (by its Limit's kind), range, unit, tooltip (the setting's help) and accessible name (its
label), and the form's row its label. A range is written once, in the table; a tab that offers less than the
engine takes says so with a named cap beside the field (`hi=`), never with a second range.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QWidget

from .number_box import KEPT_DECIMALS, FloatField, IntField, ScientificSpinBox

# QSpinBox holds a C++ int: a table's larger maximum (a seed up to 2**32-1) is cut to what the field can hold.
QT_INT_MAX = 2**31 - 1


def tooltip(setting) -> str:
    """The setting's help as the app's tooltip: the table's sentence, capitalised."""
    return setting.help[:1].upper() + setting.help[1:]


def label(setting, field: QWidget | None = None) -> QLabel:
    """The field's label in an inline row (a form's row takes `setting.label` itself)."""
    text = QLabel(setting.label)
    if field is not None:
        text.setBuddy(field)
    return text


def setting_field(setting, value, *, hi=None, step=None, decimals: int = 2, scientific: bool = False,
                  unset: str | None = None) -> QWidget:
    """A field for `setting` showing `value`.

    hi: a narrower maximum the tab offers on purpose (a named constant at the call, saying why).
    step: the arrows' step. decimals: the places a float field shows at least (an open lower bound becomes its
    smallest step; what is typed is kept to KEPT_DECIMALS, gui/number_box.py). scientific: a float typed as
    1e-3, shown short (gui/number_box.py). unset: an optional setting's "not set" shown as this text (the
    field's value is then one below the table's minimum)."""
    limit = setting.limit
    if limit.count is not None:  # a list of numbers, typed with commas; the table's check reads it on use
        field = QLineEdit(value if isinstance(value, str) else ", ".join(f"{v:g}" for v in value))
    elif limit.kind == "choice":
        field = QComboBox()
        field.addItems([str(c) for c in limit.choices])
        field.setCurrentText(str(value))
    elif limit.kind == "int":
        field = _int_field(setting, value, hi, step, unset)
    elif limit.kind == "float":
        field = _float_field(setting, value, hi, step, decimals, scientific)
    else:
        raise ValueError(f"no field for a {limit.kind} setting ({setting.name})")
    if limit.count is not None:  # how to type the list, beside what it is
        field.setToolTip(f"{tooltip(setting)} ({limit.describe()})")
    elif not scientific:  # ScientificSpinBox words its own tooltip (the help and its range)
        field.setToolTip(tooltip(setting))
    field.setAccessibleName(setting.label)
    return field


def _top(limit, hi):
    if hi is not None and hi > limit.hi:
        raise ValueError(f"a field's cap {hi} is above its setting's maximum {limit.hi}")
    return limit.hi if hi is None else hi


def _int_field(setting, value, hi, step, unset) -> IntField:
    limit = setting.limit
    lo = int(limit.lo) - (1 if unset is not None else 0)
    field = IntField(lo, int(min(_top(limit, hi), QT_INT_MAX)))
    if unset is not None:
        if not limit.optional:
            raise ValueError(f"{setting.name} cannot be unset")
        field.setSpecialValueText(unset)
    if step:
        field.setSingleStep(step)
    if setting.unit:
        field.setSuffix(f" {setting.unit}")
    field.setValue(lo if value is None else int(value))
    return field


def _float_field(setting, value, hi, step, decimals, scientific) -> FloatField:
    limit = setting.limit
    if scientific:
        decimals = KEPT_DECIMALS  # ScientificSpinBox shows the shortest text: its arrows reach its smallest step
    # A spin box's range is closed: an open lower bound becomes the smallest step the field can show.
    lo = limit.lo + 10.0 ** -decimals if limit.lo_open else limit.lo
    if scientific:
        return ScientificSpinBox(lo, _top(limit, hi), value, setting.label, tooltip(setting))
    field = FloatField(lo, _top(limit, hi), decimals)
    if step:
        field.setSingleStep(step)
    if setting.unit:
        field.setSuffix(f" {setting.unit}")
    field.setValue(float(value))
    return field
