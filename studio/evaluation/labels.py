"""Digit labels read by the studio classifier, for data that comes without labels.

The VAE's latent scatter colours points by class; a folder of unlabelled digits
still gets colours when the classifier reads them.
"""

from __future__ import annotations

import os

import numpy as np

from studio.evaluation.features import DEFAULT_CLASSIFIER, load_extractor


def readable_as_digits(shape: tuple[int, ...]) -> bool:
    """Whether images shaped (C, H, W) look like digits the classifier reads: grey, 28x28 or 32x32.

    RGB data is left unlabelled: colour pictures are no digits, and their "labels" would mislead.
    """
    return len(shape) == 3 and shape[0] == 1 and shape[1] == shape[2] and shape[1] in (28, 32)


def predict_labels(images, min_confidence: float = 0.0,
                   classifier: str | os.PathLike = DEFAULT_CLASSIFIER) -> np.ndarray:
    """The digit (0-9) the classifier reads in each image, int64 (N,).

    ``images``: uint8 in [0, 255] or floats in [0, 1], (N, H, W) or (N, C, H, W).
    Where the classifier's top probability is below ``min_confidence`` the label is -1.
    """
    probs = load_extractor(classifier)(images).probs
    labels = probs.argmax(axis=1).astype(np.int64)
    if min_confidence > 0:
        labels[probs.max(axis=1) < min_confidence] = -1
    return labels
