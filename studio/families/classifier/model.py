"""A small CNN digit classifier whose penultimate layer serves as the feature space
for FID, KID and precision/recall, and whose softmax serves the Inception Score.

Why our own classifier rather than Inception-v3: MNIST digits are 28x28 grey
strokes, far from ImageNet; an in-domain network trained on digits gives
features that see what matters (the digit's identity and style) and runs in
milliseconds on a CPU. The features are taken *before* the ReLU so no unit is
clamped at zero for whole classes, which would make the covariance rank-deficient.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

NUM_CLASSES = 10
DIGIT_SIZE = 28


@dataclass
class ClassifierConfig:
    width: int = 32  # channels of the first conv; the next two have 2x
    feature_dim: int = 64  # penultimate layer: the feature space of FID/KID
    dropout: float = 0.3
    num_classes: int = NUM_CLASSES

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def prepare_digits(x: torch.Tensor) -> torch.Tensor:
    """Bring a batch to (N, 1, 28, 28) floats: grey, 28x28.

    32x32 digits (MNIST padded by 2, the usual size for U-Nets) are centre-cropped,
    so the strokes keep their exact pixels; any other size is resized (antialiased).
    """
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ValueError(f"expected images shaped (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
    x = x.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    h, w = x.shape[-2:]
    if (h, w) == (DIGIT_SIZE, DIGIT_SIZE):
        return x
    if h == w and h > DIGIT_SIZE and (h - DIGIT_SIZE) % 2 == 0 and h <= DIGIT_SIZE + 8:
        m = (h - DIGIT_SIZE) // 2
        return x[..., m: m + DIGIT_SIZE, m: m + DIGIT_SIZE]
    return F.interpolate(x, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear",
                         align_corners=False, antialias=h > DIGIT_SIZE)


class DigitClassifier(nn.Module):
    """(N, 1, 28, 28) in [0, 1] -> 10 logits; ``features`` is the penultimate layer pre-ReLU."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        # Batch norm keeps the short CPU training stable; in eval mode it is a fixed
        # affine map, so features do not depend on how images are batched.
        self.convs = nn.Sequential(
            # A strided first conv: work at 28x28 is memory-bound on a CPU, so halve it at once.
            nn.Conv2d(1, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(),  # 14x14
            # Pool before the ReLU: the two commute, and the ReLU then runs on a quarter of the map.
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.MaxPool2d(2), nn.ReLU(),  # 7x7
            # A strided conv rather than a third pool: cheap, and 4x4 keeps the border row.
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),  # 4x4
            nn.Flatten(),
        )
        self.embed = nn.Linear(2 * w * 16, cfg.feature_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.feature_dim, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer before its ReLU, (N, feature_dim)."""
        return self.embed(self.convs(prepare_digits(x)))

    def logits_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(F.relu(feats)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass for both: what the evaluation needs for FID/KID and IS together."""
        feats = self.features(x)
        return feats, self.logits_from_features(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(x))


def build_classifier(config: dict) -> DigitClassifier:
    return DigitClassifier(ClassifierConfig.from_dict(config))
