"""The corpus as a Qt table model: one row per melody, sortable and searchable through a proxy."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt

COLUMNS = ("Title", "Collection", "Meter", "Key", "Bars", "Split")


class CorpusTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple] = []
        self._melodies: list = []
        self._sources: list[str] = []  # each melody's file: found by search, shown in the tooltip

    def set_melodies(self, melodies) -> None:
        self.beginResetModel()
        if hasattr(melodies, "table"):
            # a corpus's melody list builds each melody on first use; its table() gives the rows without
            # building 4,000 melodies (about a second) on the GUI thread
            self._melodies = melodies
            table = melodies.table()
            self._sources = [str(r.get("source", "")) for r in table]
            self._rows = [
                (r["title"] or r["tune_id"], str(r["collection"]), r["meter"], r["key"], r["bars"], str(r["split"]))
                for r in table
            ]
            self.endResetModel()
            return
        self._melodies = list(melodies)
        self._sources = [str(m.source or "") for m in self._melodies]
        self._rows = [
            (
                m.title or m.tune_id,
                str(m.meta.get("collection", "")),
                m.meter,
                m.key,
                m.n_bars,
                str(m.meta.get("split", "")),
            )
            for m in self._melodies
        ]
        self.endResetModel()

    def melody(self, row: int):
        return self._melodies[row]

    def search_text(self, row: int) -> str:
        """What search looks in: every column and the file the tune came from."""
        return " ".join(str(v) for v in self._rows[row]) + " " + self._sources[row]

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(value)
        if role == Qt.ItemDataRole.UserRole:  # the sort key: bars sort as numbers
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            m = self._melodies[index.row()]
            return f"{m.tune_id}\n{m.source}"
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None


class CorpusFilterProxy(QSortFilterProxyModel):
    """Case-insensitive search over every column and the tune's file name (a tune is often known by its
    file); sorting uses the raw values (numbers as numbers)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(Qt.ItemDataRole.UserRole)
        self._needle = ""

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        return not self._needle or self._needle in self.sourceModel().search_text(row).casefold()
