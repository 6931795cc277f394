"""CycleGAN on the shipped checkpoint: folder translation throughput, and a dropped digit to its
translation on screen in the real panel (the Qt part is studio.families.cyclegan.ui.measure). The
one-translation ONNX vs torch figures are the ``models`` area's ``cyclegan_digits.G_AB`` / ``.G_BA``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from studio.engine.catalog import shipped


def bench(quick: bool) -> dict:
    found = shipped("cyclegan")
    if not found:
        return {"error": "no shipped CycleGAN checkpoint"}
    out = folder_images_per_s(found[0], 200 if quick else 1000)
    from studio.families.cyclegan.ui import measure

    out.update(measure.drop_to_result_ms(str(found[0]), drops=10 if quick else 40))
    return out


def folder_images_per_s(checkpoint: Path, count: int, batch_size: int = 64) -> dict:
    """Printed digits as PNG files -> translated PNG files (A->B), batched on ONNX Runtime: decoding,
    framing, both generators (the round trip too) and writing all count."""
    from PIL import Image

    from studio.core.imaging import to_uint8
    from studio.data.printed import render_printed
    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool
    from studio.families.cyclegan.ops import translate_folder

    images, _ = render_printed(1, 0, count)
    pool = RuntimePool()
    target = Target(str(checkpoint), "onnx", "cpu")
    with tempfile.TemporaryDirectory(prefix="studio-bench-cyclegan-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(255 - to_uint8(image)).save(src / f"{i:05d}.png")  # dark on light, as scanned
        warm = Path(tmp) / "warm"
        list(translate_folder(pool, target, [src / "00000.png"], warm))  # sessions loaded before the clock
        t0 = time.perf_counter()
        last = list(translate_folder(pool, target, [src], out, "AtoB", batch_size=batch_size))[-1]
        seconds = time.perf_counter() - t0
        if last.failed:
            return {"error": f"{len(last.failed)} file(s) failed, e.g. {last.failed[0]}"}
    return {"folder_images_per_s": round(count / seconds, 1), "folder_images": count,
            "folder_batch_size": batch_size}
