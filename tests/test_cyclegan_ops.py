"""CycleGAN ops: translating dropped pictures both ways, readings, fitting and tiling, folders."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest


from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.cyclegan import tiling
from studio.families.cyclegan.ops import (
    CycleTranslate, CycleTranslateFolder, collect_inputs, register, translate, translate_arrays, translate_folder,
)


def png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def drawn_digit(size=(120, 90), ink=0, paper=255):
    """A dark digit on light paper, as a person draws or scans one."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, paper)
    ImageDraw.Draw(image).text((size[0] // 2, size[1] // 2), "7", font=ImageFont.load_default(size=60),
                               fill=ink, anchor="mm")
    return image


@pytest.fixture(scope="module")
def pool():
    return RuntimePool()


def test_a_drawn_digit_translates_with_readings_and_a_round_trip(pool, cyclegan_path):  # noqa: F811
    out = translate(pool, CycleTranslate(Target(str(cyclegan_path), "onnx", "cpu"), (png_bytes(drawn_digit()),),
                                         "AtoB", names=("my seven",)))
    result = out.payload
    assert out.backend == "onnx" and result.backend == "onnx" and result.direction == "AtoB"
    (item,) = result.images
    assert item.name == "my seven"
    assert item.input.shape == item.translation.shape == item.reconstruction.shape == (32, 32)
    assert item.input.dtype == np.uint8
    # Framed as MNIST: light ink on black, the ink inside the middle 20x20 box.
    assert item.fitting.mode == "digit" and item.fitting.inverted
    assert "inverted" in item.fitting.description and "120x90" in item.fitting.description
    assert item.input[0].max() == 0 and item.input.max() > 200
    assert item.readings.input.label == 7 and 0.5 < item.readings.input.confidence <= 1.0
    for reading in (item.readings.translation, item.readings.reconstruction):
        assert 0 <= reading.label <= 9 and 0.0 < reading.confidence <= 1.0
    assert item.cycle_l1 == pytest.approx(np.abs(item.reconstruction / 255.0 - item.input / 255.0).mean(), abs=0.01)
    assert out.image.shape == (32, 3 * 32 + 4)  # input | translation | reconstruction
    assert result.model_ms > 0


def test_both_directions_use_their_own_generator(pool, cyclegan_path):  # noqa: F811
    target = Target(str(cyclegan_path), "onnx", "cpu")
    src = (png_bytes(drawn_digit()),)
    ab = translate(pool, CycleTranslate(target, src, "AtoB")).payload.images[0]
    ba = translate(pool, CycleTranslate(target, src, "BtoA")).payload.images[0]
    np.testing.assert_array_equal(ab.input, ba.input)
    assert np.abs(ab.translation.astype(int) - ba.translation.astype(int)).mean() > 1
    # The reconstruction is the other generator applied to the translation.
    runtime = pool.get(cyclegan_path)
    x = ab.input[None, None].astype(np.float32) / 255.0
    fake, rec = translate_arrays(runtime, x, "AtoB", "onnx", "cpu")
    # (from the uint8 input, which rounds the float one: a few grey levels apart at most)
    assert np.abs(fake[0, 0] * 255 - ab.translation).mean() < 0.5 and np.abs(fake[0, 0] * 255 - ab.translation).max() < 4
    assert np.abs(rec[0, 0] * 255 - ab.reconstruction).mean() < 2


def test_bad_sources_are_listed_and_the_rest_translate(pool, cyclegan_path, tmp_path):  # noqa: F811
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    good = tmp_path / "seven.png"
    drawn_digit().save(good)
    sources = (str(tmp_path / "notes.txt"), str(good), str(tmp_path / "empty.png"), str(tmp_path), b"<svg></svg>")
    result = translate(pool, CycleTranslate(Target(str(cyclegan_path), "onnx", "cpu"), sources)).payload
    assert [i.name for i in result.images] == [str(good)]
    reasons = dict(result.failed)
    assert "not an image file" in reasons[str(tmp_path / "notes.txt")]
    assert "empty file" in reasons[str(tmp_path / "empty.png")]
    assert "is a folder" in reasons[str(tmp_path)]
    assert reasons["image 5"].startswith("image 5: an SVG drawing")  # named, not "<clipboard>"
    assert all("\n" not in r for r in reasons.values())


def test_nothing_loading_is_one_line_error(pool, cyclegan_path, tmp_path):  # noqa: F811
    from studio.data.images import ImageLoadError

    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.txt").write_text("y")
    req = CycleTranslate(Target(str(cyclegan_path), "onnx", "cpu"), (str(tmp_path / "a.txt"), str(tmp_path / "b.txt")))
    with pytest.raises(ImageLoadError, match=r"a\.txt: not an image file Pillow can read \(and 1 more\)"):
        translate(pool, req)
    with pytest.raises(ValueError, match="unknown direction 'AB'"):
        translate(pool, CycleTranslate(Target(str(cyclegan_path)), (b"x",), "AB"))


def test_tiling_translates_the_whole_picture_and_says_so(pool, cyclegan_path):  # noqa: F811
    src = png_bytes(drawn_digit((100, 70)))
    result = translate(pool, CycleTranslate(Target(str(cyclegan_path), "onnx", "cpu"), (src,), fit="tile",
                                            overlap=8)).payload
    (item,) = result.images
    grid = tiling.tile_grid(70, 100, 32, 8)
    assert item.translation.shape == item.reconstruction.shape == (70, 100)
    assert item.fitting.mode == "tile" and item.fitting.tiles == grid.count == 12
    assert item.fitting.description == "100x70: 12 tiles of 32x32 (overlap 8), blended; inverted (dark ink on light)"
    # A picture smaller than one tile is centred on its border colour, not enlarged.
    small = translate(pool, CycleTranslate(Target(str(cyclegan_path), "onnx", "cpu"),
                                           (png_bytes(drawn_digit((20, 24))),), fit="tile")).payload.images[0]
    assert small.translation.shape == (32, 32) and small.fitting.tiles == 1


def test_tiles_blend_back_to_the_picture_without_seams():
    rng = np.random.default_rng(0)
    image = rng.random((3, 70, 101)).astype(np.float32)
    for overlap in (0, 8, 20):
        grid = tiling.tile_grid(70, 101, 32, overlap)
        tiles = tiling.split(image, grid)
        assert tiles.shape == (grid.count, 3, 32, 32)
        np.testing.assert_allclose(tiling.blend(tiles, grid), image, atol=1e-5)
    # Tiles that disagree meet in a gradual blend, not a step.
    grid = tiling.tile_grid(32, 56, 32, 8)
    out = tiling.blend(np.stack([np.zeros((1, 32, 32)), np.ones((1, 32, 32))]).astype(np.float32), grid)
    row = out[0, 16]
    assert row[0] == 0 and row[-1] == 1 and np.all(np.diff(row) >= 0) and np.diff(row).max() < 0.2
    with pytest.raises(ValueError, match="overlap must be in"):
        tiling.tile_grid(64, 64, 32, 32)


def test_colour_models_fit_pictures_and_read_no_digits(pool, cyclegan_rgb_path):  # noqa: F811
    from PIL import Image

    photo = Image.new("RGB", (90, 45), (200, 30, 30))
    for fit, expect in (("pad", "90x45 scaled and padded to 32x32"), ("crop", "90x45 scaled and centre-cropped"),
                        ("stretch", "90x45 stretched to 32x32")):
        item = translate(pool, CycleTranslate(Target(str(cyclegan_rgb_path), "torch", "cpu"), (png_bytes(photo),),
                                              fit=fit)).payload.images[0]
        assert item.input.shape == (32, 32, 3) and item.readings is None
        assert item.fitting.description.startswith(expect)


def test_a_folder_translates_into_pngs_and_lists_its_bad_files(pool, cyclegan_path, tmp_path):  # noqa: F811
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    drawn_digit().save(src / "a.png")
    drawn_digit().convert("RGB").save(src / "a.jpg")  # same stem: both must survive
    drawn_digit().save(src / "sub" / "b.gif")
    (src / "broken.png").write_bytes(png_bytes(drawn_digit())[:60])  # truncated
    (src / "readme.txt").write_text("hello")
    (src / ".hidden.png").write_bytes(b"")
    out = src / "out"  # inside the input: earlier outputs must not become inputs
    out.mkdir()
    drawn_digit().save(out / "old.png")
    reports = list(translate_folder(pool, Target(str(cyclegan_path), "onnx", "cpu"), [src], out, "BtoA",
                                    batch_size=2, save_reconstruction=True))
    last = reports[-1]
    assert last.finished and last.done == last.total == 5 and len(reports) == 3
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    # a.png keeps its name; a.jpg, whose name it would take, keeps its suffix in its own.
    assert written == ["a.cycle.png", "a.jpg.cycle.png", "a.jpg.png", "a.png", "old.png",
                       "sub/b.cycle.png", "sub/b.png"]
    failed = dict(last.failed)
    assert set(failed) == {str(src / "broken.png"), str(src / "readme.txt")}
    assert "truncated or corrupt" in failed[str(src / "broken.png")]
    assert last.images_per_s > 0
    from PIL import Image

    assert Image.open(out / "a.png").size == (32, 32)


def test_collect_inputs_names_what_is_missing(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    files, missing = collect_inputs([tmp_path / "x.png", tmp_path / "nope"])
    assert [f.name for f, _ in files] == ["x.png"]
    assert missing == [(str(tmp_path / "nope"), "no such file or folder")]


def test_folder_translation_runs_on_the_renderer_and_stops_when_cancelled(cyclegan_path, tmp_path):  # noqa: F811
    from studio.engine.renderer import Renderer

    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        drawn_digit().save(src / f"{i}.png")
    results, done = [], threading.Event()

    def deliver(result):
        results.append(result)
        if result.error or result.final:
            done.set()

    renderer = Renderer(deliver)
    register(renderer, RuntimePool())
    try:
        renderer.submit("cyclegan.folder", CycleTranslateFolder(Target(str(cyclegan_path), "onnx", "cpu"),
                                                                (str(src),), str(tmp_path / "out"), batch_size=2))
        assert done.wait(60), "no final result"
        assert results[-1].error is None
        progress = [r.payload for r in results]
        assert [p.done for p in progress] == [2, 4, 6] and progress[-1].finished
        assert len(list((tmp_path / "out").glob("*.png"))) == 6
    finally:
        renderer.shutdown()
