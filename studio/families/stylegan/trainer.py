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

import torch

from studio.data.datasets import ImageDataset, check_dataset
from studio.data.recolour import recolour_digits
from studio.families.dcgan.trainer import GAN_DEFAULTS, GanTrainer
from studio.families.stylegan.model import StyleDiscriminator, StyleGANConfig, StyleGenerator


def prepare_dataset(dataset: ImageDataset, config: dict[str, Any], seed: int) -> ImageDataset:
    """Grey digits -> 32x32 (padded), recoloured when ``recolour`` is set."""
    c, h, w = dataset.shape
    size = int(config.get("image_size", 32))
    if c == 1 and config.get("recolour", True):
        return ImageDataset(recolour_digits(dataset.images, seed=seed, size=size), dataset.labels,
                            f"{dataset.name} recoloured (seed {seed})")
    if (h, w) != (size, size) and h <= size and w <= size:
        top, left = (size - h) // 2, (size - w) // 2
        images = torch.nn.functional.pad(torch.from_numpy(dataset.images),
                                         (left, size - w - left, top, size - h - top)).numpy()
        return ImageDataset(images, dataset.labels, f"{dataset.name} padded to {size}")
    return dataset


class StyleGANTrainer(GanTrainer):
    family = "stylegan"
    default_model = {"z_dim": 64, "w_dim": 64, "mapping_layers": 4, "image_size": 32,
                     "widths": [64, 64, 32, 16], "recolour": True, "mixing_prob": 0.9,
                     "w_avg_beta": 0.995, "beta1": 0.0, "beta2": 0.99, "r1_gamma": 0.1, "d_width": 32}

    def __init__(self, options, dataset):
        merged = {**GAN_DEFAULTS, **self.default_model, **options.model}
        super().__init__(options, prepare_dataset(dataset, merged, options.seed))

    def build_model(self, config: dict[str, Any]) -> StyleGenerator:
        c, h, _ = self.dataset.shape
        config.setdefault("channels", c)
        check_dataset(self.dataset, int(config["channels"]), int(config["image_size"]))
        if not 0.0 <= float(config["mixing_prob"]) <= 1.0:
            raise ValueError("mixing_prob must be in [0, 1]")
        return StyleGenerator(StyleGANConfig.from_dict(config))

    def build_discriminator(self, config: dict[str, Any]):
        return StyleDiscriminator(StyleGANConfig.from_dict(config), int(config["d_width"]))

    def sample_fake(self, batch: int) -> torch.Tensor:
        g = self.model
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
            self.model.w_avg.lerp_(self._last_w.detach().mean(dim=0), 1.0 - beta)

    @torch.no_grad()
    def sample_ema(self, z: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(2)  # fixed preview noise: the grid changes only as G learns
        return self.ema(z.to(self.device), noises=self.ema.random_noise(z.shape[0], generator=g, device=self.device))
