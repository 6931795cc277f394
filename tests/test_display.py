"""Starting without a display, or without the X11 libraries Qt needs: one line, exit 2, no abort."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO
from studio.ui import display


def bare_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(extra)
    return env


def test_no_display_names_the_fix_and_exits_2():
    out = subprocess.run([sys.executable, "main.py"], cwd=REPO, env=bare_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "no display" in lines[0] and "--screenshot" in lines[0]
    assert "libxcb-cursor0" in lines[0] and "libxkbcommon-x11-0" in lines[0] and "libegl1" in lines[0]
    assert "Aborted" not in out.stderr and "Traceback" not in out.stderr


def test_a_screenshot_needs_no_display(tmp_path, vae_2d_path):
    shot = tmp_path / "window.png"
    out = subprocess.run([sys.executable, "main.py", "--checkpoint", str(vae_2d_path), "--screenshot", str(shot)],
                         cwd=REPO, env=bare_env(), capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert np.asarray(Image.open(shot).convert("L")).std() > 20


def test_missing_x11_libraries_are_named_with_their_packages(monkeypatch):
    monkeypatch.setattr(display.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    real = display.ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if name in ("libxcb-cursor.so.0", "libxcb-icccm.so.4"):
            raise OSError(f"{name}: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(display.ctypes, "CDLL", cdll)
    problem = display.display_problem()
    assert "\n" not in problem and "libxcb-cursor.so.0, " in problem
    packages = problem.split("sudo apt-get install ")[1].split()
    assert {"libxcb-cursor0", "libxcb-icccm4"} <= set(packages)
    assert "libegl1" not in packages  # only what is missing (this machine has EGL)


def test_other_platforms_and_offscreen_are_not_checked(monkeypatch):
    monkeypatch.setattr(display.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display.display_problem() is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    assert display.display_problem(offscreen_ok=True) is None
    assert os.environ["QT_QPA_PLATFORM"] == "offscreen"  # --screenshot switched Qt to offscreen
    monkeypatch.setattr(display.sys, "platform", "darwin")
    monkeypatch.delenv("QT_QPA_PLATFORM")
    assert display.display_problem() is None


def test_the_readme_lists_the_packages_the_check_names():
    assert display.install_line(display.LINUX_PACKAGES) in (REPO / "README.md").read_text()
