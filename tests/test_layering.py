"""The layers, checked by import-linter's contracts in pyproject.toml.

ui > (engine, training) > data > core; Qt only in studio/ui and each family's
ui package; a family's model is plain torch; the layers reach families only
through the registry. A copy of the tree with one forbidden import shows the
contracts really fail.
"""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_import_contracts_hold():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 kept, 0 broken" in result.stdout


def _copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "studio", tmp_path / "studio", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_catch_qt_in_core_and_an_upward_import(tmp_path):
    root = _copy_tree(tmp_path)
    imaging = root / "studio" / "core" / "imaging.py"
    imaging.write_text(imaging.read_text() + "\n\ndef _bad():\n    from PySide6.QtCore import QObject\n"
                       "    import studio.engine.renderer\n")
    model = root / "studio" / "families" / "vae" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _bad():\n    import studio.training.trainer\n")
    result = _lint(root)
    assert result.returncode != 0
    out = result.stdout
    assert "Qt only in studio.ui and each family's ui package BROKEN" in out
    assert "Layers: entry points > ui > evaluation > engine, training > data > core BROKEN" in out
    assert "A family's model is plain torch: no engine, training or ui BROKEN" in out


def test_every_family_folder_has_a_descriptor():
    from studio.core.family import families

    folders = {p.name for p in (REPO / "studio" / "families").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert folders and folders == {f.name for f in families().values()}
