"""The layering rule: only studio/ui imports Qt; models know nothing of the engine or UI."""

import ast
from pathlib import Path

STUDIO = Path(__file__).resolve().parents[1] / "studio"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy", "shiboken6")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_ui_imports_qt():
    offenders = []
    for path in STUDIO.rglob("*.py"):
        rel = path.relative_to(STUDIO)
        if rel.parts[0] == "ui":
            continue
        # Nested imports count too: GUI-driving benchmark code lives in studio/ui.
        mods = imported_modules(path)
        bad = sorted(m for m in mods if m.split(".")[0] in QT_MODULES)
        if bad:
            offenders.append(f"{rel}: {bad}")
    assert not offenders, "Qt imported outside studio/ui: " + "; ".join(offenders)


def test_models_are_pure_torch():
    for path in (STUDIO / "models").rglob("*.py"):
        mods = imported_modules(path)
        bad = sorted(m for m in mods if m.startswith(("studio.ui", "studio.engine", "studio.training")))
        assert not bad, f"{path.name} imports {bad}"


def test_the_rule_detects_a_violation(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from PySide6.QtCore import QObject\n")
    assert "PySide6.QtCore" in imported_modules(bad)
