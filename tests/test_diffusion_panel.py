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

WAIT = 60000  # the first panel exports the tiny UNet to ONNX; a shared machine can be slow


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


def shown(panel, key="x_t"):
    return panel.views[key].image()


def recorded(panel, index, key="x_t"):
    return ops.tile(panel.state.trajectory[index].images[key])


def click(qtbot, button):
    assert button.isEnabled(), button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_opens_samples_and_records_every_step(panel):
    # The default: DDIM, 50 steps, one sample; 50 step frames plus the finished sample.
    assert panel.state.count() == 51 and panel.playback.count() == 51
    assert panel.playback.index() == 50 and panel.playback.scrubber.value() == 50
    assert panel.playback.label.text() == "done: 50 steps, t = 0"
    np.testing.assert_array_equal(shown(panel), panel.last_result.payload.final)
    assert [f.t for f in panel.state.trajectory[:3]] == [981, 961, 941]


def test_play_after_a_finished_sample_replays_from_the_start(qtbot, panel):
    panel.playback.set_speed(1000)
    click(qtbot, panel.playback.play_button)
    assert panel.playback.is_playing() and panel.playback.index() == 0
    np.testing.assert_array_equal(shown(panel), recorded(panel, 0))
    qtbot.waitUntil(lambda: not panel.playback.is_playing(), timeout=10000)
    assert panel.playback.index() == 50 and panel.playback.label.text() == "done: 50 steps, t = 0"
    click(qtbot, panel.playback.play_button)  # and again
    assert panel.playback.is_playing() and panel.playback.index() == 0
    click(qtbot, panel.playback.play_button)
    assert not panel.playback.is_playing()


def test_rewind_and_step_back_are_separate_controls(qtbot, panel):
    panel.playback.scrubber.setValue(10)
    click(qtbot, panel.playback.back_button)
    assert panel.playback.index() == 9 and panel.playback.label.text() == "step 10 of 50, t = 801"
    np.testing.assert_array_equal(shown(panel, "x0"), recorded(panel, 9, "x0"))
    click(qtbot, panel.playback.rewind_button)
    assert panel.playback.index() == 0 and panel.playback.label.text() == "step 1 of 50, t = 981"
    np.testing.assert_array_equal(shown(panel), recorded(panel, 0))
    assert not panel.playback.back_button.isEnabled() and not panel.playback.rewind_button.isEnabled()
    # Rewinding while playing goes on playing from the start.
    panel.playback.set_speed(5)
    panel.playback.scrubber.setValue(30)
    click(qtbot, panel.playback.play_button)
    click(qtbot, panel.playback.rewind_button)
    assert panel.playback.index() == 0 and panel.playback.is_playing()
    qtbot.waitUntil(lambda: panel.playback.index() >= 1, timeout=5000)
    # Keys: Home rewinds, Left steps back.
    panel.playback.pause()
    panel.playback.scrubber.setValue(20)
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.playback.index() == 19
    qtbot.keyClick(panel, Qt.Key.Key_Home)
    assert panel.playback.index() == 0


def test_scrub_step_play_and_pause(qtbot, panel):
    panel.playback.scrubber.setValue(10)
    assert panel.playback.label.text() == "step 11 of 50, t = 781"
    assert panel.schedule_plot.t() == 781
    qtbot.waitUntil(lambda: panel.schedule_plot.marker.value() == 781, timeout=1000)
    for key in ops.VIEWS:
        np.testing.assert_array_equal(shown(panel, key), recorded(panel, 10, key))
    click(qtbot, panel.playback.forward_button)
    assert panel.playback.index() == 11
    panel.playback.set_speed(200)
    click(qtbot, panel.playback.play_button)
    assert panel.playback.is_playing()
    qtbot.waitUntil(lambda: panel.playback.index() >= 20, timeout=5000)
    click(qtbot, panel.playback.play_button)
    assert not panel.playback.is_playing()
    stopped = panel.playback.index()
    qtbot.wait(100)
    assert panel.playback.index() == stopped
    np.testing.assert_array_equal(shown(panel, "x0"), recorded(panel, stopped, "x0"))


def test_settings_widgets_write_the_state_and_the_request(qtbot, panel):
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    panel.variance.setCurrentIndex(panel.variance.findData("fixed_large"))
    panel.seed.setValue(7)
    panel.batch.setValue(3)
    panel.steps.setValue(40)
    s = panel.state
    assert (s.sampler, s.variance, s.seed, s.batch, s.steps) == ("ddpm", "fixed_large", 7, 3, 40)
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    assert s.steps == 40 and panel.eta.isEnabled() and not panel.variance.isEnabled()  # 40 is not a default
    panel.eta.setValue(0.5)
    req = panel.request()
    assert (req.sampler, req.steps, req.eta, req.seed, req.batch) == ("ddim", 40, 0.5, 7, 3)
    click(qtbot, panel.sample_button)
    assert s.recorded_with == s.settings() and not panel.sample_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert s.count() == 41 and panel.sample_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_spacing_and_clipped_noise_reach_the_sampler(qtbot, panel):
    leading = list(panel.state.trajectory)  # the state refills its own list
    assert leading[0].t == 981  # leading spacing, 50 steps: 980 .. 0 in model time
    panel.spacing.setCurrentIndex(panel.spacing.findData("trailing"))
    qtbot.mouseClick(panel.clipped_eps, Qt.MouseButton.LeftButton)
    s = panel.state
    assert (s.spacing, s.clipped_eps) == ("trailing", True)
    req = panel.request()
    assert (req.spacing, req.use_clipped_model_output) == ("trailing", True)
    click(qtbot, panel.sample_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert s.recorded_with.spacing == "trailing" and s.recorded_with.clipped_eps
    assert s.trajectory[0].t == 1000 and s.count() == 51  # trailing starts at the pure-noise end
    assert not np.array_equal(s.trajectory[-1].images["x_t"], leading[-1].images["x_t"])
    panel.playback.scrubber.setValue(10)  # trailing: t = 800 -> 780
    qtbot.waitUntil(lambda: explained(panel.explain, "DDIM jumps to t′ = 780"), timeout=5000)
    assert explained(panel.explain, "so the two terms agree where clipping cut")
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    assert not panel.clipped_eps.isEnabled() and panel.spacing.isEnabled()  # DDPM has no ε to swap


def test_a_fine_tune_counts_its_source_steps_in_the_model_line():
    from studio.families.diffusion.ui.panel import trained_steps

    assert trained_steps({"step": 9001}) == "9001"
    assert trained_steps({"step": 4000, "extra": {"init": {"path": "unet.safetensors", "step": 9001}}}) == "9001 + 4000"
    assert trained_steps({"step": 12, "extra": {"init": "not a record"}}) == "12"


def test_first_image_is_the_finished_sample(qtbot, tiny):
    # --screenshot saves the window at the panel's first image: that must be the finished sample.
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["diffusion"] = tiny
    p = DiffusionPanel(ctx)
    qtbot.addWidget(p)
    seen = []
    p.rendered.connect(lambda r: seen.append((r.final, p.has_first_image())))
    at_first = []
    p.firstImage.connect(lambda: at_first.append((p.state.frame().label(), p.views["x_t"].image().copy())))
    p.resize(1200, 800)
    p.show()
    qtbot.waitUntil(p.has_first_image, timeout=WAIT)
    assert seen and not any(first for final, first in seen if not final)  # never during the run
    assert len(at_first) == 1 and at_first[0][0] == "done: 50 steps, t = 0"
    np.testing.assert_array_equal(at_first[0][1], p.last_result.payload.final)
    ctx.bridge.shutdown()


def test_a_long_run_reaches_the_gui_in_few_deliveries_and_paints(qtbot, panel):
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    assert panel.steps.value() == 1000
    deliveries, paints = [], []
    panel.rendered.connect(deliveries.append)
    panel.views["x_t"].painted.connect(paints.append)
    click(qtbot, panel.sample_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert panel.state.count() == 1001 and [f.k for f in panel.state.trajectory] == list(range(1001))
    # Every step recorded, but delivered (and drawn) at most ~30 times a second, not 1000 times.
    assert len(deliveries) < 500 and len(paints) <= len(deliveries)


def test_labels_do_not_move_the_pictures(qtbot, panel):
    def geometry():
        cells = [panel.cells[k] for k in ops.VIEWS] + [panel.forward_box.source_cell, panel.schedule_plot]
        return [(w.mapTo(panel, w.rect().topLeft()), w.size()) for w in cells] + \
               [(v.mapTo(panel, v.rect().topLeft()), v.size()) for v in panel.views.values()]

    qtbot.wait(50)
    before = geometry()
    long = "a much longer label than any step label, " * 4
    for label in (panel.playback.label, panel.run_info, panel.info, panel.forward_box.info):
        label.setText(long)
        qtbot.wait(20)
        assert geometry() == before, label
        label.setText("x")
        qtbot.wait(20)
        assert geometry() == before, label
    panel.playback.scrubber.setValue(3)  # "step 4 of 50, t = 921": another length, another explanation
    qtbot.wait(50)
    assert geometry() == before
    assert panel.playback.label.toolTip() == "step 4 of 50, t = 921"


def test_pictures_fill_their_boxes_at_a_whole_zoom_and_carry_titles(qtbot, panel):
    views = list(panel.cells.values()) + [panel.forward_box.source_cell, panel.forward_box.noised_cell]
    for cell in views:
        view = cell.view
        w, h = view.native_size()
        zoom = view.zoom()
        assert zoom >= 3 and view.size().width() == w * zoom and view.size().height() == h * zoom
        rect = view.image_rect()
        assert (rect.x(), rect.y(), rect.width(), rect.height()) == (0, 0, w * zoom, h * zoom)  # no letterbox
        assert cell.title.text() and cell.title.geometry().bottom() < view.geometry().top()
    assert panel.schedule_plot.plotItem.titleLabel.text
    # Four samples: a 2x2 grid (59 px) gets its own whole zoom.
    panel.batch.setValue(4)
    click(qtbot, panel.sample_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    view = panel.views["x_t"]
    assert view.native_size() == (59, 59) and view.width() == 59 * view.zoom()


def explained(pane, needle: str) -> bool:
    return needle in pane.text.text()


def drawn(pane) -> bool:
    """The pane shows exactly its newest equations, as pictures."""
    return pane.drawn_equations() == pane.equations() and all(
        not label.pixmap().isNull() for label in pane.equation_labels[:len(pane.equations())])


def test_explain_pane_shows_the_numbers_of_the_step_shown(qtbot, panel):
    pane = panel.explain  # the shared Explain pane, in its own column beside the schedule plot
    assert panel.view.explain_scroll.widget() is pane and pane.isVisible()
    panel.playback.scrubber.setValue(10)  # t = 781 -> 761
    qtbot.waitUntil(lambda: explained(pane, "At t = 781"), timeout=5000)  # once the picture is painted
    equations = pane.equations()
    assert equations[1].startswith("x_{781} = ") and any(e.startswith("x_{761} = ") for e in equations)
    assert explained(pane, "DDIM jumps to t′ = 761") and "step 11 of 50, t = 781" in pane.header.text()
    assert explained(pane, "flat grey") and explained(pane, "crosses the dashed line SNR = 1")
    qtbot.waitUntil(lambda: drawn(pane), timeout=30_000)  # rendered as images
    at_781 = pane.equations()
    panel.playback.scrubber.setValue(20)  # another t: other numbers
    qtbot.waitUntil(lambda: explained(pane, "At t = 581"), timeout=5000)
    assert pane.equations()[1].startswith("x_{581} = ") and pane.equations()[1] != at_781[1]
    assert not explained(pane, "At t = 781")
    qtbot.waitUntil(lambda: drawn(pane), timeout=30_000)
    # Folded, it keeps the newest numbers and draws them when unfolded.
    qtbot.mouseClick(pane.header, Qt.MouseButton.LeftButton)
    assert not pane.is_expanded() and not pane.content.isVisible()
    panel.playback.scrubber.setValue(30)  # t = 381
    qtbot.waitUntil(lambda: pane.equations()[1].startswith("x_{381} = "), timeout=5000)
    qtbot.wait(200)
    assert pane.drawn_equations()[1].startswith("x_{581} = ")  # nothing drawn while folded
    qtbot.mouseClick(pane.header, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: drawn(pane), timeout=30_000)
    # Playing follows the steps, and the pane explains where it stopped.
    panel.playback.set_speed(1000)
    click(qtbot, panel.playback.play_button)
    qtbot.waitUntil(lambda: not panel.playback.is_playing(), timeout=10000)
    assert panel.playback.index() == 50 and explained(pane, "The sample is finished")
    assert explained(pane, "No step is left")
    # DDPM: the posterior mean's coefficients and sigma_t.
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    panel.steps.setValue(20)
    click(qtbot, panel.sample_button)
    assert pane.header.text().startswith("Explain: sampling with DDPM, 20 steps")  # while the model runs
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    panel.playback.scrubber.setValue(5)  # t = 701 -> 651
    qtbot.waitUntil(lambda: explained(pane, "DDPM steps to t′ = 651"), timeout=5000)
    assert any(e.startswith("x_{651} = ") and r"\,x_{701}" in e for e in pane.equations())
    assert not explained(pane, "flat grey")


def test_same_seed_same_trajectory_and_new_settings(qtbot, panel):
    first = [recorded(panel, i) for i in range(panel.state.count())]
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    assert panel.steps.value() == 1000 and not panel.eta.isEnabled()
    panel.steps.setValue(20)
    panel.batch.setValue(4)
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert panel.state.count() == 21 and recorded(panel, 0, "x0").shape == (59, 59)  # 2x2 grid
    ddpm = [recorded(panel, i) for i in range(panel.state.count())]
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    for i, a in enumerate(ddpm):
        np.testing.assert_array_equal(a, recorded(panel, i))
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    panel.steps.setValue(50)
    panel.batch.setValue(1)
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    for i, a in enumerate(first):
        np.testing.assert_array_equal(a, recorded(panel, i))


def test_cancel_stops_at_a_step_boundary(qtbot, panel):
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    panel.steps.setValue(1000)
    qtbot.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
    assert panel.running and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.state.count() >= 5, timeout=WAIT)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.running and panel.sample_button.isEnabled()
    qtbot.waitUntil(panel.bridge.renderer.idle, timeout=WAIT)
    qtbot.wait(50)
    n = panel.state.count()
    assert 5 <= n < 1000 and panel.playback.count() == n and not panel.state.finished()
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
    assert panel.schedule_plot.t() == 500
    qtbot.waitUntil(lambda: panel.schedule_plot.marker.value() == 500, timeout=1000)
    qtbot.mouseClick(panel.forward_box.denoise, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
    assert panel.state.trajectory[0].t == 500 and panel.state.count() == 25 + 1
    np.testing.assert_array_equal(recorded(panel, 0)[1:29, 1:29], noised)


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
