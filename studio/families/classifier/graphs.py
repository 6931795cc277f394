"""The classifier's graph: digits -> class logits and the penultimate (pre-ReLU) features."""

from __future__ import annotations

from torch import nn

from studio.engine.graphs import GraphSpec, InputSpec
from studio.families.classifier.model import DIGIT_SIZE


class _Classify(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        features = self.model.features(image)
        return self.model.logits_from_features(features), features


def classifier_graphs(model) -> dict[str, GraphSpec]:
    shape = (1, 1, DIGIT_SIZE, DIGIT_SIZE)
    return {"classify": GraphSpec("classify", _Classify(model), (InputSpec("image", shape),), ("logits", "features"))}
