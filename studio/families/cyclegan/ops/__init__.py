"""CycleGAN requests and their handlers: translate pictures A->B or B->A, with the round trip.

* ``CycleTranslate`` (a renderer request): a batch of pictures (files or encoded bytes) in one
  direction -> ``CycleResult``: per picture what the model saw, its translation, the cycle
  reconstruction, the round-trip error, the digit classifier's reading of all three (digit
  models) and what was done to fit it; pictures that fail to load are listed, the rest go on.
* ``CycleTranslateFolder`` (a renderer stream) and ``translate_folder`` (a plain generator, for
  the command line): files and folders -> PNG files, batched, one ``FolderProgress`` per batch,
  per-file errors collected while the others continue; stopping the iteration cancels.
* ``translate_arrays``: (N, C, H, W) arrays through both generators (evaluation, benchmarks).

Fitting (``fit``): "pad", "crop" or "stretch" make one model-sized square ("pad" and "crop"
keep the aspect); a digit model frames a digit as MNIST does (ink scaled into 20x20, centred by
mass, light on dark: a dark-on-light drawing is inverted); "tile" translates the whole picture
in overlapping model-sized tiles blended back (studio.families.cyclegan.tiling).
"""

from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.cyclegan.ops.folders import (
    CycleTranslateFolder, FolderProgress, collect_inputs, translate_folder, translate_folder_stream,
)
from studio.families.cyclegan.ops.pictures import (
    BATCH, DEFAULT_OVERLAP, FITS, CycleResult, CycleTranslate, DigitReading, Fitting, Readings, TranslatedImage,
    classifier_path, prepare, read_digits, translate, translate_arrays,
)

HANDLERS = {CycleTranslate: translate, CycleTranslateFolder: translate_folder_stream}


def register(renderer, pool: RuntimePool) -> None:
    """Register the CycleGAN handlers on a renderer (or a render bridge)."""
    for request_type, fn in HANDLERS.items():
        renderer.register(request_type, lambda req, fn=fn: fn(pool, req))


__all__ = [
    "BATCH", "DEFAULT_OVERLAP", "CycleResult", "CycleTranslate", "CycleTranslateFolder", "DigitReading", "FITS", "FolderProgress",
    "Fitting", "Readings", "Target", "TranslatedImage", "classifier_path", "collect_inputs", "prepare",
    "read_digits", "register", "translate", "translate_arrays", "translate_folder", "translate_folder_stream",
]
