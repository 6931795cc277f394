"""A combo box of one family's checkpoints: the shipped ones plus any the user opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox

from studio.engine.catalog import shipped
from studio.core.checkpoint import CheckpointError, read_metadata


class CheckpointPicker(QComboBox):
    chosen = Signal(str)  # the user picked another checkpoint

    def __init__(self, family: str, sort_key: Callable[[Path], Any] | None = None, parent=None):
        super().__init__(parent)
        self.family = family
        self.setMinimumWidth(220)
        for path in sorted(shipped(family), key=sort_key) if sort_key else shipped(family):
            self.addItem(path.stem, str(path))
        self.currentIndexChanged.connect(self._changed)

    def first(self) -> str | None:
        return self.itemData(0) if self.count() else None

    def select(self, path: str) -> dict[str, Any]:
        """Show ``path`` as the current choice and return its metadata.

        Raises CheckpointError naming the file if it is unreadable or of another family.
        """
        meta = read_metadata(path)
        if meta["family"] != self.family:
            raise CheckpointError(f"{path}: a '{meta['family']}' checkpoint, not a '{self.family}' model")
        resolved = str(Path(path))
        # Programmatic choice, not a user gesture: silent from here, since adding the first item
        # to an empty box makes it current too, which would announce it as chosen.
        self.blockSignals(True)
        index = self.findData(resolved)
        if index < 0:
            self.addItem(Path(path).stem, resolved)
            index = self.count() - 1
        self.setCurrentIndex(index)
        self.blockSignals(False)
        return meta

    def _changed(self, index: int) -> None:
        path = self.itemData(index)
        if path:
            self.chosen.emit(path)
