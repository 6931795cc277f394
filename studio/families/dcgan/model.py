"""DCGAN (Radford et al. 2015): strided (transposed) convolutions, BatchNorm and ReLU in G, tanh out.

The discriminator has no BatchNorm: its real and fake batches would be normalised
with different statistics, and under DistributedDataParallel the BatchNorm
buffers hit the in-place broadcast error of pytorch #175024. LeakyReLU and
strided convolutions as in the paper; WGAN-GP's per-sample gradient penalty is
also only correct without batch statistics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class DCGANConfig:
    z_dim: int = 64
    channels: int = 1
    image_size: int = 28  # a multiple of 4: 28 (MNIST) or 32
    width: int = 64  # G's last hidden layer and D's first; the other has 2x
    # 3x3 convolutions G adds at full resolution before its output (0: the last transposed
    # convolution writes the image directly, as in the paper).
    refine: int = 0
    # D appends the minibatch standard deviation as a feature (Karras et al. 2018), so it can see a
    # batch that lacks variety; off in the paper's layout.
    minibatch_std: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DCGANConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        cfg = cls(**known)
        if cfg.image_size % 4 or cfg.image_size < 8:
            raise ValueError(f"image_size {cfg.image_size} must be a multiple of 4, at least 8")
        if not (isinstance(cfg.refine, int) and 0 <= cfg.refine <= 4):
            raise ValueError(f"refine {cfg.refine!r} must be a whole number from 0 to 4")
        return cfg


def with_minibatch_std(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) with one more channel: the features' standard deviation over the batch,
    averaged (Karras et al. 2018), so D can see a batch that lacks variety. sqrt(var + eps), as
    std's gradient at zero variance is infinite (NaN under R1's double backward)."""
    std = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    return torch.cat([x, std.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1)


class Generator(nn.Module):
    """z (B, z_dim) -> image in [-1, 1], (B, C, S, S)."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        w, s = cfg.width, cfg.image_size // 4
        self.project = nn.Sequential(nn.Linear(cfg.z_dim, 2 * w * s * s, bias=False),
                                     nn.BatchNorm1d(2 * w * s * s), nn.ReLU())
        self.unflatten = nn.Unflatten(1, (2 * w, s, s))
        layers = [nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        if cfg.refine:
            # Features at full resolution, so strokes are shaped by more than one transposed kernel.
            h = max(w // 2, 8)
            layers += [nn.ConvTranspose2d(w, h, 4, 2, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU()]
            for _ in range(cfg.refine - 1):
                layers += [nn.Conv2d(h, h, 3, 1, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU()]
            layers += [nn.Conv2d(h, cfg.channels, 3, 1, 1), nn.Tanh()]
        else:
            layers += [nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.unflatten(self.project(z)))


class Discriminator(nn.Module):
    """image in [-1, 1] -> one logit (or critic value) per image."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        w, s = cfg.width, cfg.image_size // 4
        self.minibatch_std = bool(cfg.minibatch_std)
        features = [nn.Conv2d(cfg.channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
                    nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2)]
        if self.minibatch_std:
            self.features = nn.Sequential(*features)
            self.out = nn.Linear((2 * w + 1) * s * s, 1)
        else:  # the paper's layout, under the names files written before the option use
            self.net = nn.Sequential(*features, nn.Flatten(), nn.Linear(2 * w * s * s, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.minibatch_std:
            return self.net(x).squeeze(1)
        return self.out(with_minibatch_std(self.features(x)).flatten(1)).squeeze(1)


def build_generator(config: dict) -> Generator:
    return Generator(DCGANConfig.from_dict(config))
