"""The main window: one tab per panel, the backend bar, and the File menu."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QTabWidget, QToolBar, QVBoxLayout, QWidget

from studio.ui.context import AppContext
from studio.ui.panels import panel_names as panel_names_all
from studio.ui.panels import panel_class, panel_for_family, panel_title
from studio.ui.widgets.backend_bar import BackendBar


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext, panel_names: list[str] | None = None,
                 initial: str | None = None, parent=None):
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Generative Studio")
        self.resize(1180, 780)
        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        # A panel is built when its tab is first shown: start-up pays only for the visible one.
        self.panels = {}
        self._slots: dict[str, QWidget] = {}
        for name in panel_names or panel_names_all():
            slot = QWidget()
            QVBoxLayout(slot).setContentsMargins(0, 0, 0, 0)
            self._slots[name] = slot
            self.tabs.addTab(slot, panel_title(name))
        if initial in self._slots:
            self.tabs.setCurrentWidget(self._slots[initial])
        self.tabs.currentChanged.connect(lambda _: self.panel(self.current_name()))
        self.panel(self.current_name())
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
        from studio.core.checkpoint import CheckpointError, read_metadata

        panel = self.current_panel()
        try:
            family = read_metadata(path)["family"]
        except CheckpointError as exc:
            panel.show_error(str(exc))
            return
        self.show_checkpoint(family, path)

    def show_checkpoint(self, family: str, path: str) -> None:
        name = panel_for_family(family)
        if name not in self._slots:
            self.current_panel().show_error(f"{path}: no panel in this window shows '{family}' models")
            return
        self.select_panel(name)
        self.panel(name).open_checkpoint(path)

    def current_name(self) -> str:
        current = self.tabs.currentWidget()
        return next(name for name, slot in self._slots.items() if slot is current)

    def panel(self, name: str):
        """The panel called ``name``, built on first use."""
        if name not in self.panels:
            panel = panel_class(name)(self.context)
            self._slots[name].layout().addWidget(panel)
            panel.show()  # a child added to a shown parent is not shown by itself
            self.panels[name] = panel
        return self.panels[name]

    def current_panel(self):
        return self.panel(self.current_name())

    def select_panel(self, name: str) -> None:
        self.tabs.setCurrentWidget(self._slots[name])

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
