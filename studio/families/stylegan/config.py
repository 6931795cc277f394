"""The compact StyleGAN's configuration, free of torch (the panels read it without loading torch)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class StyleGANConfig:
    z_dim: int = 64
    w_dim: int = 64
    mapping_layers: int = 4
    image_size: int = 32  # 4 * 2**k; 32 gives 8 style layers
    channels: int = 3
    # Feature maps per resolution, from 4x4 upwards (one entry per resolution).
    widths: list[int] = field(default_factory=lambda: [64, 64, 32, 16])
    mapping_lr_mul: float = 0.01

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StyleGANConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        cfg = cls(**known)
        cfg.widths = [int(c) for c in cfg.widths]
        cfg.check()
        return cfg

    @property
    def resolutions(self) -> list[int]:
        return [4 * 2 ** i for i in range(int(math.log2(self.image_size // 4)) + 1)]

    @property
    def num_layers(self) -> int:
        return 2 * len(self.resolutions)

    def layer_resolution(self, layer: int) -> int:
        return self.resolutions[layer // 2]

    def check(self) -> None:
        size = self.image_size
        if size < 4 or size & (size - 1):
            raise ValueError(f"image_size {size} must be a power of two, at least 4")
        if len(self.widths) != len(self.resolutions):
            raise ValueError(f"widths {self.widths} needs one entry per resolution {self.resolutions}")
