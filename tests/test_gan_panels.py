"""The GAN panels driven through their real widgets (pytest-qt, offscreen)."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from conftest import images_differ
from studio.families.stylegan import ops
from studio.ui.context import AppContext

WAIT = 20000


def make_panel(qtbot, cls, checkpoints: dict):
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints.update({k: str(v) for k, v in checkpoints.items()})
    panel = cls(ctx)
    qtbot.addWidget(panel)
    panel.resize(1200, 760)
    panel.show()
    try:
        qtbot.waitUntil(panel.has_first_image, timeout=WAIT)
    except Exception:
        raise AssertionError(panel.status.text())
    return ctx, panel


@pytest.fixture
def explorer(qtbot, stylegan_path):
    from studio.families.stylegan.ui.explorer import GanExplorerPanel

    ctx, panel = make_panel(qtbot, GanExplorerPanel, {"stylegan": stylegan_path})
    yield panel
    panel.projection.shutdown()
    ctx.bridge.shutdown()


def drag(qtbot, slider, fraction: float):
    """Press the handle of a (labelled) slider in the middle and drag it by ``fraction`` of its width."""
    inner = getattr(slider, "_slider", slider)
    start = QPoint(inner.width() // 2, inner.height() // 2)
    end = QPoint(start.x() + int(inner.width() * fraction), start.y())
    qtbot.mousePress(inner, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(inner, end)
    qtbot.mouseRelease(inner, Qt.MouseButton.LeftButton, pos=end)


def wait_image(qtbot, panel, view, action):
    with qtbot.waitSignal(view.painted, timeout=WAIT):
        action()
    qtbot.waitUntil(lambda: panel.bridge.renderer.idle(), timeout=WAIT)
    qtbot.wait(50)


def click_checkbox(qtbot, box):
    """Click a check box on its indicator (a box without text is mostly empty space)."""
    from PySide6.QtWidgets import QStyle, QStyleOptionButton

    option = QStyleOptionButton()
    box.initStyleOption(option)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=rect.center())


def drop_file(widget, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


def test_z_slider_moves_the_picture(qtbot, explorer):
    before = explorer.generated.image().copy()
    wait_image(qtbot, explorer, explorer.generated, lambda: drag(qtbot, explorer.sliders.sliders[0], 0.3))
    code = explorer.last_result.request.code
    assert code.z is not None and code.z[0] == pytest.approx(explorer.sliders.values()[0])
    assert explorer.sliders.values()[0] > 1.0
    assert images_differ(before, explorer.generated.image())
    assert "edited z" in explorer.code_label.text()


def test_seed_buttons_navigate_seeds(qtbot, explorer):
    before = explorer.generated.image().copy()
    wait_image(qtbot, explorer, explorer.generated,
               lambda: qtbot.mouseClick(explorer.next_button, Qt.MouseButton.LeftButton))
    assert explorer.seed.value() == 1 and explorer.last_result.request.code == ops.Code(1)
    assert images_differ(before, explorer.generated.image())
    np.testing.assert_allclose(explorer.sliders.values(), ops.seed_to_z(1, 64), atol=0.006)


def test_pca_slider_edits_w_on_the_chosen_layers(qtbot, explorer):
    explorer.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: explorer.pca_labels[0].text().endswith("%)"), timeout=WAIT)  # variance shown
    explorer.edit_layers.set_range((2, 5))
    before = explorer.generated.image().copy()
    wait_image(qtbot, explorer, explorer.generated, lambda: drag(qtbot, explorer.pca_sliders[0], 0.4))
    edits = explorer.last_result.request.edits
    assert len(edits) == 1 and edits[0].component == 0 and edits[0].layers == (2, 5) and edits[0].amount > 1
    assert images_differ(before, explorer.generated.image())
    wait_image(qtbot, explorer, explorer.generated,
               lambda: qtbot.mouseClick(explorer.reset_edits, Qt.MouseButton.LeftButton))
    assert explorer.last_result.request.edits == ()


def test_truncation_to_zero_makes_every_seed_the_average(qtbot, explorer):
    wait_image(qtbot, explorer, explorer.generated, lambda: drag(qtbot, explorer.psi, -0.5))
    assert explorer.psi.value() < 1.0
    explorer.psi.setValue(0.0)
    qtbot.waitUntil(lambda: explorer.last_result.request.psi == 0.0, timeout=WAIT)
    first = explorer.generated.image().copy()
    wait_image(qtbot, explorer, explorer.generated,
               lambda: qtbot.mouseClick(explorer.next_button, Qt.MouseButton.LeftButton))
    np.testing.assert_array_equal(first, explorer.generated.image())


def test_interpolation_strip_and_gif_export(qtbot, explorer, tmp_path):
    qtbot.mouseClick(explorer.set_a, Qt.MouseButton.LeftButton)
    explorer.seed.setValue(5)
    wait_image(qtbot, explorer, explorer.strip, lambda: qtbot.mouseClick(explorer.set_b, Qt.MouseButton.LeftButton))
    assert explorer.strip.image().shape == (34, 8 * 33 + 1, 3)
    assert explorer.gif_button.isEnabled()
    path = explorer.export_gif(str(tmp_path / "walk.gif"))
    with Image.open(path) as gif:
        assert gif.n_frames == 14  # 8 there, 6 back


def test_saved_latents_reload_the_same_picture(qtbot, explorer, tmp_path):
    wait_image(qtbot, explorer, explorer.generated, lambda: drag(qtbot, explorer.sliders.sliders[3], -0.2))
    explorer.psi.setValue(0.7)
    qtbot.waitUntil(lambda: explorer.last_result.request.psi == pytest.approx(0.7), timeout=WAIT)
    wanted = explorer.generated.image().copy()
    path = explorer.save_latents(str(tmp_path / "latents.json"))
    wait_image(qtbot, explorer, explorer.generated,
               lambda: qtbot.mouseClick(explorer.random_button, Qt.MouseButton.LeftButton))
    explorer.psi.setValue(1.0)
    assert explorer.load_latents(str(path))
    qtbot.waitUntil(lambda: explorer.bridge.renderer.idle(), timeout=WAIT)
    qtbot.wait(100)
    np.testing.assert_array_equal(explorer.generated.image(), wanted)
    (tmp_path / "junk.json").write_text("[1, 2")
    assert not explorer.load_latents(str(tmp_path / "junk.json"))
    assert "junk.json: not a JSON file" in explorer.status.text()


def test_a_dcgan_checkpoint_shows_z_only(qtbot, explorer, dcgan_path, tmp_path):
    wait_image(qtbot, explorer, explorer.generated, lambda: explorer.open_checkpoint(str(dcgan_path)))
    assert explorer.generated.image().shape == (28, 28)
    assert not explorer.tabs.isTabVisible(1) and not explorer.projection.isVisible()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "d.png")
    drop_file(explorer, tmp_path / "d.png")
    assert "needs a StyleGAN" in explorer.status.text()


@pytest.fixture
def generated_png(tmp_path, stylegan_path):
    from studio.engine.runtime import RuntimePool

    image = ops.generate(RuntimePool(), ops.GanGenerate(ops.Target(str(stylegan_path)), ops.Code(21), 0.6)).image
    path = tmp_path / "picture.png"
    Image.fromarray(image).save(path)
    return path


def test_dropping_a_picture_projects_it_and_the_panel_stays_responsive(qtbot, explorer, generated_png):
    box = explorer.projection
    with qtbot.waitSignal(box.pair.painted, timeout=WAIT):  # the first streamed step
        drop_file(explorer, generated_png)
    assert box.running and box.cancel_button.isEnabled()
    # While the projection optimises on its own thread, the explorer still renders.
    wait_image(qtbot, explorer, explorer.generated,
               lambda: qtbot.mouseClick(explorer.next_button, Qt.MouseButton.LeftButton))
    assert box.running
    with qtbot.waitSignal(box.projected, timeout=WAIT) as done:
        pass
    curve = done.args[1].loss
    assert curve[-1] < curve[0] and done.args[1].seconds < 10
    qtbot.waitUntil(lambda: explorer.last_result.request.code.ws is not None, timeout=WAIT)
    assert explorer.code_label.text() == "projection p1"
    assert box.progress.value() == 100 and not box.cancel_button.isEnabled()


def test_projection_cancel_button_stops_it(qtbot, explorer, generated_png):
    box = explorer.projection
    with qtbot.waitSignal(box.pair.painted, timeout=WAIT):
        drop_file(explorer, generated_png)
    with qtbot.assertNotEmitted(box.projected, wait=2500):
        qtbot.mouseClick(box.cancel_button, Qt.MouseButton.LeftButton)
    assert not box.running and box.info.text() == "cancelled" and box.progress.value() < 100
    assert box.bridge.renderer.idle()


@pytest.fixture
def mixing(qtbot, stylegan_path):
    from studio.families.stylegan.ui.mixing_panel import StyleMixingPanel

    ctx, panel = make_panel(qtbot, StyleMixingPanel, {"stylegan": stylegan_path})
    yield panel
    ctx.bridge.shutdown()


def test_mixing_grid_follows_presets_and_the_range_slider(qtbot, mixing):
    assert mixing.grid.image().shape == (5 * 33 + 1, 5 * 33 + 1, 3)  # 4x4 mixes and their sources
    before = mixing.grid.image().copy()
    wait_image(qtbot, mixing, mixing.grid,
               lambda: qtbot.mouseClick(mixing.layers.preset_buttons["fine"], Qt.MouseButton.LeftButton))
    assert mixing.last_grid.request.layers == (6, 7) and mixing.layers.value() == (6, 7)
    assert images_differ(before, mixing.grid.image())
    assert "32-32 px" in mixing.layers.description.text()
    wait_image(qtbot, mixing, mixing.grid, lambda: mixing.layers.slider.setValue((2, 5)))
    assert mixing.last_grid.request.layers == (2, 5)
    # The headers are the sources themselves: B along the top, A down the side.
    data = mixing.last_grid.payload
    grid = mixing.grid.image()
    from studio.core.imaging import to_uint8
    np.testing.assert_array_equal(grid[1:33, 34:66], to_uint8(data.sources_b[0]))
    np.testing.assert_array_equal(grid[34:66, 1:33], to_uint8(data.sources_a[0]))


def test_clicking_a_cell_opens_it_large_with_its_sources(qtbot, mixing):
    from studio.core.imaging import to_uint8

    rect = mixing.grid.image_rect()
    # Row 2, column 3 of the mixes: cell (3, 4) of the 5x5 picture.
    click = QPoint(int(rect.left() + rect.width() * (4.5 / 5)), int(rect.top() + rect.height() * (3.5 / 5)))
    qtbot.mouseClick(mixing.grid, Qt.MouseButton.LeftButton, pos=click)
    dialog = mixing.dialog
    assert dialog is not None and dialog.isVisible()
    data = mixing.last_grid.payload
    np.testing.assert_array_equal(dialog.views["mix"].image(), to_uint8(data.mixes[2, 3]))
    np.testing.assert_array_equal(dialog.views["a"].image(), to_uint8(data.sources_a[2]))
    np.testing.assert_array_equal(dialog.views["b"].image(), to_uint8(data.sources_b[3]))
    assert dialog.labels["a"].text() == "A: seed 3" and dialog.labels["b"].text() == "B: seed 8"
    dialog.close()


def test_bad_sources_are_a_message_and_projections_can_be_sources(qtbot, mixing):
    from studio.families.stylegan.ui.widgets import projection_store

    qtbot.keyClicks(mixing.rows_edit, ", banana")
    qtbot.keyClick(mixing.rows_edit, Qt.Key.Key_Return)
    assert "'banana' is neither a seed nor a projection" in mixing.status.text()
    ws = ops.GanModel(mixing.bridge.pool, ops.Target(mixing.checkpoint)).styles([ops.Code(40)])[0]
    name = projection_store(mixing.context).add(ops.Code(ws=tuple(map(tuple, ws.tolist()))), mixing.checkpoint)
    assert name in mixing.projections_label.text()
    mixing.rows_edit.setText(f"{name}, 2")
    wait_image(qtbot, mixing, mixing.grid, lambda: qtbot.keyClick(mixing.rows_edit, Qt.Key.Key_Return))
    assert mixing.last_grid.request.rows[0].ws is not None and mixing.last_grid.payload.rows == 2


@pytest.fixture
def noise(qtbot, stylegan_path):
    from studio.families.stylegan.ui.noise_panel import NoisePanel

    ctx, panel = make_panel(qtbot, NoisePanel, {"stylegan": stylegan_path})
    yield panel
    ctx.bridge.shutdown()


def test_noise_toggles_resample_and_the_std_map(qtbot, noise):
    before = noise.image.image().copy()
    std_before = noise.std_map.image().copy()
    wait_image(qtbot, noise, noise.std_map, lambda: click_checkbox(qtbot, noise.enabled[7]))
    assert not noise.enabled[7].isChecked() and not noise.modes[7].isEnabled()
    assert noise.last_result is not None
    assert noise.noise_spec().modes[7] == "off" and images_differ(before, noise.image.image(), 0.0)
    assert images_differ(std_before, noise.std_map.image(), 0.0)
    seed_before, image_before = noise.noise_seed.value(), noise.image.image().copy()
    wait_image(qtbot, noise, noise.image, lambda: qtbot.mouseClick(noise.resample_button, Qt.MouseButton.LeftButton))
    assert noise.noise_seed.value() == seed_before + 1
    assert images_differ(image_before, noise.image.image(), 0.0)
    wait_image(qtbot, noise, noise.std_map, lambda: qtbot.mouseClick(noise.all_off, Qt.MouseButton.LeftButton))
    assert "max std 0.000" in noise.std_label.text()
    still = noise.image.image().copy()
    wait_image(qtbot, noise, noise.image, lambda: qtbot.mouseClick(noise.resample_button, Qt.MouseButton.LeftButton))
    np.testing.assert_array_equal(still, noise.image.image())  # no noise: nothing to resample


def test_random_noise_mode_and_strength(qtbot, noise):
    noise._set_all(False)
    qtbot.waitUntil(lambda: noise.bridge.renderer.idle(), timeout=WAIT)
    wait_image(qtbot, noise, noise.image, lambda: click_checkbox(qtbot, noise.enabled[6]))
    noise.modes[6].setCurrentIndex(0)  # random per render
    qtbot.waitUntil(lambda: noise.last_result.request.noise.modes[6] == "random", timeout=WAIT)
    qtbot.waitUntil(lambda: noise.bridge.renderer.idle(), timeout=WAIT)
    qtbot.wait(50)
    first = noise.image.image().copy()
    wait_image(qtbot, noise, noise.image, noise.render_image)
    assert images_differ(first, noise.image.image(), 0.0)  # a new draw every render
    noise.strengths[6].setValue(3.0)
    qtbot.waitUntil(lambda: "max std" in noise.std_label.text() and
                    noise.last_result.request.noise.strengths[6] == 3.0, timeout=WAIT)
