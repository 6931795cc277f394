"""Help > Keyboard shortcuts and Help > About."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QHeaderView, QMessageBox, QTableWidget, QTableWidgetItem, QVBoxLayout,
)

ABOUT = """<h3>Generative Studio {version}</h3>
<p>Learn how generative image models work by touching them: drag a VAE's latent sliders,
click its manifold map, drop your own digit on it, train a model and watch it improve,
play a diffusion model's denoising back step by step.</p>
<p>Everything runs on your computer (ONNX Runtime or PyTorch), with the shipped checkpoints
trained on the MNIST digits. Each panel's <b>Explain</b> pane (F1) says what you are looking
at, with the equation and the numbers of the picture on screen.</p>"""


class ShortcutsDialog(QDialog):
    """A table of every action: menu, what it does, its keys."""

    def __init__(self, rows: list[tuple[str, str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 520)

    def rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]


def show_about(parent) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("generative-studio")
    except PackageNotFoundError:  # a checkout that was never pip-installed
        v = ""
    QMessageBox.about(parent, "About Generative Studio", ABOUT.format(version=v))
