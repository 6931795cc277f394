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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DCGANConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        cfg = cls(**known)
        if cfg.image_size % 4 or cfg.image_size < 8:
            raise ValueError(f"image_size {cfg.image_size} must be a multiple of 4, at least 8")
        return cfg


class Generator(nn.Module):
    """z (B, z_dim) -> image in [-1, 1], (B, C, S, S)."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        w, s = cfg.width, cfg.image_size // 4
        self.project = nn.Sequential(nn.Linear(cfg.z_dim, 2 * w * s * s, bias=False),
                                     nn.BatchNorm1d(2 * w * s * s), nn.ReLU())
        self.unflatten = nn.Unflatten(1, (2 * w, s, s))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.unflatten(self.project(z)))


class Discriminator(nn.Module):
    """image in [-1, 1] -> one logit (or critic value) per image."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        w, s = cfg.width, cfg.image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * w * s * s, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_generator(config: dict) -> Generator:
    return Generator(DCGANConfig.from_dict(config))
