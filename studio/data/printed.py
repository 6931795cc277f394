"""Printed digits: a second digit domain made offline, for unpaired translation (CycleGAN).

Each digit is drawn with Pillow's built-in scalable font (``ImageFont.load_default(size=...)``,
part of every ``pip install pillow``; never a system font path), at four times the final
resolution, with a random size, stroke weight, width, slant, rotation, position and ink brightness,
then reduced to a grey 28x28 picture shaped like an MNIST digit (light ink on black, about 20
pixels tall, centred) and padded to 32x32 like the other digit families.

Digit ``i`` of a set depends only on (seed, i): any slice renders the same pixels whether it
is drawn alone or with the rest, so a dataset can render lazily, batch by batch.

The domain is that one typeface. ``typeface=`` draws the same digits (labels, sizes, poses, ink)
in another face a fresh install provides (matplotlib's fonts): the evaluation uses them to show how
far apart typefaces sit in the classifier's feature space, the scale a translation's FID is read on.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DIGIT = 28  # the MNIST size the digit is drawn at
SIZE = 32  # padded, as the other digit families take digits
SUPERSAMPLE = 4  # drawn at 4x, then reduced: antialiased strokes like MNIST's
_FONT_PX = 96  # the size glyphs are drawn at before they are scaled to their random height

# Ranges of the random draws (pixels at the 28x28 scale).
HEIGHT_PX = (16.0, 21.0)  # MNIST digits are at most 20 tall in their 20x20 box
WIDTH_SCALE = (0.8, 1.2)  # condensed to expanded
STROKE_PX = (0, 2)  # extra outline at the 96-px drawing: regular to bold (more fills the 6's and 9's loops)
SLANT = (-0.1, 0.3)  # horizontal shear per unit of height: upright to italic (as most handwriting leans)
ROTATION_DEG = 10.0
SHIFT_PX = 1.5
INK = (0.6, 1.0)  # brightest ink level (the background stays black)


DOMAIN_TYPEFACE = "aileron"
# Typeface name -> font file among matplotlib's ("": Pillow's built-in Aileron, the domain's own face).
TYPEFACES = {
    DOMAIN_TYPEFACE: "",
    "dejavu-sans": "DejaVuSans.ttf",
    "dejavu-serif": "DejaVuSerif.ttf",
    "stix": "STIXGeneral.ttf",
    "computer-modern-sans": "cmss10.ttf",
}


def check_typeface(typeface: str) -> None:
    if typeface not in TYPEFACES:
        raise ValueError(f"unknown typeface '{typeface}' (choose {', '.join(TYPEFACES)})")


@lru_cache(maxsize=8)
def _font(size: int, typeface: str = DOMAIN_TYPEFACE):
    from PIL import ImageFont

    check_typeface(typeface)
    if not TYPEFACES[typeface]:
        return ImageFont.load_default(size=size)
    import matplotlib  # a dependency already (the Explain panes' equations); its fonts come with it

    return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/{TYPEFACES[typeface]}", size)


def digit_seed(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), 0x9D1])


def _draw(text: str, stroke: int, typeface: str = DOMAIN_TYPEFACE):
    from PIL import Image, ImageDraw

    image = Image.new("L", (2 * _FONT_PX, 2 * _FONT_PX), 0)
    ImageDraw.Draw(image).text((_FONT_PX, _FONT_PX), text, font=_font(_FONT_PX, typeface), fill=255, anchor="mm",
                               stroke_width=stroke, stroke_fill=255)
    return image


@lru_cache(maxsize=3 * 10 * len(TYPEFACES))
def _glyph(label: int, stroke: int, typeface: str = DOMAIN_TYPEFACE):
    """The digit's shape at the 96-px drawing, white on black (a fresh copy is made by every transform).

    Three forms differ from the font's own, as they do between typefaces: the project's classifier,
    trained on handwriting, reads Aileron's curled 6 and 9 as 8s and 0s and its flagged 1 as a 7, so
    the 6 gets a tall straight stem on the font's bowl (as DIN-like faces and most hands draw it),
    the 9 is that 6 turned half a turn (as type designers make it), and the 1's flag is a short stub.
    Another typeface is drawn as its font has it.
    """
    from PIL import Image, ImageDraw

    if typeface != DOMAIN_TYPEFACE:
        return _draw(str(label), stroke, typeface)
    one = _draw("1", stroke)
    left, top, right, bottom = one.getbbox()
    stem = int((np.asarray(one)[(top + bottom) // 2] > 127).sum())  # the font's vertical stroke width
    if label == 1:
        pixels = np.asarray(one).copy()
        pixels[:, : int(right - stem - 0.5 * stem)] = 0  # keep half a stem's width of the flag
        return Image.fromarray(pixels)
    if label in (6, 9):
        six = _draw("6", stroke)
        left, top, right, bottom = six.getbbox()
        height = bottom - top
        pixels = np.asarray(six).copy()
        cut = top + int(0.4 * height)
        pixels[:cut] = 0  # the bowl only
        start = int(np.flatnonzero(pixels[cut + 1] > 127)[0])
        glyph = Image.fromarray(pixels)
        ImageDraw.Draw(glyph).line([(start + stem / 2, cut + stem / 2),
                                    (left + 0.9 * (right - left) - stem / 2, top - 0.2 * height + stem / 2)],
                                   fill=255, width=stem)
        return glyph.rotate(180) if label == 9 else glyph
    return _draw(str(label), stroke)


def render_digit(label: int, rng: np.random.Generator, typeface: str = DOMAIN_TYPEFACE) -> np.ndarray:
    """One printed digit as float32 (28, 28) in [0, 1], light on black."""
    from PIL import Image

    if not 0 <= int(label) <= 9:
        raise ValueError(f"a digit is 0..9, not {label}")
    check_typeface(typeface)
    height = rng.uniform(*HEIGHT_PX)
    width_scale = rng.uniform(*WIDTH_SCALE)
    stroke = int(rng.integers(STROKE_PX[0], STROKE_PX[1] + 1))
    slant = rng.uniform(*SLANT)
    angle = rng.uniform(-ROTATION_DEG, ROTATION_DEG)
    shift = rng.uniform(-SHIFT_PX, SHIFT_PX, 2)
    ink = rng.uniform(*INK)

    glyph = _glyph(int(label), stroke, typeface)
    # Italic: each row shifted right in proportion to its height above the centre.
    glyph = glyph.transform(glyph.size, Image.Transform.AFFINE, (1, slant, -slant * _FONT_PX, 0, 1, 0),
                            resample=Image.Resampling.BICUBIC)
    glyph = glyph.crop(glyph.getbbox())
    w, h = glyph.size
    s = SUPERSAMPLE
    target_h = max(4, round(height * s))
    target_w = max(2, round(w * target_h / h * width_scale))
    glyph = glyph.resize((target_w, target_h), Image.Resampling.LANCZOS)
    glyph = glyph.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    pad = max(glyph.size)  # room for any shift: pasted off-canvas parts would be lost, not clipped
    canvas = Image.new("L", (DIGIT * s + 2 * pad, DIGIT * s + 2 * pad), 0)
    # Centred by the ink's centre of mass, as MNIST's digits are, then jittered.
    arr = np.asarray(glyph, dtype=np.float32)
    total = float(arr.sum()) or 1.0
    cy = float((arr.sum(axis=1) * np.arange(arr.shape[0])).sum()) / total
    cx = float((arr.sum(axis=0) * np.arange(arr.shape[1])).sum()) / total
    x = round(pad + DIGIT * s / 2 - cx + shift[0] * s)
    y = round(pad + DIGIT * s / 2 - cy + shift[1] * s)
    canvas.paste(glyph, (x, y))
    canvas = canvas.crop((pad, pad, pad + DIGIT * s, pad + DIGIT * s)).reduce(s)
    return np.asarray(canvas, dtype=np.float32) / 255.0 * np.float32(ink)


def digit_labels(seed: int, start: int, count: int) -> np.ndarray:
    """The labels of digits ``start .. start + count``: balanced, each block of 10 a shuffle of 0-9."""
    out = np.empty(count, np.int64)
    for block in range(start // 10, (start + count + 9) // 10):
        perm = np.random.default_rng([int(seed) & 0xFFFFFFFF, block, 0x1AB]).permutation(10)
        for j in range(10):
            i = block * 10 + j
            if start <= i < start + count:
                out[i - start] = perm[j]
    return out


def render_printed(seed: int, start: int, count: int, size: int = SIZE,
                   typeface: str = DOMAIN_TYPEFACE) -> tuple[np.ndarray, np.ndarray]:
    """Printed digits ``start .. start + count`` of set ``seed``: float32 (count, 1, size, size), labels.

    Another ``typeface`` draws the same digits (labels, sizes, poses, ink) in that face."""
    if size < DIGIT:
        raise ValueError(f"printed digits are {DIGIT}x{DIGIT}; {size} is too small")
    labels = digit_labels(seed, start, count)
    images = np.zeros((count, 1, size, size), np.float32)
    m = (size - DIGIT) // 2
    for k, label in enumerate(labels):
        images[k, 0, m: m + DIGIT, m: m + DIGIT] = render_digit(int(label), digit_seed(seed, start + k), typeface)
    return images, labels
