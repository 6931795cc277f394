"""The studio digit classifier: the feature extractor behind FID, KID, IS and precision/recall."""

from studio.families.classifier.model import (
    ClassifierConfig,
    DigitClassifier,
    build_classifier,
    prepare_digits,
)

__all__ = ["ClassifierConfig", "DigitClassifier", "build_classifier", "prepare_digits"]
