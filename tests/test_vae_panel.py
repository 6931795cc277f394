"""The VAE explorer driven through its real widgets (pytest-qt, offscreen)."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from conftest import MNIST, REPO, images_differ
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
    qtbot.waitUntil(lambda: panel.results["decode"].request.z[0] == pytest.approx(panel.sliders.values()[0]),
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
    assert panel.results["decode"].request.z == pytest.approx(tuple(panel.sliders.values()))


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
    errors = []
    on_error = panel.on_error
    panel.on_error = lambda view, message: (errors.append((view, message)), on_error(view, message))
    with qtbot.waitSignal(panel.rendered, timeout=WAIT, check_params_cb=lambda r: r.error is not None):
        drop_files(panel, [path])
    assert "shopping.txt" in panel.status.text() and "not an image" in panel.status.text()
    assert [view for view, _ in errors] == ["encode"] and "shopping.txt" in errors[0][1]


def test_dropping_a_folder_without_images_names_it(qtbot, panel, tmp_path):
    empty = tmp_path / "holiday notes"
    empty.mkdir()
    (empty / "list.txt").write_text("sun")
    drop_files(panel, [empty])
    assert "holiday notes: no image files there" in panel.status.text()
    assert panel.pair.image() is None


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
    assert panel.results["interpolate"].request.mode == "spherical"
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
    assert panel.results["decode"].backend == "torch"
    ctx.bridge.shutdown()


def test_opening_a_non_vae_checkpoint_is_refused(qtbot, panel, tmp_path):
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"junk")
    panel.open_checkpoint(str(bad))
    assert "junk.safetensors" in panel.status.text()


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
    qtbot.waitUntil(p.has_first_image, timeout=120_000)  # no ONNX files beside it: exported first
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
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(REPO / "studio" / "checkpoints" / "vae_mnist_16d.safetensors")
    p = VAEPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(lambda: p.has_first_image() and p.state.dim_kl is not None, timeout=WAIT)
    submitted = []
    original = p.bridge.renderer.submit
    p.bridge.renderer.submit = lambda channel, req, *more: (submitted.append(channel), original(channel, req, *more))[1]
    x, y = p.dims()
    p.sliders.sliders[x].setValue(1.0)  # a dimension the map spans
    assert submitted.count("vae.manifold") == 0 and "vae.decode" in submitted
    other = next(i for i in range(16) if i not in (x, y))
    p.sliders.sliders[other].setValue(1.0)  # another dimension: the slice moved
    assert submitted.count("vae.manifold") == 1
    # Dragged on, the map follows a few times a second, not once per move, and ends on the last slice.
    for k in range(30):
        p.sliders.sliders[other].setValue(1.0 + 0.05 * k)
    assert submitted.count("vae.manifold") < 5
    qtbot.waitUntil(lambda: p.results["manifold"].request.base_z == tuple(p.state.z.tolist()), timeout=WAIT)
    assert submitted.count("vae.manifold") >= 2
    ctx.bridge.shutdown()


VAE_16D = str(REPO / "studio" / "checkpoints" / "vae_mnist_16d.safetensors")


def wait_usage(qtbot, p):
    qtbot.waitUntil(lambda: p.state.dim_kl is not None and "KL" in p.sliders.labels[0].text(), timeout=WAIT)


def test_sliders_stay_packed_at_the_top_after_2d_then_16d(qtbot, panel):
    # The bug: each set_dims added another stretch; after 2-D -> 16-D the 16 sliders sat
    # below the 2-D model's stretch, drifting down the column.
    with qtbot.waitSignal(panel.manifold.painted, timeout=WAIT):
        panel.open_checkpoint(VAE_16D)
    qtbot.wait(50)  # let the deleted rows go and the layout settle
    layout = panel.sliders._layout
    assert layout.count() == 16 + 1  # sixteen rows and one stretch, last
    assert layout.itemAt(layout.count() - 1).spacerItem() is not None
    first_row = panel.sliders.row_widget(panel.sliders.order()[0])
    assert first_row.y() <= layout.contentsMargins().top() + 1
    old_rows = list(panel.sliders._rows)
    assert all(row.isVisible() for row in old_rows)
    panel.open_checkpoint(str(panel.picker.itemData(0)))  # back to 2-D
    assert layout.count() == 2 + 1
    assert not any(row.isVisible() for row in old_rows)  # off the screen at once, not when deleted


def test_map_axes_stay_distinct_after_switching_to_the_2d_model(qtbot, panel):
    with qtbot.waitSignal(panel.manifold.painted, timeout=WAIT):
        panel.open_checkpoint(VAE_16D)
    wait_usage(qtbot, panel)
    panel.dim_x.setValue(5 if panel.dims()[1] != 5 else 6)  # the user moves the map's x axis
    assert panel.dims()[0] in (5, 6)
    with qtbot.waitSignal(panel.rendered, timeout=WAIT,
                          check_params_cb=lambda r: r.channel == "vae.manifold" and r.request.dims == (0, 1)):
        panel.open_checkpoint(str(panel.picker.itemData(0)))
    assert panel.dims() == (0, 1) and (panel.dim_x.value(), panel.dim_y.value()) == (0, 1)
    assert not panel.dim_x.isEnabled() and not panel.dim_y.isEnabled()
    qtbot.waitUntil(lambda: panel.results["manifold"].request.dims == (0, 1), timeout=WAIT)
    grid = panel.manifold.image().astype(float)
    top_left, top_right = grid[:28, :28], grid[:28, -28:]
    assert np.abs(top_left - top_right).mean() > 10  # a row of different digits, not one repeated


def test_sliders_are_labelled_and_sorted_by_kl(qtbot, panel):
    with qtbot.waitSignal(panel.manifold.painted, timeout=WAIT):
        panel.open_checkpoint(VAE_16D)
    wait_usage(qtbot, panel)
    kl = panel.state.dim_kl
    order = panel.sliders.order()
    assert list(kl[order]) == sorted(kl, reverse=True)
    top = order[0]
    assert panel.sliders.labels[top].text() == f"z[{top}]  KL {kl[top]:.2f}"
    assert panel.dims() == tuple(sorted(order[:2]))  # the map shows the two most used
    tip = panel.sliders.sliders[top].toolTip()
    expected = "500 held-out MNIST digits" if MNIST.exists() else "decoded prior samples, re-encoded"
    assert f"average KL {kl[top]:.2f} nats over" in tip and expected in tip


def test_a_collapsed_dimension_is_marked_inactive(qtbot, tmp_path, vae_2d_path):
    from studio.core.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(vae_2d_path)
    w = ckpt.weights
    # Make z[1] carry nothing: its mean is 0 and log-variance 0 for every image, q = the prior.
    for name in ("encoder.mu.weight", "encoder.mu.bias", "encoder.logvar.weight", "encoder.logvar.bias"):
        w[name] = w[name].copy()
        w[name][1] = 0.0
    path = save_checkpoint(ckpt, tmp_path / "collapsed.safetensors")
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(path)
    p = VAEPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    wait_usage(qtbot, p)
    assert p.state.dim_kl[1] == pytest.approx(0.0, abs=1e-6) and p.state.inactive_dims() == [1]
    assert p.sliders.order() == [0, 1]
    assert "(inactive)" in p.sliders.labels[1].text() and "(inactive)" not in p.sliders.labels[0].text()
    assert "posterior collapse" in p.sliders.labels[1].toolTip()
    ctx.bridge.shutdown()


def test_dropping_a_folder_of_two_digits_interpolates_between_them(qtbot, panel, tmp_path, mnist_small):
    folder = tmp_path / "pair"
    folder.mkdir()
    for name, index in (("a_one.png", 2), ("b_seven.png", 0)):
        Image.fromarray((mnist_small.images[index, 0] * 255).astype(np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")  # a folder's other files are skipped
    with qtbot.waitSignal(panel.strip.painted, timeout=WAIT):
        drop_files(panel, [folder])
    assert "a_one.png" in panel.encoded_label.text()
    np.testing.assert_allclose(panel.state.z_a, panel.state.encoded.mu)
    assert panel.state.z_b is not None and not np.allclose(panel.state.z_a, panel.state.z_b)
    strip = panel.strip.image()
    assert images_differ(strip[:, :29], strip[:, -29:], threshold=5)  # A's end differs from B's


def test_a_new_checkpoint_clears_the_old_models_pictures(qtbot, panel, tmp_path, mnist_small):
    path = tmp_path / "digit.png"
    Image.fromarray((mnist_small.images[1, 0] * 255).astype(np.uint8)).save(path)
    with qtbot.waitSignal(panel.pair.painted, timeout=WAIT):
        drop_files(panel, [path])
    panel.set_a.click()
    with qtbot.waitSignal(panel.strip.painted, timeout=WAIT):
        panel.random_button.click()
        panel.set_b.click()
    panel.open_checkpoint(VAE_16D)
    assert panel.pair.image() is None and panel.strip.image() is None
    assert panel.encoded_label.text() == "" and panel.strip.placeholder().startswith("Set A and B")
    assert panel.pair.title() == "input | reconstruction" and panel.interp.title() == "Interpolate from A to B"
    assert panel.state.z_a is None and panel.state.encoded is None


def test_the_explain_pane_shows_the_elbo_of_the_encoded_image(qtbot, panel, tmp_path, mnist_small):
    path = tmp_path / "digit.png"
    Image.fromarray((mnist_small.images[4, 0] * 255).astype(np.uint8)).save(path)
    with qtbot.waitSignal(panel.rendered, timeout=WAIT,
                          check_params_cb=lambda r: r.channel == "vae.elbo" and r.payload.about == "digit.png"):
        drop_files(panel, [path])
    e = panel.state.elbo
    assert 30 < e.recon_nats < 400 and 0 < e.kl_nats < 40  # a real digit under the 2-D model
    assert f"KL {e.kl_nats:.1f}" in panel.encoded_label.text() and "nats" in panel.encoded_label.text()
    pane = panel.explain
    assert f"reconstruction {e.recon_nats:.1f} nats" in pane.text.text()
    qtbot.waitUntil(lambda: pane.drawn_equations() == pane.equations(), timeout=30000)
    assert f"{e.neg_elbo:.1f} = {e.recon_nats:.1f} + {e.kl_nats:.1f}" in pane.equations()[1]
    for label in pane.equation_labels[:len(pane.equations())]:
        pixmap = label.pixmap()
        assert not pixmap.isNull() and pixmap.width() > 60  # a drawn formula, not an error text
    qtbot.keyClick(pane.header, Qt.Key.Key_Space)  # fold it
    assert not pane.content.isVisible() and not pane.is_expanded()


def test_images_are_shown_at_a_whole_number_zoom(qtbot, vae_2d_path):
    from studio.ui.main_window import MainWindow

    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(vae_2d_path)
    window = MainWindow(ctx)  # at its default size
    qtbot.addWidget(window)
    window.show()
    panel = window.panels["vae"]
    qtbot.waitUntil(panel.has_first_image, timeout=WAIT)
    for view in (panel.decoded, panel.manifold):
        scale = view.scale()
        assert scale >= 1 and scale == int(scale), (view.title(), scale)
        rect = view.image_rect()
        assert rect.width() == view.image().shape[1] * scale
    assert panel.decoded.title() == "Decoded from z"
    assert panel.decoded.caption() == f"28×28 px, shown ×{panel.decoded.scale():g}"
    assert "15×15 decodes" in panel.manifold.title()
    window.close()


def test_a_long_strip_wraps_into_rows_to_show_larger_images(qtbot, panel):
    from studio.ui.widgets.image_view import wrap_strip

    strip = np.arange(30 * (10 * 29 + 1), dtype=np.uint8).reshape(30, 10 * 29 + 1)
    wrapped = wrap_strip(strip, 28, 2)
    assert wrapped.shape == (2 * 29 + 1, 5 * 29 + 1)
    np.testing.assert_array_equal(wrapped[30:58, 1:29], strip[1:29, 1 + 5 * 29: 1 + 5 * 29 + 28])  # 6th tile
    panel.strip.resize(340, 160)
    panel.strip.set_image(strip)
    assert panel.strip.rows() == 2 and panel.strip.scale() == 2  # one row would fit only at 1x
    assert panel.strip.image() is strip  # saving writes the strip itself
