"""The VAE explorer driven through its real widgets (pytest-qt, offscreen)."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from conftest import MNIST, images_differ
from studio.engine.latent import plane_point
from studio.ui.context import AppContext
from studio.families.vae.ui.panel import VAEPanel

WAIT = 15000


@pytest.fixture
def panel(qtbot, vae_2d_path):
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(vae_2d_path)
    p = VAEPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    qtbot.waitUntil(p.has_first_image, timeout=WAIT)
    yield p
    ctx.bridge.shutdown()


def drop_files(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def test_moving_a_slider_changes_the_image(qtbot, panel):
    before = panel.decoded.image().copy()
    inner = panel.sliders.sliders[0]._slider  # the slider part of superqt's labelled slider
    start = QPoint(inner.width() // 2, inner.height() // 2)  # the handle, at 0
    end = QPoint(start.x() + inner.width() // 4, start.y())
    with qtbot.waitSignal(panel.decoded.painted, timeout=WAIT):
        qtbot.mousePress(inner, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(inner, end)
        qtbot.mouseRelease(inner, Qt.MouseButton.LeftButton, pos=end)
    qtbot.waitUntil(lambda: panel.last_result.request.z[0] == pytest.approx(panel.sliders.values()[0]),
                    timeout=WAIT)
    assert panel.sliders.values()[0] > 0.5
    assert images_differ(before, panel.decoded.image())


def test_clicking_the_map_decodes_that_point(qtbot, panel):
    rect = panel.manifold.image_rect()
    click = QPoint(int(rect.left() + 0.1 * rect.width()), int(rect.top() + 0.2 * rect.height()))
    u, v = panel.manifold.to_normalised(QPointF(click))
    with qtbot.waitSignal(panel.decoded.painted, timeout=WAIT):
        qtbot.mouseClick(panel.manifold, Qt.MouseButton.LeftButton, pos=click)
    x, y = plane_point(u, v, 3.0)
    np.testing.assert_allclose(panel.sliders.values(), [x, y], atol=0.011)
    assert panel.last_result.request.z == pytest.approx(tuple(panel.sliders.values()))


def test_dropping_an_image_encodes_it(qtbot, panel, tmp_path, mnist_small):
    digit = (mnist_small.images[3, 0] * 255).astype(np.uint8)
    path = tmp_path / "digit.png"
    Image.fromarray(255 - digit).convert("RGB").save(path)  # dark ink on white paper
    with qtbot.waitSignal(panel.rendered, timeout=WAIT,
                          check_params_cb=lambda r: r.channel == "vae.encode") as encoded:
        drop_files(panel, [path])
    qtbot.waitUntil(lambda: panel.pair.image() is not None, timeout=WAIT)
    assert "digit.png" in panel.encoded_label.text()
    pair = panel.pair.image()
    assert pair.shape == (30, 59)  # input | reconstruction
    left, right = pair[1:29, 1:29].astype(float), pair[1:29, 30:58].astype(float)
    assert np.abs(left - digit).mean() < 3  # inverted back to MNIST polarity
    assert np.abs(left - right).mean() < 60  # the reconstruction resembles it
    mu = encoded.args[0].payload.mu
    qtbot.waitUntil(lambda: np.allclose(panel.sliders.values(), mu, atol=0.011), timeout=WAIT)


def test_dropping_a_non_image_shows_a_message(qtbot, panel, tmp_path):
    path = tmp_path / "shopping.txt"
    path.write_text("eggs, milk")
    with qtbot.waitSignal(panel.rendered, timeout=WAIT, check_params_cb=lambda r: r.error is not None):
        drop_files(panel, [path])
    assert "shopping.txt" in panel.status.text() and "not an image" in panel.status.text()


def test_random_reset_interpolate_and_save(qtbot, panel, tmp_path):
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.set_a, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.decoded.painted, timeout=WAIT):
        qtbot.mouseClick(panel.random_button, Qt.MouseButton.LeftButton)
    assert np.abs(panel.sliders.values()).sum() > 0
    with qtbot.waitSignal(panel.strip.painted, timeout=WAIT):
        qtbot.mouseClick(panel.set_b, Qt.MouseButton.LeftButton)
    linear = panel.strip.image().copy()
    assert linear.shape[1] == 10 * 29 + 1
    with qtbot.waitSignal(panel.strip.painted, timeout=WAIT):
        panel.mode.setCurrentText("spherical")
    assert panel.last_result.request.mode == "spherical"
    out = panel.save_view(panel.strip, str(tmp_path / "strip.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), panel.strip.image())


def test_dataset_scatter(qtbot, panel):
    if not MNIST.exists():
        pytest.skip("no shared MNIST")
    with qtbot.waitSignal(panel.rendered, timeout=60000,
                          check_params_cb=lambda r: r.channel == "vae.scatter"):
        qtbot.mouseClick(panel.mnist_button, Qt.MouseButton.LeftButton)
    assert panel.scatter.point_count == 3000
    assert len(panel.scatter._items) == 10  # one colour per digit


def test_window_switches_backend_with_the_same_image(qtbot, vae_2d_path):
    from studio.ui.main_window import MainWindow

    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(vae_2d_path)
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    panel = window.panels["vae"]
    qtbot.waitUntil(panel.has_first_image, timeout=WAIT)
    qtbot.waitUntil(lambda: panel.decoded.image() is not None, timeout=WAIT)
    onnx_image = panel.decoded.image().copy()
    with qtbot.waitSignal(panel.rendered, timeout=60000,
                          check_params_cb=lambda r: r.channel == "vae.decode" and r.backend == "torch"):
        window.backend_bar.backend.setCurrentText("torch")
    torch_image = panel.decoded.image()
    assert np.abs(onnx_image.astype(int) - torch_image.astype(int)).max() <= 1
    assert "torch on cpu" in panel.status.text() or panel.last_result.backend == "torch"
    ctx.bridge.shutdown()


def test_opening_a_non_vae_checkpoint_is_refused(qtbot, panel, tmp_path):
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"junk")
    panel.open_checkpoint(str(bad))
    assert "junk.safetensors" in panel.status.text()


def test_pasting_an_image_encodes_it(qtbot, panel, mnist_small):
    from PySide6.QtGui import QGuiApplication

    from studio.ui.widgets.image_view import to_qimage

    digit = (mnist_small.images[7, 0] * 255).astype(np.uint8)
    QGuiApplication.clipboard().setImage(to_qimage(digit))
    panel.setFocus()
    with qtbot.waitSignal(panel.pair.painted, timeout=WAIT):
        panel.paste_image()
    assert "clipboard" in panel.encoded_label.text()


def test_the_window_opens_every_panel(qtbot, vae_2d_path):
    from studio.ui.main_window import MainWindow
    from studio.ui.panels import panel_names

    ctx = AppContext("onnx", "cpu")
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    assert window.tabs.count() == len(panel_names())
    for i, name in enumerate(panel_names()):
        window.tabs.setCurrentIndex(i)
        assert window.panels[name].isVisible()
    ctx.bridge.shutdown()


def test_following_a_run_folder_reloads_new_checkpoints(qtbot, tmp_path, vae_2d_path):
    import os

    from studio.core.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    ckpt = load_checkpoint(vae_2d_path)
    save_checkpoint(ckpt, run / "last.safetensors")
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(run)  # opened as a folder, as `--checkpoint RUN_DIR` does
    p = VAEPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(p.has_first_image, timeout=WAIT)
    before = p.decoded.image().copy()
    bias = "decoder.deconv.2.bias"  # the logits of the last layer
    ckpt.weights[bias] = ckpt.weights[bias] + 2.0  # a visibly brighter "newer" model
    newer = save_checkpoint(ckpt, run / "step_0000100.safetensors")
    os.utime(newer, ns=(newer.stat().st_mtime_ns + 10**9,) * 2)
    with qtbot.waitSignal(p.decoded.painted, timeout=WAIT):
        ctx.checkpointUpdated.emit("vae", str(newer))
    assert p.decoded.image().mean() > before.mean() + 10
    ctx.bridge.shutdown()


def test_moving_within_the_map_plane_does_not_redraw_the_map(qtbot):
    from conftest import REPO

    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(REPO / "studio" / "checkpoints" / "vae_mnist_16d.safetensors")
    p = VAEPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(p.has_first_image, timeout=WAIT)
    submitted = []
    p.bridge.renderer.submit = lambda channel, req, _orig=p.bridge.renderer.submit: (
        submitted.append(channel), _orig(channel, req))[1]
    p.sliders.sliders[0].setValue(1.0)  # a dimension the map spans
    assert submitted.count("vae.manifold") == 0 and "vae.decode" in submitted
    p.sliders.sliders[5].setValue(1.0)  # another dimension: the slice moved
    assert submitted.count("vae.manifold") == 1
    ctx.bridge.shutdown()
