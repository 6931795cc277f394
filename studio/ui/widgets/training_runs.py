"""The list of training runs (folders with a log.jsonl or checkpoints) under a root."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.training.runs import INFO_NAME, LOG_NAME, newest_valid_checkpoint, running_pid


def describe_run(run_dir: Path) -> str:
    """"name: family, step N, loss X, training (pid P)" from the newest valid checkpoint and the log."""
    parts = [run_dir.name]
    step = None
    found = newest_valid_checkpoint(run_dir)
    if found is not None:
        from studio.core.checkpoint import read_metadata

        step = found[1]
        parts.append(f"{read_metadata(found[0]).get('family', '?')}, step {step}")
    elif any(run_dir.glob("*.safetensors")):
        parts.append("unreadable checkpoint")  # a broken run still shows up, marked
    log = run_dir / LOG_NAME
    if log.exists():
        try:
            with open(log, "rb") as f:
                f.seek(max(0, log.stat().st_size - 2048))
                tail = f.read().decode(errors="replace").strip().splitlines()
            row = json.loads(tail[-1]) if tail else {}
            if "loss" in row:
                parts.append(f"loss {row['loss']:.4g}")
            if step is None and "step" in row:
                parts.append(f"step {row['step']}")
        except (OSError, ValueError, IndexError):
            pass
    pid = running_pid(run_dir) if (run_dir / INFO_NAME).exists() else None
    if pid is not None:
        parts.append(f"training (pid {pid})")
    return parts[0] + ": " + ", ".join(parts[1:]) if len(parts) > 1 else parts[0]


def saved_options(run_dir: str) -> dict:
    """The TrainOptions fields a run was started with (from its newest valid checkpoint), or {}."""
    from studio.core.checkpoint import CheckpointError, read_metadata

    found = newest_valid_checkpoint(run_dir)
    try:
        meta = read_metadata(found[0]) if found else {}
    except (CheckpointError, OSError):
        return {}
    return dict((meta.get("extra") or {}).get("options") or {})


def find_runs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and (
        (p / LOG_NAME).exists() or any(p.glob("*.safetensors")))]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


class RunList(QWidget):
    runSelected = Signal(str)  # show its curves
    explorerRequested = Signal(str, str)  # family, run folder: show it in its explorer
    stopRequested = Signal(str, int)  # run folder, pid of the worker training there
    message = Signal(str, bool)  # text, is it an error

    def __init__(self, root: Path, parent=None):
        super().__init__(parent)
        self.root = Path(root)
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemDoubleClicked.connect(lambda item: self.open_in_explorer(item.data(Qt.UserRole)))
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.clicked.connect(self.refresh)
        self.open_btn = QPushButton("Open in explorer")
        self.open_btn.clicked.connect(lambda: self.current() and self.open_in_explorer(self.current()))
        self.stop_btn = QPushButton("Stop background run")
        self.stop_btn.clicked.connect(lambda: self.current() and self.stop_background(self.current()))
        buttons = QHBoxLayout()
        for b in (self.refresh_btn, self.open_btn, self.stop_btn):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def set_root(self, root: Path) -> None:
        self.root = Path(root)
        self.refresh()

    def refresh(self) -> None:
        current = self.current()
        self.list.blockSignals(True)
        self.list.clear()
        for run in find_runs(self.root):
            item = QListWidgetItem(describe_run(run))
            item.setData(Qt.UserRole, str(run))
            item.setToolTip(str(run))
            self.list.addItem(item)
            if current and str(run) == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def current(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item is not None else None

    def select(self, run_dir: str) -> bool:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == str(run_dir):
                self.list.setCurrentRow(i)
                return True
        return False

    def _current_changed(self, item, _previous) -> None:
        if item is not None:
            self.runSelected.emit(item.data(Qt.UserRole))

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
