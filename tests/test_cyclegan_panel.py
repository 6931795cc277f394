"""The CycleGAN panel driven as a person would: real drops (QDropEvent with QMimeData), clicks, Ctrl+V."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog

from conftest import REPO, images_differ
from cyclegan_fixtures import make_cyclegan_checkpoint
from studio.families.cyclegan.ui.panel import NO_CHECKPOINT, CycleGanPanel
from studio.ui import theme
from studio.ui.context import AppContext
from studio.ui.widgets.image_view import to_qimage

WAIT = 30000


def digit_png(path, label: int = 7, size=(28, 28), dark_on_light=False):
    """A printed digit as a PNG file (light ink on black, or a drawing's dark ink on white)."""
    from studio.data.printed import render_digit

    pixels = (render_digit(label, np.random.default_rng(label)) * 255).astype(np.uint8)
    image = Image.fromarray(255 - pixels if dark_on_light else pixels).resize(size)
    image.save(path)
    return path


@pytest.fixture
def panel(qtbot, cyclegan_path):  # noqa: F811
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["cyclegan"] = str(cyclegan_path)
    p = CycleGanPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1180, 760)
    p.show()
    qtbot.waitUntil(p.has_first_image, timeout=WAIT)
    yield p
    ctx.bridge.shutdown()


def send_drop(widget, mime) -> QDropEvent:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), mime.formats()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop


def drop_files(widget, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    send_drop(widget, mime)


def translated(qtbot, panel):
    """Wait for the panel's next translation result (errors included)."""
    return qtbot.waitSignal(panel.rendered, timeout=WAIT, check_params_cb=lambda r: r.channel == "cyclegan.translate")


def test_opens_with_a_sample_digit_translated_both_ways_labelled(panel):
    state = panel.state
    assert panel.toggle.buttons["AtoB"].text() == "handwritten → printed"
    assert panel.toggle.buttons["BtoA"].text() == "printed → handwritten"
    assert panel.toggle.buttons["AtoB"].isChecked()
    image = state.current()
    assert image is not None and state.sample
    for view, pixels in zip(panel.views.views(), (image.input, image.translation, image.reconstruction)):
        assert view.image() is pixels
    assert panel.views.input.title() == "input: handwritten"
    assert panel.views.translation.title().startswith("translation: printed")
    assert panel.views.reconstruction.title().startswith("round trip: handwritten again")
    for view in panel.views.views():  # the classifier's reading under each picture
        assert view.caption().startswith("classifier reads ") and "%" in view.caption()
    assert f"cycle L1 {image.cycle_l1:.3f}" in panel.views.metrics.text()
    assert f"translation L1 {image.translation_l1:.3f}" in panel.views.metrics.text()
    assert "fitted: " in panel.views.fitting.text()
    assert "onnx on cpu" in panel.status.text() and " ms" in panel.status.text()


def test_dropping_one_file_translates_it(qtbot, panel, tmp_path):
    path = digit_png(tmp_path / "seven.png", 7, size=(90, 120), dark_on_light=True)
    before = panel.views.translation.image()
    with translated(qtbot, panel) as got:
        drop_files(panel, [path])
    result = got.args[0]
    assert result.error is None and result.request.sources == (str(path),)
    image = panel.state.current()
    assert image.name == "seven.png" and not panel.state.sample
    assert panel.views.input.image() is image.input and panel.views.translation.image() is image.translation
    assert images_differ(before, image.translation)
    assert "120" in image.fitting.description and "inverted" in image.fitting.description
    assert "inverted" in panel.views.fitting.text()
    assert panel.pictures.count() == 1 and panel.pictures.item(0).text().startswith("seven.png")


def test_dropping_several_files_translates_them_all_and_each_can_be_shown(qtbot, panel, tmp_path):
    paths = [digit_png(tmp_path / f"d{label}.png", label) for label in (1, 4, 9)]
    with translated(qtbot, panel):
        drop_files(panel, paths)
    assert [i.name for i in panel.state.result.images] == ["d1.png", "d4.png", "d9.png"]
    assert panel.pictures.count() == 3 and panel.pictures.currentRow() == 0
    third = panel.state.result.images[2]
    rect = panel.pictures.visualItemRect(panel.pictures.item(2))
    with qtbot.waitSignal(panel.views.translation.painted, timeout=WAIT):
        qtbot.mouseClick(panel.pictures.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.views.translation.image() is third.translation and panel.views.input.image() is third.input


def test_dropping_image_data_without_a_url_translates_it(qtbot, panel):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    mime = QMimeData()
    mime.setImageData(to_qimage(digit))
    assert not mime.hasUrls()
    with translated(qtbot, panel) as got:
        send_drop(panel, mime)
    assert got.args[0].error is None and isinstance(got.args[0].request.sources[0], bytes)
    assert panel.state.current().name == "dropped image"
    assert panel.views.input.image().max() > 200


def test_a_browser_drop_of_png_bytes_beside_a_web_address_translates_the_bytes(qtbot, panel, tmp_path):
    data = digit_png(tmp_path / "x.png", 3).read_bytes()
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/digits/three.png")])
    mime.setData("image/png", data)  # no QImage: Qt offers it only as the browser's raw type
    with translated(qtbot, panel) as got:
        send_drop(panel, mime)
    assert got.args[0].error is None and got.args[0].request.sources == (data,)


def test_a_web_address_alone_says_the_app_downloads_nothing(panel):
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/digits/three.png")])
    send_drop(panel, mime)
    assert "https://example.com/digits/three.png: a web address" in panel.status.text()
    assert "save the picture" in panel.status.text()


def test_a_file_url_given_as_text_translates_the_file(qtbot, panel, tmp_path):
    path = digit_png(tmp_path / "as text.png", 5)
    mime = QMimeData()
    mime.setText(QUrl.fromLocalFile(str(path)).toString())
    with translated(qtbot, panel) as got:
        send_drop(panel, mime)
    assert got.args[0].request.sources == (str(path),) and panel.state.current().name == "as text.png"


def test_dropping_a_non_image_shows_a_message_and_keeps_the_pictures(qtbot, panel, tmp_path):
    before = panel.state.current()
    path = tmp_path / "shopping.txt"
    path.write_text("eggs, milk")
    with translated(qtbot, panel) as got:
        drop_files(panel, [path])
    assert got.args[0].error is not None
    text = panel.status.text()
    assert "shopping.txt" in text and "not an image" in text and "\n" not in text
    assert theme.ERROR in panel.status.styleSheet()  # in the error colour
    assert panel.state.current() is before and panel.views.translation.image() is before.translation


def odd_files(folder):
    """Good pictures in odd forms (each must translate) and bad files (each must be named with its reason)."""
    folder.mkdir()
    digit = (np.asarray(Image.open(digit_png(folder / "plain.png", 2))) > 0).astype(np.uint8) * 255
    Image.fromarray(digit).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(digit.astype(np.uint16) * 257).save(folder / "deep16.png")
    Image.fromarray(digit).convert("P").save(folder / "palette.gif")
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = digit
    Image.fromarray(rgba).save(folder / "transparent.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(digit).save(folder / "rotated.jpg", exif=exif.tobytes())
    frames = [Image.fromarray(digit), Image.fromarray(255 - digit)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    good = ["plain.png", "cmyk.jpg", "deep16.png", "palette.gif", "transparent.png", "rotated.jpg", "animated.gif"]
    Image.new("1", (9000, 9000)).save(folder / "bomb.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "zero.png").write_bytes(b"")
    (folder / "letter.docx").write_bytes(b"PK\x03\x04 not a picture at all")
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    bad = {"bomb.png": "decompression bomb", "truncated.png": "truncated or corrupt", "zero.png": "empty file",
           "letter.docx": "not an image", "drawing.svg": "SVG"}
    return good, bad


def test_odd_files_translate_or_are_named_with_their_reason(qtbot, panel, tmp_path):
    good, bad = odd_files(tmp_path / "odd")
    paths = [tmp_path / "odd" / name for name in good + list(bad)]
    with translated(qtbot, panel) as got:
        drop_files(panel, paths)
    assert got.args[0].error is None
    assert [i.name for i in panel.state.result.images] == good
    for image in panel.state.result.images:
        assert image.input.shape == (32, 32) and image.input.max() > 100, image.name  # the digit came through
    lines = panel.pictures.failed_lines()
    assert len(lines) == len(bad)
    for name, why in bad.items():
        assert any(name in line and why in line for line in lines), (name, lines)
    status = panel.status.text()
    assert f"{len(good)} translated, {len(bad)} could not be" in status and "\n" not in status


def test_a_dropped_folder_is_offered_for_folder_translation(panel, tmp_path):
    folder = tmp_path / "my digits"
    folder.mkdir()
    digit_png(folder / "a.png")
    drop_files(panel, [folder])
    assert "my digits: a folder, set as the folder to translate" in panel.status.text()
    assert panel.state.folder.source == str(folder)
    assert panel.folder_box.source_label.text() == str(folder)


def test_ctrl_v_pastes_an_image_into_the_panel(qtbot, cyclegan_path):  # noqa: F811
    from studio.ui.main_window import MainWindow

    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["cyclegan"] = str(cyclegan_path)
    window = MainWindow(ctx, ["cyclegan"], remember=False)
    qtbot.addWidget(window)
    window.show()
    panel = window.panels["cyclegan"]
    qtbot.waitUntil(panel.has_first_image, timeout=WAIT)
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 10:18] = 255
    QGuiApplication.clipboard().setImage(to_qimage(digit))
    panel.fit.setFocus()
    try:
        with translated(qtbot, panel) as got:
            qtbot.keyClick(panel.fit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        assert got.args[0].error is None
        assert panel.state.current().name == "pasted image"
    finally:
        ctx.bridge.shutdown()


def test_the_direction_toggle_translates_the_same_picture_the_other_way(qtbot, panel, tmp_path):
    path = digit_png(tmp_path / "four.png", 4)
    with translated(qtbot, panel):
        drop_files(panel, [path])
    there = panel.state.current()
    with translated(qtbot, panel) as got:
        qtbot.mouseClick(panel.toggle.buttons["BtoA"], Qt.MouseButton.LeftButton)
    request = got.args[0].request
    assert request.direction == "BtoA" and request.sources == (str(path),)
    back = panel.state.current()
    assert back.name == "four.png" and np.array_equal(back.input, there.input)
    assert images_differ(there.translation, back.translation)  # the other generator
    assert panel.views.input.title() == "input: printed"
    assert panel.views.translation.title() == "translation: handwritten  (G_BA)"
    assert panel.toggle.buttons["BtoA"].isChecked() and not panel.toggle.buttons["AtoB"].isChecked()
    assert "printed → handwritten" in panel.status.text()


def test_the_sample_follows_the_direction(qtbot, panel):
    assert panel.state.current().name.startswith("handwritten")
    with translated(qtbot, panel):
        qtbot.mouseClick(panel.toggle.buttons["BtoA"], Qt.MouseButton.LeftButton)
    assert panel.state.current().name.startswith("printed") and panel.state.sample


def test_tiling_translates_the_whole_picture_and_says_so(qtbot, panel, tmp_path):
    path = digit_png(tmp_path / "wide.png", 8, size=(100, 70))
    with translated(qtbot, panel):
        drop_files(panel, [path])
    with translated(qtbot, panel) as got:
        panel.fit.setCurrentIndex(panel.fit.findData("tile"))
    assert got.args[0].request.fit == "tile" and panel.overlap.isEnabled()
    image = panel.state.current()
    assert image.translation.shape == (70, 100)
    assert "tiles of 32x32 (overlap 8), blended" in panel.views.fitting.text()


def test_saving_the_translation_and_the_strip(qtbot, panel, tmp_path, monkeypatch):
    image = panel.state.current()
    target = tmp_path / "out.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert np.array_equal(np.asarray(Image.open(target)), image.translation)
    assert f"saved {target}" in panel.status.text()
    qtbot.mouseClick(panel.save_strip_button, Qt.MouseButton.LeftButton)
    strip = np.asarray(Image.open(target))
    assert strip.shape == (32, 3 * 32 + 4) and np.array_equal(strip[:, 34:66], image.translation)
    assert panel.save("translation", str(tmp_path / "no such folder" / "x.png")) is None
    assert "cannot save" in panel.status.text()


def test_the_explain_pane_shows_the_losses_and_this_pictures_cycle_error(qtbot, panel):
    qtbot.waitUntil(lambda: not panel._explain_stale and len(panel.explain.equations()) == 5, timeout=WAIT)
    image = panel.state.current()
    equations = panel.explain.equations()
    assert any(r"\mathcal{L}_{cyc}" in e for e in equations)
    assert any(r"\mathcal{L}_{idt}" in e for e in equations)
    assert any(r"\mathcal{L}_{GAN}" in e for e in equations)
    assert f"{image.cycle_l1:.3f}" in equations[-1] and f"{image.translation_l1:.3f}" in equations[-1]
    assert f"<b>{image.cycle_l1:.3f}</b>" in panel.explain.text.text()
    qtbot.waitUntil(lambda: panel.explain.drawn_equations() == panel.explain.equations(), timeout=60000)


def choose_folders(panel, monkeypatch, qtbot, source, output):
    answers = iter([str(source), str(output)])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: next(answers)))
    qtbot.mouseClick(panel.folder_box.source_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.folder_box.output_button, Qt.MouseButton.LeftButton)
    assert panel.folder_box.source_label.text() == str(source)
    assert panel.folder_box.output_label.text() == str(output)


def test_folder_translation_writes_the_good_files_and_lists_the_bad(qtbot, panel, tmp_path, monkeypatch):
    source = tmp_path / "mixed"
    (source / "sub").mkdir(parents=True)
    for label in (0, 1, 2):
        digit_png(source / f"d{label}.png", label)
    digit_png(source / "sub" / "d3.png", 3)
    (source / "notes.txt").write_text("not a picture")
    (source / "zero.png").write_bytes(b"")
    output = tmp_path / "translated"
    choose_folders(panel, monkeypatch, qtbot, source, output)
    panel.folder_box.save_cycle.setChecked(True)
    qtbot.mouseClick(panel.folder_box.translate_button, Qt.MouseButton.LeftButton)
    assert panel.state.folder.running and not panel.folder_box.translate_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.state.folder.running, timeout=60000)
    written = sorted(p.relative_to(output).as_posix() for p in output.rglob("*.png"))
    assert written == ["d0.cycle.png", "d0.png", "d1.cycle.png", "d1.png", "d2.cycle.png", "d2.png",
                       "sub/d3.cycle.png", "sub/d3.png"]  # the box's "also write each round trip" ticked
    assert Image.open(output / "d0.png").size == (32, 32)
    errors = [panel.folder_box.errors.item(i).text() for i in range(panel.folder_box.errors.count())]
    assert len(errors) == 2 and panel.folder_box.errors.isVisible()
    assert "notes.txt: not an image file Pillow can read" in errors  # named from the folder, once
    assert any("notes.txt" in e and "not an image" in e for e in errors)
    assert any("zero.png" in e and "empty file" in e for e in errors)
    assert panel.folder_box.progress.value() == panel.folder_box.progress.maximum() == 6
    assert "done: 4 of 6 written" in panel.folder_box.summary.text() and "2 failed" in panel.folder_box.summary.text()
    assert "2 failed" in panel.status.text()


def test_cancel_stops_a_folder_translation(qtbot, panel, tmp_path, monkeypatch):
    source = tmp_path / "many"
    source.mkdir()
    data = digit_png(tmp_path / "one.png", 6).read_bytes()
    for i in range(640):  # ten batches
        (source / f"{i:03d}.png").write_bytes(data)
    output = tmp_path / "out"
    choose_folders(panel, monkeypatch, qtbot, source, output)
    qtbot.mouseClick(panel.folder_box.translate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.state.folder.progress is not None, timeout=60000)  # the first batch is in
    qtbot.mouseClick(panel.folder_box.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.state.folder.running and panel.state.folder.cancelled
    assert panel.folder_box.translate_button.isEnabled() and not panel.folder_box.cancel_button.isEnabled()
    assert "cancelled after" in panel.folder_box.summary.text()
    seen = panel.state.folder.progress
    qtbot.wait(1500)
    assert panel.state.folder.progress is seen  # nothing more arrived
    assert len(list(output.glob("*.png"))) < 640


def test_the_folder_job_says_what_is_missing(qtbot, panel, tmp_path):
    qtbot.mouseClick(panel.folder_box.translate_button, Qt.MouseButton.LeftButton)
    assert panel.status.text() == "Choose the folder to translate first."
    panel.folder.set_source(str(tmp_path))
    panel.folder.set_output(str(tmp_path))
    qtbot.mouseClick(panel.folder_box.translate_button, Qt.MouseButton.LeftButton)
    assert "must differ from the input folder" in panel.status.text() and not panel.state.folder.running


def test_without_a_checkpoint_the_panel_says_how_to_open_one(qtbot, tmp_path, monkeypatch):
    import studio.ui.widgets.checkpoint_picker as picker

    monkeypatch.setattr(picker, "shipped", lambda family: [])
    ctx = AppContext("onnx", "cpu")
    p = CycleGanPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    try:
        assert p.status.text() == NO_CHECKPOINT and "File > Open checkpoint" in NO_CHECKPOINT
        assert p.views.translation.placeholder() == NO_CHECKPOINT
        drop_files(p, [digit_png(tmp_path / "d.png")])
        assert p.status.text() == NO_CHECKPOINT
        assert not p.sample_button.isEnabled() and not p.save_button.isEnabled()
    finally:
        ctx.bridge.shutdown()


def test_opening_another_family_is_refused_and_a_colour_model_opens(qtbot, panel, cyclegan_rgb_path, tmp_path):  # noqa: F811
    vae = REPO / "studio" / "checkpoints" / "vae_mnist_2d.safetensors"
    panel.open_checkpoint(str(vae))
    assert "vae_mnist_2d" in panel.status.text() and "not a 'cyclegan' model" in panel.status.text()
    panel.context.set_backend("torch", "cpu")  # this model has no ONNX files
    panel.open_checkpoint(str(cyclegan_rgb_path))
    assert panel.checkpoint == str(cyclegan_rgb_path) and "colour" in panel.info.text()
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(path)
    with translated(qtbot, panel):
        drop_files(panel, [path])
    image = panel.state.current()
    assert image.translation.shape == (32, 32, 3) and image.readings is None
    assert panel.views.translation.caption() == ""  # no digit readings for a colour model


def test_main_py_opens_the_panel_and_screenshots_a_translation(tmp_path, cyclegan_path):  # noqa: F811
    import os
    import subprocess
    import sys

    shot = tmp_path / "window.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "main.py", "--panel", "cyclegan", "--checkpoint", str(cyclegan_path),
                          "--screenshot", str(shot)], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "first image on screen" in out.stdout
    window = np.asarray(Image.open(shot).convert("L"))
    assert window.shape[0] > 400 and window.shape[1] > 600 and window.std() > 20


def test_an_output_folder_that_cannot_be_made_is_one_line(qtbot, panel, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    digit_png(source / "a.png")
    blocker = tmp_path / "a file"
    blocker.write_text("in the way")
    panel.folder.set_source(str(source))
    panel.folder.set_output(str(blocker / "out"))
    with qtbot.waitSignal(panel.rendered, timeout=WAIT, check_params_cb=lambda r: r.channel == "cyclegan.folder"):
        qtbot.mouseClick(panel.folder_box.translate_button, Qt.MouseButton.LeftButton)
    assert "cannot create the output folder" in panel.status.text() and "\n" not in panel.status.text()
    assert not panel.state.folder.running and panel.folder_box.translate_button.isEnabled()


def test_a_folder_job_goes_on_when_another_checkpoint_is_opened(qtbot, panel, tmp_path, cyclegan_path):  # noqa: F811
    import shutil

    source = tmp_path / "in"
    source.mkdir()
    for label in range(3):
        digit_png(source / f"{label}.png", label)
    other = tmp_path / "other.safetensors"
    shutil.copy(cyclegan_path, other)
    panel.folder.set_source(str(source))
    panel.folder.set_output(str(tmp_path / "out"))
    qtbot.mouseClick(panel.folder_box.translate_button, Qt.MouseButton.LeftButton)
    panel.context.set_backend("torch", "cpu")  # the copy has no ONNX files beside it: no export in the background
    panel.open_checkpoint(str(other))
    assert panel.checkpoint == str(other)
    qtbot.waitUntil(lambda: not panel.state.folder.running, timeout=60000)
    assert panel.state.folder.progress.finished and len(list((tmp_path / "out").glob("*.png"))) == 3


def test_the_drop_to_result_measurement_drops_real_files_and_reports(qapp, cyclegan_path):  # noqa: F811
    from studio.families.cyclegan.ui.measure import drop_to_result_ms

    figures = drop_to_result_ms(str(cyclegan_path), drops=3)  # the figure itself is the benchmark's business
    assert figures["drop_to_result_drops"] == 3
    assert 0 < figures["drop_to_result_ms"] <= figures["drop_to_result_ms_p95"]


def test_a_checkpoint_the_picker_did_not_list_opens_once(qtbot, cyclegan_path, monkeypatch):  # noqa: F811
    import studio.ui.widgets.checkpoint_picker as picker

    monkeypatch.setattr(picker, "shipped", lambda family: [])  # an empty picker: the new item becomes current
    opened = []
    original = CycleGanPanel.open_checkpoint
    monkeypatch.setattr(CycleGanPanel, "open_checkpoint", lambda self, path: (opened.append(path), original(self, path)))
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["cyclegan"] = str(cyclegan_path)
    p = CycleGanPanel(ctx)
    qtbot.addWidget(p)
    try:
        assert opened == [str(cyclegan_path)]  # not again through the picker's "chosen"
        assert p.picker.currentData() == str(cyclegan_path)
    finally:
        ctx.bridge.shutdown()


def test_a_checkpoint_whose_weights_do_not_fit_says_so_in_the_views(qtbot, panel, tmp_path):
    from studio.core.checkpoint import load_checkpoint, save_checkpoint

    broken = load_checkpoint(make_cyclegan_checkpoint(tmp_path / "src.safetensors"))
    broken.weights.pop(next(iter(broken.weights)))  # one tensor missing: it reads, but builds no model
    path = save_checkpoint(broken, tmp_path / "broken.safetensors")
    with translated(qtbot, panel) as got:
        panel.open_checkpoint(str(path))
    assert got.args[0].error is not None
    message = panel.status.text()
    assert "broken.safetensors" in message and "\n" not in message
    assert panel.views.translation.placeholder() == message and panel.views.translation.image() is None


def test_hostile_checkpoints_are_one_line_and_leave_the_panel_working(qtbot, panel, tmp_path):
    from hostile_files import hostile_checkpoints

    marker = tmp_path / "marker"
    shown = panel.state.current()
    for name, data in hostile_checkpoints(marker):
        path = tmp_path / name
        path.write_bytes(data)
        panel.open_checkpoint(str(path))
        text = panel.status.text()
        assert name in text and "\n" not in text and theme.ERROR in panel.status.styleSheet(), (name, text)
    assert not marker.exists()
    assert panel.state.current() is shown and panel.views.translation.image() is shown.translation


def test_the_semantic_loss_switch_translates_the_same_picture_with_the_partner_model(qtbot, tmp_path):
    # torch: the switch does not care which backend runs, and no ONNX export is waited for.
    with_loss = make_cyclegan_checkpoint(tmp_path / "with.safetensors", seed=3, semantic_weight=1.0,
                                         metrics={"label_kept_AtoB": 0.97, "label_kept_BtoA": 0.99})
    without = make_cyclegan_checkpoint(tmp_path / "without.safetensors", seed=4,
                                       metrics={"label_kept_AtoB": 0.55, "label_kept_BtoA": 0.6})
    ctx = AppContext("torch", "cpu")
    ctx.checkpoints["cyclegan"] = str(with_loss)
    panel = CycleGanPanel(ctx)
    qtbot.addWidget(panel)
    panel.show()
    try:
        qtbot.waitUntil(panel.has_first_image, timeout=WAIT)
        switch = panel.controls.semantic
        assert switch.isChecked()  # this model trained with the loss
        # Its partner opened (File > Open adds it to the list), then back: the one beside it is chosen.
        with translated(qtbot, panel):
            panel.open_checkpoint(str(without))
        assert not switch.isChecked() and switch.isEnabled()
        with translated(qtbot, panel):
            panel.open_checkpoint(str(with_loss))
        assert switch.isEnabled() and "without 55.0% / 60.0%" in switch.toolTip()
        before = panel.state.current()
        with translated(qtbot, panel):
            qtbot.mouseClick(switch, Qt.MouseButton.LeftButton)
        after = panel.state.current()
        assert panel.checkpoint == str(without) and not switch.isChecked()
        assert after.name == before.name and np.array_equal(after.input, before.input)  # the same picture
        assert images_differ(after.translation, before.translation)  # through the other model
        explained = panel.explain.text.text
        qtbot.waitUntil(lambda: "trained <b>without</b> the semantic loss" in explained(), timeout=WAIT)
        assert "with the semantic loss 97.0% / 99.0%, without 55.0% / 60.0%" in explained()
        with translated(qtbot, panel):
            qtbot.mouseClick(switch, Qt.MouseButton.LeftButton)
        assert panel.checkpoint == str(with_loss) and switch.isChecked()
        assert np.array_equal(panel.state.current().input, before.input)
    finally:
        ctx.bridge.shutdown()
