"""StyleGAN trainer: the GAN loop (studio.families.dcgan.trainer) plus what StyleGAN adds.

- Mixing regularisation: with probability ``mixing_prob`` a sample's styles switch
  from w(z1) to w(z2) at a random layer, so neighbouring layers do not learn to
  depend on each other (what makes style mixing work).
- w_avg: the running mean of w (decay ``w_avg_beta``) kept in the generator, the
  centre of the truncation trick.
- Fresh noise maps for every sample, so the per-layer noise learns stochastic detail.
- The data: 28x28 digits are padded to 32x32; with ``recolour`` (default on) the
  grey digits are recoloured at load time (studio.data.recolour), never stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.data.datasets import DatasetError
from studio.data.recolour import recolour_digits
from studio.families.dcgan.trainer import GAN_DEFAULTS, GanTrainer
from studio.families.stylegan.config import StyleGANConfig
from studio.families.stylegan.model import StyleDiscriminator, StyleGenerator
from studio.training.data import ArrayImages, as_source


def prepare_source(source, config: dict[str, Any], seed: int):
    """Grey digits -> 32x32 (padded), recoloured when ``recolour`` is set; other data as it is."""
    c, h, w = source.shape
    size = int(config.get("image_size", 32))
    if (h, w) == (size, size) and not (c == 1 and config.get("recolour", True)):
        return source
    batch = source.__getitems__(list(range(len(source))))
    images = batch.images.numpy()
    labels = None if batch.labels is None else batch.labels.numpy()
    if c == 1 and config.get("recolour", True):
        return ArrayImages(recolour_digits(images, seed=seed, size=size), labels,
                           f"{source.name} recoloured (seed {seed})")
    top, left = (size - h) // 2, (size - w) // 2
    padded = np.pad(images, ((0, 0), (0, 0), (top, size - h - top), (left, size - w - left)))
    return ArrayImages(padded, labels, f"{source.name} padded to {size}")


class StyleGANTrainer(GanTrainer):
    family = "stylegan"
    config_class = StyleGANConfig
    default_model = {**GAN_DEFAULTS, "z_dim": 64, "w_dim": 64, "mapping_layers": 4, "image_size": 32,
                     "widths": [64, 64, 32, 16], "recolour": True, "mixing_prob": 0.9,
                     "w_avg_beta": 0.995, "beta1": 0.0, "beta2": 0.99, "r1_gamma": 0.1, "d_width": 32}

    def __init__(self, options, dataset, context=None, extra_data=None):
        merged = {**self.default_model, **options.model}
        super().__init__(options, prepare_source(as_source(dataset), merged, options.seed), context, extra_data)

    @classmethod
    def fit_data(cls, config: dict[str, Any], data) -> dict[str, Any]:
        """The shape after ``prepare_source``: grey digits become RGB when recoloured, padded to the size."""
        c, h, w = data.shape
        size = int(config["image_size"])
        channels = 3 if c == 1 and config["recolour"] else c
        config.setdefault("channels", channels)
        if int(config["channels"]) != channels:
            raise DatasetError(f"{data.name}: images give {channels} channel(s), the model is set to "
                               f"{config['channels']}")
        if h > size or w > size:
            raise DatasetError(f"{data.name}: images are {w}x{h}, larger than the model's {size}x{size}")
        if not 0.0 <= float(config["mixing_prob"]) <= 1.0:
            raise ValueError("mixing_prob must be in [0, 1]")
        StyleGANConfig.from_dict(config)  # names a bad size or widths list before anything starts
        return config

    @classmethod
    def build_modules(cls, config: dict[str, Any]) -> dict[str, torch.nn.Module]:
        cfg = StyleGANConfig.from_dict(config)
        return {"generator": StyleGenerator(cfg), "discriminator": StyleDiscriminator(cfg, int(config["d_width"]))}

    def sample_fake(self, batch: int) -> torch.Tensor:
        g = self.generator
        z_dim = g.cfg.z_dim
        w = g.mapping(torch.randn(batch, z_dim, device=self.device))
        self._last_w = w
        ws = g.broadcast(w)
        if float(self.options.model["mixing_prob"]) > 0:
            w2 = g.mapping(torch.randn(batch, z_dim, device=self.device))
            cut = torch.randint(1, g.num_layers, (batch, 1, 1), device=self.device)
            mix = torch.rand(batch, 1, 1, device=self.device) < float(self.options.model["mixing_prob"])
            layer = torch.arange(g.num_layers, device=self.device)[None, :, None]
            ws = torch.where(mix & (layer >= cut), g.broadcast(w2), ws)
        return g.synthesis(ws, g.random_noise(batch, device=self.device))

    def after_g_step(self) -> None:
        beta = float(self.options.model["w_avg_beta"])
        with torch.no_grad():
            self.generator.w_avg.lerp_(self._last_w.detach().mean(dim=0), 1.0 - beta)

    @torch.no_grad()
    def sample_ema(self, z: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(2)  # fixed preview noise: the grid changes only as G learns
        return self.ema(z.to(self.device), noises=self.ema.random_noise(z.shape[0], generator=g, device=self.device))
