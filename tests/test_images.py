"""The one image loader: odd modes convert correctly, bad input gets a clear message."""

import io

import numpy as np
import pytest
from PIL import Image

from studio.data.images import ImageLoadError, load_image, to_digit_input


def save(img, tmp_path, name, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = save(Image.new("CMYK", (8, 6), (0, 255, 255, 0)), tmp_path, "cmyk.jpg")  # pure red in CMYK
    rgb = load_image(path)
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.float32
    r, g, b = rgb[3, 4]
    assert r > 0.8 and g < 0.2 and b < 0.2


def test_16bit_grayscale_keeps_its_range(tmp_path):
    arr = np.full((4, 4), 65535, np.uint16)
    arr[0, 0] = 0
    path = save(Image.fromarray(arr), tmp_path, "deep.png")
    gray = load_image(path, channels=1)
    assert gray[1, 1] == pytest.approx(1.0) and gray[0, 0] == pytest.approx(0.0)


def test_palette_with_transparency_composites_on_white(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0] * 256)
    img.info["transparency"] = 0
    path = save(img, tmp_path, "pal.png", transparency=0)
    assert load_image(path).min() == pytest.approx(1.0)


def test_rgba_alpha_is_composited(tmp_path):
    img = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 0, 255))
    rgb = load_image(save(img, tmp_path, "a.png"))
    assert rgb[0, 0].max() == 0.0 and rgb[1, 1].min() == 1.0


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new("L", (20, 10), 0)  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes())
    assert load_image(path, channels=1).shape == (20, 10)  # shown tall


def test_gif_first_frame_and_resize(tmp_path):
    frames = [Image.new("L", (10, 10), 255), Image.new("L", (10, 10), 0)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = load_image(path, size=(28, 28), channels=1)
    assert out.shape == (28, 28) and out.mean() > 0.9


def test_digit_input_inverts_light_backgrounds():
    drawing = np.ones((28, 28), np.float32)
    drawing[10:18, 12:16] = 0.0  # dark stroke on white paper
    digit = to_digit_input(drawing)
    assert digit[0, 0] == 0.0 and digit[12, 13] == 1.0


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text")
    with pytest.raises(ImageLoadError, match="notes.png: not an image"):
        load_image(path)


def test_truncated_image(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


def test_decompression_bomb_is_refused(tmp_path):
    path = save(Image.new("1", (9000, 9000)), tmp_path, "bomb.png")  # 81 Mpx, a few kB on disk
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageLoadError, match="too large|bomb"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_clipboard_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (3, 3), (255, 0, 0)).save(buf, "PNG")
    assert load_image(buf.getvalue())[0, 0, 0] == 1.0


def test_large_photo_is_resized_before_conversion(tmp_path):
    img = Image.new("RGB", (6000, 4000), (250, 250, 250))
    img.paste((0, 0, 0), (2500, 1500, 3500, 2500))
    path = save(img, tmp_path, "photo.jpg", quality=70)
    digit = to_digit_input(load_image(path, size=(28, 28), channels=1))
    assert digit.shape == (28, 28)
    assert digit[14, 14] > 0.9 and digit[0, 0] < 0.1  # dark square on paper -> light on black


def test_16bit_image_resizes_in_float(tmp_path):
    arr = np.zeros((64, 64), np.uint16)
    arr[:, 32:] = 65535
    gray = load_image(save(Image.fromarray(arr), tmp_path, "deep.png"), size=(8, 8), channels=1)
    assert gray[:, :3].max() < 0.05 and gray[:, 5:].min() > 0.95


@pytest.mark.parametrize("ink, transparent, expect_background", [
    ((255, 255, 255, 255), (0, 0, 0, 0), 0.0),  # white strokes on transparent black: keep them white
    ((255, 255, 255, 255), (255, 255, 255, 0), 0.0),  # colour uniform white, alpha alone is the ink
    ((0, 0, 0, 255), (0, 0, 0, 0), 1.0),  # dark strokes: white paper, as before
])
def test_transparent_drawings_keep_their_strokes_visible(tmp_path, ink, transparent, expect_background):
    img = Image.new("RGBA", (28, 28), transparent)
    for y in range(6, 22):
        img.putpixel((14, y), ink)
    rgb = load_image(save(img, tmp_path, "stroke.png"), channels=1)
    assert rgb[0, 0] == pytest.approx(expect_background)
    assert abs(rgb[14, 14] - rgb[0, 0]) == pytest.approx(1.0)  # the stroke contrasts fully
    digit = to_digit_input(rgb)
    assert digit[14, 14] == 1.0 and digit[0, 0] == 0.0  # light ink on black, as MNIST


def test_huge_transparent_image_decides_its_background_from_a_sample(tmp_path):
    img = Image.new("LA", (3000, 2000), (255, 0))
    img.paste((255, 255), (900, 500, 1600, 1500))
    gray = load_image(save(img, tmp_path, "big.png"), size=(30, 20), channels=1)
    assert gray[0, 0] < 0.05 and gray[10, 12] > 0.95  # white ink kept, on black


def test_bomb_message_quotes_the_projects_limit(tmp_path):
    path = save(Image.new("1", (12000, 12000)), tmp_path, "bomb.png")  # 144 Mpx, beyond Pillow's 2x limit too
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert "bomb.png: 12000x12000 pixels is too large (limit 64 Mpx)" in message or \
        "bomb.png: 144 Mpx is too large (limit 64 Mpx)" in message
    assert "128" not in message and "89" not in message


def test_very_large_bomb_is_refused_with_our_limit(tmp_path):
    path = save(Image.new("1", (15000, 15000)), tmp_path, "huge.png")  # 225 Mpx: Pillow refuses in open()
    with pytest.raises(ImageLoadError, match=r"huge.png: 225 Mpx is too large \(limit 64 Mpx\)"):
        load_image(path)


@pytest.mark.parametrize("name, content, problem", [
    ("empty.png", b"", "empty.png: empty file"),
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "drawing.svg: an SVG drawing"),
    ("drawing.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG drawing"),
    ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "photo.jpg: the JPEG image is truncated or corrupt"),
    ("header.png", b"\x89PNG\r\n\x1a\n\x00\x00", "header.png: the PNG image is truncated or corrupt"),
    ("data.bmp", b"\x00\x01\x02\x03" * 20, "data.bmp: not an image file"),
])
def test_unusable_files_get_a_clear_message(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert problem in str(info.value) and "\n" not in str(info.value)
