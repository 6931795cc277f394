"""CycleGAN (Zhu et al. 2017): two ResNet generators and two PatchGAN discriminators, sized for 32x32 digits.

Generator (the paper's "c7s1-w, d2w, d4w, R4w x blocks, u2w, uw, c7s1-out"): a 7x7 convolution on a
reflection-padded input, two stride-2 convolutions down, residual blocks at a quarter of the
resolution, two upsampling convolutions back up and a 7x7 convolution to tanh. Instance norm
throughout (statistics per image, so a translation never depends on the rest of its batch),
reflection padding (no dark frame at the borders). Fully convolutional: any height and width that
are multiples of 4, at least 8, translate.

Discriminator: a PatchGAN, one real/fake score per overlapping patch. With ``d_layers`` = 2 on
32x32 input it scores a 6x6 grid of patches of 34 pixels: the paper's 70x70 PatchGAN scaled to
digits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

MIN_SIZE = 8  # two halvings leave 2x2, the smallest map a reflection pad of 1 accepts


@dataclass
class CycleGANConfig:
    channels: int = 1  # both domains (grey pictures become 3 channels when the other domain is colour)
    image_size: int = 32  # training crops; the generators take any multiple of 4
    width: int = 12  # channels of the generator's first layer (2x and 4x further down)
    blocks: int = 3  # residual blocks at the bottleneck
    d_width: int = 32  # channels of the discriminator's first layer
    d_layers: int = 2  # stride-2 layers in the discriminator

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CycleGANConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        cfg = cls(**known)
        problems = []
        if cfg.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, not {cfg.channels}")
        if cfg.image_size % 4 or cfg.image_size < MIN_SIZE:
            problems.append(f"image_size {cfg.image_size} must be a multiple of 4, at least {MIN_SIZE}")
        for name in ("width", "blocks", "d_width", "d_layers"):
            if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
                problems.append(f"{name} must be a whole number, at least 1")
        if problems:
            raise ValueError("; ".join(problems))
        return cfg


def check_size(height: int, width: int) -> None:
    """Raise ValueError unless a generator can translate a (height, width) picture."""
    if height % 4 or width % 4 or min(height, width) < MIN_SIZE:
        raise ValueError(f"a CycleGAN generator translates pictures whose sides are multiples of 4, "
                         f"at least {MIN_SIZE}; this one is {width}x{height}")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image in [-1, 1] (N, C, H, W) -> translated image in [-1, 1], same shape."""

    def __init__(self, channels: int, width: int, blocks: int):
        super().__init__()
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7), nn.InstanceNorm2d(w), nn.ReLU()]
        for mult in (1, 2):  # down: w -> 2w -> 4w
            layers += [nn.Conv2d(w * mult, w * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(w * mult * 2),
                       nn.ReLU()]
        layers += [ResidualBlock(4 * w) for _ in range(blocks)]
        for mult in (4, 2):  # up: 4w -> 2w -> w
            # Nearest upsampling then a convolution, not a transposed convolution: a stride-2
            # transposed 3x3 covers every other pixel twice and paints a checkerboard on flat
            # digit backgrounds (Odena et al. 2016).
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                       nn.Conv2d(w * mult, w * mult // 2, 3), nn.InstanceNorm2d(w * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Image in [-1, 1] -> a map of real/fake scores, one per patch (N, 1, h, w)."""

    def __init__(self, channels: int, width: int, layers: int):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, layers + 1):
            nxt = width * min(2 ** i, 8)
            stride = 2 if i < layers else 1  # the last hidden layer keeps the resolution, as in pix2pix
            seq += [nn.Conv2d(c, nxt, 4, stride=stride, padding=1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2)]
            c = nxt
        seq += [nn.Conv2d(c, 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CycleGenerators(nn.Module):
    """The pair a checkpoint ships: ``G_AB`` translates domain A to B, ``G_BA`` back."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        self.cfg = cfg
        self.G_AB = ResnetGenerator(cfg.channels, cfg.width, cfg.blocks)
        self.G_BA = ResnetGenerator(cfg.channels, cfg.width, cfg.blocks)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.G_AB(a), self.G_BA(b)


def build_generators(config: dict) -> CycleGenerators:
    return CycleGenerators(CycleGANConfig.from_dict(config))


def build_discriminator(config: dict) -> PatchDiscriminator:
    cfg = CycleGANConfig.from_dict(config)
    return PatchDiscriminator(cfg.channels, cfg.d_width, cfg.d_layers)
