"""The table of training runs under a root: name, family, step, loss, state; sortable by any column.

Rows come from ``studio.ui.training_state.describe_run`` (Qt-free). Names are
elided in the middle when the column is narrow (the full path is the row's
tooltip); numbers are right-aligned and sort as numbers.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QHeaderView, QPushButton, QTableView, QVBoxLayout, QWidget

from studio.training.runs import running_pid
from studio.ui.training_state import RunRow, describe_run, find_runs

COLUMNS = ("name", "family", "step", "loss", "state")
HEADER_TIPS = {
    "name": "the run's folder (full path in each row's tooltip)",
    "family": "the model family it trains",
    "step": "steps in its newest checkpoint / steps it was started for",
    "loss": "the last logged loss (families with several losses: the first, named)",
    "state": "training: a worker is on it now; stopped: Resume continues it",
}
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _items(row: RunRow) -> list[QStandardItem]:
    texts = (row.name, row.family or "?", row.step_text(), row.loss_text(), row.state_text())
    keys = (row.name.lower(), row.family, -1 if row.step is None else row.step,
            float("inf") if row.loss is None else row.loss, row.state)
    items = []
    for column, text, key in zip(COLUMNS, texts, keys):
        item = QStandardItem(text)
        item.setEditable(False)
        item.setData(row.path, PATH_ROLE)
        item.setData(key, SORT_ROLE)
        item.setToolTip(row.path if column == "name" else text)
        if column in ("step", "loss"):
            item.setTextAlignment(_RIGHT)
        items.append(item)
    return items


class RunTable(QWidget):
    runSelected = Signal(str)  # show its curves
    explorerRequested = Signal(str, str)  # family, run folder: show it in its explorer
    stopRequested = Signal(str, int)  # run folder, pid of the worker training there
    message = Signal(str, bool)  # text, is it an error

    def __init__(self, root: Path, parent=None):
        super().__init__(parent)
        self.root = Path(root)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels([c.capitalize() for c in COLUMNS])
        for i, column in enumerate(COLUMNS):
            self.model.horizontalHeaderItem(i).setToolTip(HEADER_TIPS[column])
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the name takes what is left
        for i in range(1, len(COLUMNS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setHighlightSections(False)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the folders' order: last changed first
        self.view.setMinimumHeight(6 * self.view.verticalHeader().defaultSectionSize())
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self.view.doubleClicked.connect(lambda index: self.open_in_explorer(index.data(PATH_ROLE)))
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.clicked.connect(self.refresh)
        self.open_btn = QPushButton("Open in explorer")
        self.open_btn.setToolTip("show the selected run in its explorer panel (or double-click it)")
        self.open_btn.clicked.connect(lambda: self.current() and self.open_in_explorer(self.current()))
        self.stop_btn = QPushButton("Stop background run")
        self.stop_btn.setToolTip("ask the worker training the selected run to save and stop")
        self.stop_btn.clicked.connect(lambda: self.current() and self.stop_background(self.current()))
        buttons = QHBoxLayout()
        for b in (self.refresh_btn, self.open_btn, self.stop_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.rows: list[RunRow] = []

    def set_root(self, root: Path) -> None:
        self.root = Path(root)
        self.refresh()

    def refresh(self) -> None:
        """Read every run folder again; the selection stays on its run (quietly)."""
        current = self.current()
        self.rows = [describe_run(run) for run in find_runs(self.root)]
        selection = self.view.selectionModel()
        selection.blockSignals(True)
        self.model.removeRows(0, self.model.rowCount())
        for row in self.rows:
            self.model.appendRow(_items(row))
        selection.blockSignals(False)
        if current:
            self.select(current, quiet=True)

    def update_run(self, run_dir: str) -> None:
        """Read one run folder again (a checkpoint was written there): its row, added if new."""
        row = describe_run(run_dir)
        for i, known in enumerate(self.rows):
            if known.path == row.path:
                self.rows[i] = row
                for column, item in enumerate(_items(row)):
                    self.model.setItem(i, column, item)
                return
        if Path(run_dir).resolve().parent != self.root.resolve():
            return  # a run outside the root: the table lists the root's runs only
        self.rows.insert(0, row)  # the newest folder: first, as find_runs orders them
        selection = self.view.selectionModel()
        selection.blockSignals(True)
        self.model.insertRow(0, _items(row))
        selection.blockSignals(False)

    # --- the selection -------------------------------------------------------------
    def row_count(self) -> int:
        return self.proxy.rowCount()

    def row(self, run_dir: str) -> RunRow | None:
        return next((r for r in self.rows if r.path == str(run_dir)), None)

    def view_row_of(self, run_dir: str) -> int:
        """The row (as sorted on screen) showing ``run_dir``, or -1."""
        paths = [self.proxy.index(r, 0).data(PATH_ROLE) for r in range(self.proxy.rowCount())]
        if str(run_dir) in paths:
            return paths.index(str(run_dir))
        wanted = Path(run_dir).resolve()  # another spelling of the same folder (relative, a link)
        return next((r for r, p in enumerate(paths) if Path(p).resolve() == wanted), -1)

    def current(self) -> str | None:
        index = self.view.selectionModel().currentIndex()
        return index.data(PATH_ROLE) if index.isValid() else None

    def select(self, run_dir: str, quiet: bool = False) -> bool:
        """Make ``run_dir`` the current row; ``quiet``: without runSelected (the caller shows it)."""
        r = self.view_row_of(run_dir)
        if r < 0:
            return False
        selection = self.view.selectionModel()
        selection.blockSignals(quiet)
        try:
            selection.setCurrentIndex(self.proxy.index(r, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                      | QItemSelectionModel.SelectionFlag.Rows)
        finally:
            selection.blockSignals(False)
        self.view.scrollTo(self.proxy.index(r, 0))
        return True

    def clear_selection(self) -> None:
        selection = self.view.selectionModel()
        selection.blockSignals(True)
        selection.clearCurrentIndex()
        selection.clearSelection()
        selection.blockSignals(False)

    def _current_changed(self, index, _previous) -> None:
        if index.isValid():
            self.runSelected.emit(index.data(PATH_ROLE))

    # --- actions -------------------------------------------------------------------
    def open_in_explorer(self, run_dir: str) -> None:
        """Ask for the run's explorer panel (it shows the newest checkpoint and follows new ones)."""
        from studio.core.checkpoint import CheckpointError, read_metadata

        try:
            family = read_metadata(run_dir)["family"]
        except CheckpointError as exc:
            self.message.emit(str(exc), True)
            return
        self.explorerRequested.emit(family, run_dir)

    def stop_background(self, run_dir: str) -> None:
        pid = running_pid(run_dir)
        if pid is None:
            self.message.emit(f"{Path(run_dir).name}: no worker is training there", False)
        else:
            self.stopRequested.emit(run_dir, pid)
