"""The real app on a real X server (Xvfb, Qt's xcb platform): every panel opened, used, photographed."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

XVFB_RUN = shutil.which("xvfb-run")


@pytest.mark.skipif(XVFB_RUN is None, reason="xvfb-run is not installed (apt-get install xvfb xauth; .ci/run does)")
def test_every_panel_under_xvfb(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="xcb", OMP_NUM_THREADS="1")
    out = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1280x1024x24", sys.executable,
                          str(REPO / "tests" / "gui_tour.py"), str(tmp_path)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["platform"] == "xcb"  # a real X server, not the offscreen plugin
    assert {"vae_2d.png", "vae_16d.png", "gan.png", "style_mixing.png", "noise.png", "diffusion.png",
            "training.png"} <= set(report["screenshots"])
    for name in report["screenshots"]:
        shot = np.asarray(Image.open(tmp_path / name).convert("L"))
        assert shot.shape[0] >= 700 and shot.shape[1] >= 1100, name
        assert shot.std() > 20, f"{name} looks blank"
