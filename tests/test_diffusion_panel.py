"""The diffusion playback panel driven through its real widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.families.diffusion import ops  # noqa: E402
from studio.ui.context import AppContext  # noqa: E402
from studio.families.diffusion.ui.panel import DiffusionPanel  # noqa: E402
from test_diffusion_engine import make_tiny_unet  # noqa: E402

WAIT = 30000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_unet(tmp_path_factory.mktemp("unet") / "tiny_unet.safetensors"))


@pytest.fixture
def panel(qtbot, tiny):
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["diffusion"] = tiny
    p = DiffusionPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    qtbot.waitUntil(lambda: p.has_first_image() and not p.running, timeout=WAIT)
    yield p
    ctx.bridge.shutdown()


def drop_file(widget, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


def test_opens_samples_and_records_every_step(panel):
    # The default: DDIM, 50 steps, one sample; 50 step frames plus the finished sample.
    assert len(panel.frames) == 51 and panel.playback.count() == 51
    assert panel.playback.index() == 50
    assert panel.playback.label.text() == "done: 50 steps, t = 0"
    np.testing.assert_array_equal(panel.views["x_t"].image(), panel.frames[-1]["x_t"])
    assert [m["t"] for m in panel.meta[:3]] == [981, 961, 941]


def test_scrub_step_play_and_pause(qtbot, panel):
    panel.playback.scrubber.setValue(10)
    assert panel.playback.label.text() == "step 11 of 50, t = 781"
    assert panel.schedule.t() == 781
    qtbot.waitUntil(lambda: panel.schedule.marker.value() == 781, timeout=1000)
    for key in ops.VIEWS:
        np.testing.assert_array_equal(panel.views[key].image(), panel.frames[10][key])
    qtbot.mouseClick(panel.playback.forward_button, Qt.MouseButton.LeftButton)
    assert panel.playback.index() == 11
    qtbot.mouseClick(panel.playback.back_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.playback.back_button, Qt.MouseButton.LeftButton)
    assert panel.playback.index() == 9
    panel.playback.set_speed(200)
    qtbot.mouseClick(panel.playback.play_button, Qt.MouseButton.LeftButton)
    assert panel.playback.is_playing()
    qtbot.waitUntil(lambda: panel.playback.index() >= 20, timeout=5000)
    qtbot.mouseClick(panel.playback.play_button, Qt.MouseButton.LeftButton)
    assert not panel.playback.is_playing()
    stopped = panel.playback.index()
    qtbot.wait(100)
    assert panel.playback.index() == stopped
    np.testing.assert_array_equal(panel.views["x0"].image(), panel.frames[stopped]["x0"])
    # Playing to the end stops there.
    panel.playback.play()
    qtbot.waitUntil(lambda: not panel.playback.is_playing(), timeout=5000)
    assert panel.playback.index() == 50


def test_same_seed_same_trajectory_and_new_settings(qtbot, panel):
    first = [f["x_t"].copy() for f in panel.frames]
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    assert panel.steps.value() == 1000 and not panel.eta.isEnabled()
    panel.steps.setValue(20)
    panel.batch.setValue(4)
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert len(panel.frames) == 21 and panel.frames[0]["x0"].shape == (59, 59)  # 2x2 grid
    ddpm = [f["x_t"].copy() for f in panel.frames]
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    for a, b in zip(ddpm, panel.frames):
        np.testing.assert_array_equal(a, b["x_t"])
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    panel.steps.setValue(50)
    panel.batch.setValue(1)
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    for a, b in zip(first, panel.frames):
        np.testing.assert_array_equal(a, b["x_t"])


def test_cancel_stops_at_a_step_boundary(qtbot, panel):
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    panel.steps.setValue(1000)
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    assert panel.running and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: len(panel.frames) >= 5, timeout=WAIT)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.running and panel.sample_button.isEnabled()
    qtbot.waitUntil(panel.bridge.renderer.idle, timeout=WAIT)
    qtbot.wait(50)
    n = len(panel.frames)
    assert 5 <= n < 1000 and panel.playback.count() == n
    assert panel.run_info.text() == f"cancelled after {n} steps"


def test_drop_image_forward_process_and_denoise(qtbot, panel, tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    path = tmp_path / "one.png"
    Image.fromarray(digit).save(path)
    drop_file(panel, path)
    assert panel.input_image is not None and panel.forward_box.denoise.isEnabled()
    with qtbot.waitSignal(panel.forward_box.noised.painted, timeout=WAIT):
        panel.forward_box.spin.setValue(0)
    qtbot.waitUntil(lambda: panel.last_result.request.__class__ is ops.DiffusionForward
                    and panel.last_result.request.t == 0, timeout=WAIT)
    np.testing.assert_array_equal(panel.forward_box.noised.image(), digit)  # t = 0 is the input
    panel.forward_box.slider.setValue(500)
    qtbot.waitUntil(lambda: panel.forward_box.info.text().startswith("t = 500"), timeout=WAIT)
    noised = panel.forward_box.noised.image()
    assert np.abs(noised.astype(float) - digit).mean() > 20
    assert panel.schedule.t() == 500
    qtbot.waitUntil(lambda: panel.schedule.marker.value() == 500, timeout=1000)
    qtbot.mouseClick(panel.forward_box.denoise, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert panel.meta[0]["t"] == 500 and len(panel.frames) == 25 + 1
    np.testing.assert_array_equal(panel.frames[0]["x_t"][1:29, 1:29], noised)


def test_bad_drop_shows_an_error(panel, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    drop_file(panel, bad)
    assert panel.input_image is None
    assert "notes.png" in panel.status.text() and "e05050" in panel.status.styleSheet()


def test_export_gif_and_strip(panel, tmp_path):
    gif = panel.export_gif(str(tmp_path / "t.gif"), view="x_t")  # PIL merges repeated frames
    with Image.open(gif) as im:
        assert im.n_frames == 51 and im.size == (30 * 4, 30 * 4)
    strip = panel.export_strip(str(tmp_path / "t.png"), view="x_t", count=6)
    with Image.open(strip) as im:
        assert im.size == (6 * 60 + 5 * 2, 60)


def test_refuses_a_checkpoint_of_another_family(panel, tiny_vae_path):
    before = panel.checkpoint
    panel.open_checkpoint(str(tiny_vae_path))
    assert panel.checkpoint == before
    assert "not a 'diffusion' model" in panel.status.text()
