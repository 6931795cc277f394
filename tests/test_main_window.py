"""The main window driven as a person would: real key presses, a real close, real pictures."""

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QGuiApplication, QKeySequence

from conftest import MNIST, REPO
from studio.engine.catalog import shipped
from studio.ui.context import AppContext
from studio.ui.main_window import MainWindow
from studio.ui.panels import panel_names
from studio.ui.widgets.image_view import ImageView, to_qimage

WAIT = 20000
VAE_16D = str(REPO / "studio" / "checkpoints" / "vae_mnist_16d.safetensors")


@pytest.fixture
def window(qtbot):
    ctx = AppContext("onnx", "cpu")
    w = MainWindow(ctx, initial="vae")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(w.panels["vae"].has_first_image, timeout=WAIT)
    yield w
    ctx.bridge.shutdown()


def screen_pixels(widget) -> np.ndarray:
    """The widget as painted on screen, in grey levels."""
    image = widget.grab().toImage()
    grey = image.convertToFormat(image.Format.Format_Grayscale8)
    w, h = grey.width(), grey.height()
    pixels = np.frombuffer(grey.constBits(), np.uint8, grey.bytesPerLine() * h)
    # A copy: the view into grey's bits would outlive grey (freed on return) and read garbage.
    return pixels.reshape(h, grey.bytesPerLine())[:, :w].copy()


def shows_a_picture(view: ImageView) -> bool:
    """A real picture, drawn: the array has content and the screen shows many grey levels."""
    if view.image() is None or view.image().std() < 10:
        return False
    pixels = screen_pixels(view)
    return pixels.std() > 15 and len(np.unique(pixels)) > 30


def shows_a_plot(curves) -> bool:
    """A loss plot with its labelled axes drawn (an idle run has no curve yet)."""
    item = curves.plot.getPlotItem()
    labelled = item.getAxis("bottom").labelText == "step" and item.getAxis("left").labelText == "loss"
    pixels = screen_pixels(curves.plot)
    return labelled and curves.plot.isVisible() and len(np.unique(pixels)) > 10


# How each panel shows its first picture or plot: a new panel must add its own line.
FIRST_PICTURE = {
    "vae": lambda p: shows_a_picture(p.manifold) and shows_a_picture(p.decoded),
    "gan": lambda p: shows_a_picture(p.generated),
    "style-mixing": lambda p: shows_a_picture(p.grid),
    "noise": lambda p: shows_a_picture(p.image) and shows_a_picture(p.std_map),
    "diffusion": lambda p: shows_a_picture(p.views["x_t"]),
    "cyclegan": lambda p: shows_a_picture(p.views.input) and shows_a_picture(p.views.translation),
    "training": lambda p: shows_a_plot(p.curves),
    "evaluation": lambda p: any(shows_a_picture(v) for v in p.gallery.findChildren(ImageView)),
}


def test_the_window_opens_every_panel_and_each_shows_a_picture(qtbot, window, request):
    if not shipped("cyclegan"):  # the tiny random CycleGAN stands in until the trained one ships
        window.context.checkpoints["cyclegan"] = str(request.getfixturevalue("cyclegan_path"))
    assert window.tabs.count() == len(panel_names())
    for i, name in enumerate(panel_names()):
        window.tabs.setCurrentIndex(i)
        panel = window.panels[name]
        assert name in FIRST_PICTURE, f"add the '{name}' panel's first picture to FIRST_PICTURE"
        qtbot.waitUntil(panel.has_first_image, timeout=60000)
        qtbot.waitUntil(lambda: FIRST_PICTURE[name](panel), timeout=60000)


def press_ctrl_v(qtbot, widget):
    qtbot.keyClick(widget, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def test_ctrl_v_pastes_an_image_whatever_has_focus_and_leaves_a_spin_box_alone(qtbot, window, mnist_small):
    panel = window.panels["vae"]
    with qtbot.waitSignal(panel.manifold.painted, timeout=WAIT):
        panel.open_checkpoint(VAE_16D)  # its map axes are spin boxes a person can type in
    qtbot.waitUntil(lambda: panel.state.dim_kl is not None, timeout=WAIT)
    box = panel.dim_x
    before = (box.value(), box.text())
    digit = (mnist_small.images[7, 0] * 255).astype(np.uint8)
    QGuiApplication.clipboard().setImage(to_qimage(digit))
    box.setFocus()
    box.selectAll()
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    with qtbot.waitSignal(panel.pair.painted, timeout=WAIT):
        press_ctrl_v(qtbot, box)
    assert (box.value(), box.text()) == before  # the spin box kept its number
    assert "clipboard" in panel.encoded_label.text()
    np.testing.assert_allclose(panel.sliders.values(), np.clip(panel.state.encoded.mu, -3, 3), atol=0.011)


def test_ctrl_v_with_text_pastes_into_the_focused_field(qtbot, window):
    panel = window.panels["vae"]
    with qtbot.waitSignal(panel.manifold.painted, timeout=WAIT):
        panel.open_checkpoint(VAE_16D)
    qtbot.waitUntil(lambda: panel.state.dim_kl is not None, timeout=WAIT)
    mime = QMimeData()
    mime.setText("7" if panel.dims()[1] != 7 else "8")
    QGuiApplication.clipboard().setMimeData(mime)
    box = panel.dim_x
    box.setFocus()
    box.selectAll()
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    press_ctrl_v(qtbot, box)
    assert box.value() == int(mime.text())
    assert panel.pair.image() is None  # nothing was encoded


def test_ctrl_v_on_another_panel_goes_to_that_panel(qtbot, window):
    window.select_panel("training")
    QGuiApplication.clipboard().setImage(to_qimage(np.full((28, 28), 200, np.uint8)))
    training = window.panels["training"]
    press_ctrl_v(qtbot, window.tabs.tabBar())
    assert "takes no images" in training.status.text()
    assert window.panels["vae"].pair.image() is None


def test_a_real_close_saves_and_the_next_window_restores(qtbot, window, _isolated_settings):
    from studio.ui.settings import app_settings, saved_backend

    panel = window.panels["vae"]
    with qtbot.waitSignal(panel.manifold.painted, timeout=WAIT):
        panel.open_checkpoint(VAE_16D)
    window.resize(1300, 860)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (1300, 860), timeout=2000)
    panel.columns.setSizes([520, 300, 480])
    sizes = panel.columns.sizes()
    window.backend_bar.backend.setCurrentText("torch")
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)  # File > Quit: a real close
    assert not window.isVisible()
    assert _isolated_settings.exists()
    assert saved_backend(app_settings()) == ("torch", "cpu")  # app.main starts the next run on these

    ctx = AppContext("onnx", "cpu")
    again = MainWindow(ctx, initial="vae")
    qtbot.addWidget(again)
    again.show()
    restored = again.panels["vae"]
    assert restored.checkpoint == VAE_16D and restored.latent_dim == 16
    assert (again.width(), again.height()) == (1300, 860)
    qtbot.waitUntil(lambda: restored.columns.sizes() == sizes, timeout=2000)
    qtbot.waitUntil(restored.has_first_image, timeout=WAIT)
    ctx.bridge.shutdown()


def test_a_panel_can_refuse_the_close(qtbot, window, monkeypatch):
    training = window.panel("training")
    monkeypatch.setattr(training, "confirm_close", lambda: False)  # as when the user cancels
    window.close()
    assert window.isVisible()
    monkeypatch.setattr(training, "confirm_close", lambda: True)
    window.close()
    assert not window.isVisible()


def test_every_action_has_a_shortcut_listed_in_help(qtbot, window, monkeypatch):
    from studio.ui.help import ShortcutsDialog

    rows = window.all_actions()
    assert all(keys for _, _, keys in rows), [r for r in rows if not r[2]]
    texts = {action: keys for _, action, keys in rows}
    paste = QKeySequence(QKeySequence.StandardKey.Paste).toString(QKeySequence.SequenceFormat.NativeText)
    assert texts["Paste image"] == paste and "Random sample" in texts and "Keyboard shortcuts" in texts
    assert len(set(keys for _, _, keys in rows)) == len(rows)  # no two actions share keys
    dialog = ShortcutsDialog(rows, window)
    assert dialog.rows() == rows
    about = []
    monkeypatch.setattr("PySide6.QtWidgets.QMessageBox.about", lambda *a: about.append(a[2]))
    window.show_about()
    assert "Generative Studio" in about[0] and "Explain" in about[0]


def test_panel_shortcuts_act_only_on_the_shown_panel(qtbot, window):
    panel = window.panels["vae"]
    assert not panel.sliders.values().any()
    with qtbot.waitSignal(panel.decoded.painted, timeout=WAIT):
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Random sample
    z = panel.sliders.values()
    assert z.any()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # go to the second panel
    assert window.current_name() == panel_names()[1]
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(panel.sliders.values(), z)  # the hidden VAE panel ignored it
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    explain = panel.explain
    was = explain.is_expanded()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    assert explain.is_expanded() != was


@pytest.mark.skipif(not MNIST.exists(), reason="the shared MNIST digits are not present")
def test_the_scatter_has_a_legend_of_ten_distinct_classes(qtbot, window):
    from studio.ui import theme

    panel = window.panels["vae"]
    with qtbot.waitSignal(panel.rendered, timeout=60000, check_params_cb=lambda r: r.channel == "vae.scatter"):
        qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    scatter = panel.scatter
    legend = [label.text for _, label in scatter.plotItem.legend.items]
    assert legend == [str(k) for k in range(10)]
    brushes = {item.opts["brush"].color().name() for item in scatter._items}
    symbols = {item.opts["symbol"] for item in scatter._items}
    assert brushes == {c.lower() for c in theme.CLASS_COLOURS} and len(symbols) == 10
