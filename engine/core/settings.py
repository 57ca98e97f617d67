"""One source per setting: name, label, type, range, default and help in one table per settings dataclass.

The command line's flags (`add_arguments`), the app's fields (gui/widgets build them from a `Setting`),
validation (`check`) and docs/settings.md (`markdown`) are all built from these tables, so a range is
written once. The default is the dataclass field's own default; the table never repeats it.

A value out of range raises `SettingError`, which carries its `Setting`: the command line words it with
the flag, a file with its field name, the app with the label (engine/core/errors.py).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from engine.core.errors import SettingError
from engine.core.validation import Limit


@dataclass(frozen=True)
class Setting:
    name: str  # the dataclass field
    label: str  # the app's words for it, e.g. "Learning rate"
    limit: Limit  # its type and range (or choices)
    help: str  # one sentence: the CLI's help text and the app's tooltip
    flag: str = ""  # the CLI flag; by default --name-with-dashes
    unit: str = ""  # shown after the value in the app ("steps", "bars")
    unset: str = "automatic"  # what a default of None means, as --help and docs/settings.md say it

    def __post_init__(self):
        if not self.flag:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))

    def check(self, value, where: str | None = None, name: str | None = None):
        """The value converted to the setting's type; SettingError when it is out of range."""
        ok, converted = self.limit.accepts(value)
        if not ok:
            raise SettingError(self, self.limit.refusal(value), where, name)
        return converted


class Settings:
    """The table of one settings dataclass, in the order a form shows its fields."""

    def __init__(self, cls, *settings: Setting):
        self.cls = cls
        self.by_name = {s.name: s for s in settings}
        names = {f.name for f in fields(cls)}
        unknown = set(self.by_name) - names
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")

    def __iter__(self):
        return iter(self.by_name.values())

    def __getitem__(self, name: str) -> Setting:
        return self.by_name[name]

    @property
    def limits(self) -> dict[str, Limit]:
        return {s.name: s.limit for s in self}

    def flags(self, only=None) -> dict[str, str]:
        """field -> CLI flag, for the settings a command offers."""
        return {s.name: s.flag for s in self if only is None or s.name in only}

    def default(self, name: str):
        field = next(f for f in fields(self.cls) if f.name == name)
        if field.default is not MISSING:
            return field.default
        return field.default_factory() if field.default_factory is not MISSING else None

    def check(self, obj, where: str | None = None, names: dict[str, str] | None = None) -> None:
        """Check (and normalise in place) every field of `obj` in the table. `names` maps a field to the name
        its source uses (a file's "training.lr"); by default the CLI flag."""
        for setting in self:
            value = setting.check(getattr(obj, setting.name), where, (names or {}).get(setting.name))
            object.__setattr__(obj, setting.name, value)

    def add_arguments(self, parser, only=None, defaults: bool = False) -> None:
        """One argparse option per setting (the ones in `only`, in table order). With defaults=False every
        option defaults to None, so that the caller can tell "not given" from the default (resume)."""
        for s in self:
            if only is not None and s.name not in only:
                continue
            default = self.default(s.name)
            kwargs = {"dest": s.name, "default": default if defaults else None,
                      # argparse formats help with %: a literal one ("95% interval") is doubled
                      "help": f"{s.help} ({s.limit.describe()}; default {_shown(default, s.unset)})".replace("%", "%%")}
            if s.limit.count is not None:  # a list, typed with commas: the table's check reads it
                kwargs["metavar"] = "N,N" if s.limit.kind == "int" else "X,X"
            elif s.limit.kind == "choice":
                kwargs["choices"] = list(s.limit.choices)
            elif s.limit.kind in ("int", "float"):
                kwargs["type"] = int if s.limit.kind == "int" else float
                kwargs["metavar"] = "N" if s.limit.kind == "int" else "X"
            parser.add_argument(s.flag, **kwargs)

    def markdown(self, title: str) -> str:
        """The table as docs/settings.md shows it."""
        rows = [f"### {title}", "", "| setting (app) | flag | range | default | what it does |", "|---|---|---|---|---|"]
        for s in self:
            rows.append(f"| {s.label} | `{s.flag}` | {s.limit.describe()} | {_shown(self.default(s.name), s.unset)} | {s.help} |")
        return "\n".join(rows) + "\n"


def _shown(value, unset: str = "automatic") -> str:
    if value is None:
        return unset
    if isinstance(value, (list, tuple)):  # as it is typed: 1,0.9,0.8
        return ",".join(map(_shown, value))
    return f"{value:g}" if isinstance(value, float) else str(value)
