"""The corpus as a Qt table model: one row per melody, sortable and searchable through a proxy."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt

COLUMNS = ("Title", "Collection", "Meter", "Key", "Bars", "Split")


class CorpusTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple] = []
        self._melodies: list = []

    def set_melodies(self, melodies) -> None:
        self.beginResetModel()
        if hasattr(melodies, "table"):
            # a corpus's melody list builds each melody on first use; its table() gives the rows without
            # building 4,000 melodies (about a second) on the GUI thread
            self._melodies = melodies
            self._rows = [
                (r["title"] or r["tune_id"], str(r["collection"]), r["meter"], r["key"], r["bars"], str(r["split"]))
                for r in melodies.table()
            ]
            self.endResetModel()
            return
        self._melodies = list(melodies)
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
    """Case-insensitive search over every column; sorting uses the raw values (numbers as numbers)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.setSortRole(Qt.ItemDataRole.UserRole)
