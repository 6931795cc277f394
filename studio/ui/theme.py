"""One dark theme for the chrome and the image panels alike.

The images are light ink on a dark ground (MNIST's polarity), so the window
around them is dark too: a bright frame around dark pictures glares and makes
them look smaller. Plots (pyqtgraph) and image views take their colours from
here, never from literals of their own.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

WINDOW = "#202226"  # panel background
BASE = "#17181b"  # image wells, text fields, plot backgrounds
RAISED = "#2b2e33"  # buttons, headers
TEXT = "#e3e5e8"
MUTED = "#9aa0a6"  # secondary text, axis labels
ACCENT = "#56b4e9"  # Okabe-Ito sky blue: selection, links
MARKER = "#ff6a4d"  # the current point on the map and scatter
ERROR = "#e05050"  # the status colour tests look for
INACTIVE = "#6b7078"  # latent dimensions the model does not use

# Ten classes that stay apart for the common colour-vision deficiencies: Okabe & Ito's eight
# (black swapped for light grey on a dark ground) plus two of Paul Tol's; each class also has
# its own marker shape, so no class is told apart by colour alone.
CLASS_COLOURS = ("#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2",
                 "#d55e00", "#cc79a7", "#d9d9d9", "#882255", "#44aa99")
CLASS_SYMBOLS = ("o", "s", "t", "d", "+", "x", "star", "t1", "p", "h")


def qcolor(name: str) -> QColor:
    return QColor(name)


def palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: WINDOW, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE, QPalette.ColorRole.AlternateBase: RAISED,
        QPalette.ColorRole.ToolTipBase: RAISED, QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: MUTED, QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: RAISED, QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#000000", QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(INACTIVE))
    return p


def apply_theme(app) -> None:
    """Fusion style with the dark palette, on the whole application."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    # Plots take BASE/MUTED themselves: importing pyqtgraph here would slow every start-up.
