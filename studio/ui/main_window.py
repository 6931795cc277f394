"""The main window: one tab per panel, the backend bar, and the File menu."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QTabWidget, QToolBar

from studio.ui.context import AppContext
from studio.ui.panels import PANEL_FOR_FAMILY, PANELS, panel_class
from studio.ui.widgets.backend_bar import BackendBar


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext, panel_names: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Generative Studio")
        self.resize(1180, 780)
        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        self.panels = {}
        for name in panel_names or list(PANELS):
            panel = panel_class(name)(context)
            self.panels[name] = panel
            self.tabs.addTab(panel, panel.title)
        toolbar = QToolBar("Inference")
        toolbar.setMovable(False)
        self.backend_bar = BackendBar(context)
        toolbar.addWidget(self.backend_bar)
        self.addToolBar(toolbar)
        self._build_menu()
        context.checkpointOpened.connect(self.show_checkpoint)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open checkpoint…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._open_dialog)
        file_menu.addAction(open_action)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", "Checkpoints (*.safetensors)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> None:
        from studio.training.checkpoint import CheckpointError, read_metadata

        panel = self.tabs.currentWidget()
        try:
            family = read_metadata(path)["family"]
        except CheckpointError as exc:
            panel.show_error(str(exc))
            return
        self.show_checkpoint(family, path)

    def show_checkpoint(self, family: str, path: str) -> None:
        name = PANEL_FOR_FAMILY.get(family)
        panel = self.panels.get(name) if name else None
        if panel is None:
            self.tabs.currentWidget().show_error(f"{path}: no panel in this window shows '{family}' models")
            return
        self.tabs.setCurrentWidget(panel)
        panel.open_checkpoint(path)

    def select_panel(self, name: str) -> None:
        self.tabs.setCurrentWidget(self.panels[name])

    def visible_panels(self):
        return [p for p in self.panels.values() if p.isVisible()]

    def closeEvent(self, event) -> None:
        for panel in self.panels.values():
            close_check = getattr(panel, "confirm_close", None)
            if close_check is not None and not close_check():
                event.ignore()
                return
        self.context.bridge.shutdown()
        super().closeEvent(event)
