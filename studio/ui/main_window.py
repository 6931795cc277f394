"""The main window: one tab per panel, the backend bar, the menus and what it remembers.

Every action is a menu item with a keyboard shortcut (Help > Keyboard shortcuts
lists them all). Ctrl+V pastes an image into the current panel whatever has
focus; a text field keeps Ctrl+V only when the clipboard holds text alone.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication, QFileDialog, QMainWindow, QMenu, QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget,
)

from studio.ui.context import AppContext
from studio.ui.panels import panel_class, panel_for_family, panel_title
from studio.ui.panels import panel_names as panel_names_all
from studio.ui.settings import app_settings
from studio.ui.widgets.backend_bar import BackendBar


class _PasteRouter(QObject):
    """Lets the window's Ctrl+V win over a focused text field when the clipboard holds an image.

    A line edit (a spin box's too) claims Ctrl+V before any shortcut; pasting an
    image there would replace its text with nothing.
    """

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and event.matches(QKeySequence.StandardKey.Paste):
            mime = QGuiApplication.clipboard().mimeData()
            if mime is not None and (mime.hasImage() or mime.hasUrls()):
                event.ignore()
                return True  # unclaimed: the window's Paste shortcut runs instead
        return False


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext, panel_names: list[str] | None = None,
                 initial: str | None = None, parent=None, remember: bool = True):
        super().__init__(parent)
        self.context = context
        self.settings = app_settings() if remember else None
        self.setWindowTitle("Generative Studio")
        self.resize(1180, 800)
        self._restore_checkpoints()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        # A panel is built when its tab is first shown: start-up pays only for the visible one.
        self.panels = {}
        self._slots: dict[str, QWidget] = {}
        self._panel_menus: dict[str, object] = {}
        for name in panel_names or panel_names_all():
            slot = QWidget()
            QVBoxLayout(slot).setContentsMargins(0, 0, 0, 0)
            self._slots[name] = slot
            self.tabs.addTab(slot, panel_title(name))
        toolbar = QToolBar("Inference")
        toolbar.setObjectName("inferenceToolbar")
        toolbar.setMovable(False)
        self.backend_bar = BackendBar(context)
        toolbar.addWidget(self.backend_bar)
        self.addToolBar(toolbar)
        self._build_menus()
        if initial in self._slots:
            self.tabs.setCurrentWidget(self._slots[initial])
        self.tabs.currentChanged.connect(lambda _: self._panel_shown(self.current_name()))
        self._panel_shown(self.current_name())
        self._paste_router = _PasteRouter(self)
        QApplication.instance().installEventFilter(self._paste_router)
        context.checkpointOpened.connect(self.show_checkpoint)
        self._restore_window()

    # --- menus ---------------------------------------------------------------------
    def _action(self, menu, text: str, shortcut, slot, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action(file_menu, "&Open checkpoint…", QKeySequence.StandardKey.Open,
                                        self._open_dialog)
        self.paste_action = self._action(file_menu, "&Paste image", QKeySequence.StandardKey.Paste,
                                         lambda: self.current_panel().paste(),
                                         "encode the image (or image files) on the clipboard")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", "Ctrl+Q", self.close)
        view = bar.addMenu("&View")
        self._action(view, "&Next panel", "Ctrl+PgDown", lambda: self._step_panel(1))
        self._action(view, "&Previous panel", "Ctrl+PgUp", lambda: self._step_panel(-1))
        for i, name in enumerate(self._slots):
            if i < 9:
                self._action(view, f"Go to {panel_title(name)}", f"Alt+{i + 1}",
                             lambda _=False, n=name: self.select_panel(n))
        view.addSeparator()
        self._action(view, "Show or hide &Explain", "F1", lambda: self._toggle_explain())
        backend = bar.addMenu("&Backend")
        self._action(backend, "Switch &backend (ONNX Runtime / torch)", "Ctrl+B", self.backend_bar.next_backend)
        self._action(backend, "Switch &device (auto / cpu / cuda)", "Ctrl+D", self.backend_bar.next_device)
        self.help_menu = bar.addMenu("&Help")
        self._action(self.help_menu, "&Keyboard shortcuts", "Ctrl+/", self.show_shortcuts)
        self._action(self.help_menu, "&About Generative Studio", "Shift+F1", self.show_about)

    def _panel_shown(self, name: str):
        panel = self.panel(name)
        # Only the shown panel's menu and shortcuts are live: hidden panels' keys must do nothing.
        for other, menu in self._panel_menus.items():
            menu.menuAction().setVisible(other == name)
            for action in menu.actions():
                action.setEnabled(other == name)
        return panel

    def _install_panel_menu(self, name: str, panel) -> None:
        actions = panel.menu_actions() if hasattr(panel, "menu_actions") else []
        if not actions:
            return
        menu = QMenu(f"&{panel_title(name)}", self)
        self.menuBar().insertMenu(self.help_menu.menuAction(), menu)
        for action in actions:
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            menu.addAction(action)
        self._panel_menus[name] = menu

    def all_actions(self) -> list[tuple[str, str, str]]:
        """(menu, action, shortcut) for every action, panels' included (the shortcuts dialog)."""
        rows = []
        for menu_action in self.menuBar().actions():
            menu = menu_action.menu()
            if menu is None:
                continue
            for action in menu.actions():
                if action.isSeparator() or not action.text():
                    continue
                rows.append((menu.title().replace("&", ""), action.text().replace("&", ""),
                             action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)))
        for name, panel in self.panels.items():
            # Keys a panel binds itself (QShortcut), described by their whatsThis.
            for shortcut in panel.findChildren(QShortcut):
                keys = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
                if keys:
                    rows.append((panel_title(name), shortcut.whatsThis() or "(panel key)", keys))
        return rows

    def show_shortcuts(self) -> None:
        from studio.ui.help import ShortcutsDialog

        ShortcutsDialog(self.all_actions(), self).exec()

    def show_about(self) -> None:
        from studio.ui.help import show_about

        show_about(self)

    def _step_panel(self, step: int) -> None:
        self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % self.tabs.count())

    def _toggle_explain(self) -> None:
        panel = self.current_panel()
        if panel.has_explain():
            panel.explain.toggle()

    # --- checkpoints ---------------------------------------------------------------
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

    # --- panels --------------------------------------------------------------------
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
            self._restore_panel(name, panel)
            self._install_panel_menu(name, panel)
        return self.panels[name]

    def current_panel(self):
        return self.panel(self.current_name())

    def select_panel(self, name: str) -> None:
        self.tabs.setCurrentWidget(self._slots[name])

    def visible_panels(self):
        return [p for p in self.panels.values() if p.isVisible()]

    # --- remembering ---------------------------------------------------------------
    def _restore_checkpoints(self) -> None:
        """Last run's checkpoints, for the families the command line did not name."""
        if self.settings is None:
            return
        from studio.core.checkpoint import CheckpointError, read_metadata

        self.settings.beginGroup("checkpoints")
        for family in self.settings.childKeys():
            path = str(self.settings.value(family))
            if family in self.context.checkpoints or not Path(path).exists():
                continue
            try:
                if read_metadata(path)["family"] == family:
                    self.context.checkpoints[family] = path
            except CheckpointError:
                continue  # changed since: start on the shipped one
        self.settings.endGroup()

    def _restore_window(self) -> None:
        """Size, place and maximised state, each only if saved (and the place only if on a screen)."""
        if self.settings is None:
            return
        size, pos = self.settings.value("window/size"), self.settings.value("window/pos")
        if size is not None:
            self.resize(size)
        if pos is not None and any(screen.availableGeometry().contains(pos)
                                   for screen in QGuiApplication.screens()):
            self.move(pos)
        if str(self.settings.value("window/maximized", "false")).lower() == "true":
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)

    def _restore_panel(self, name: str, panel) -> None:
        if self.settings is None:
            return
        for splitter in panel.findChildren(QSplitter):
            state = self.settings.value(f"splitters/{name}.{splitter.objectName()}")
            if splitter.objectName() and state is not None:
                splitter.restoreState(state)
        if panel.has_explain():
            open_ = self.settings.value(f"explain/{name}")
            if open_ is not None:
                panel.explain.set_expanded(str(open_).lower() == "true")

    def save_settings(self) -> None:
        s = self.settings
        if s is None:
            return
        maximized = bool(self.windowState() & Qt.WindowState.WindowMaximized)
        s.setValue("window/maximized", maximized)
        if not maximized:  # a maximised window comes back maximised, over its last normal size
            s.setValue("window/size", self.size())
            s.setValue("window/pos", self.pos())
        s.setValue("backend/name", self.context.backend)
        s.setValue("backend/device", self.context.device)
        for name, panel in self.panels.items():
            for splitter in panel.findChildren(QSplitter):
                if splitter.objectName():
                    s.setValue(f"splitters/{name}.{splitter.objectName()}", splitter.saveState())
            if panel.checkpoint and panel.families:
                s.setValue(f"checkpoints/{panel.families[0]}", str(panel.checkpoint))
            if panel.has_explain():
                s.setValue(f"explain/{name}", panel.explain.is_expanded())
        s.sync()

    def closeEvent(self, event) -> None:
        for panel in self.panels.values():
            if not panel.confirm_close():
                event.ignore()
                return
        self.save_settings()
        QApplication.instance().removeEventFilter(self._paste_router)
        self.context.bridge.shutdown()
        super().closeEvent(event)
