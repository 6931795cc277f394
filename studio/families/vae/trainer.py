"""VAE trainer: maximise the ELBO (reparameterisation trick, analytic KL)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.core.imaging import image_grid
from studio.families.vae.model import VAEConfig, build_vae
from studio.training.data import Batch
from studio.training.trainer import Trainer


class VAETrainer(Trainer):
    family = "vae"
    config_class = VAEConfig
    default_model = {"latent_dim": 2, "beta": 1.0, "width": 32, "hidden": 128}

    @classmethod
    def configure(cls, model, data):
        config = cls.fit_image_shape(super().configure(model, data), data)
        if config["image_size"] % 4:
            raise ValueError(f"image size {config['image_size']} must be a multiple of 4")
        return config

    @classmethod
    def build_modules(cls, config: dict[str, Any]):
        return {"model": build_vae(config)}

    def set_live_option(self, name: str, value: float) -> None:
        """``beta`` can change mid-run too (the KL weight: watch the latent space open or collapse)."""
        if name != "beta":
            super().set_live_option(name, value)
            return
        if not value >= 0:
            raise ValueError(f"beta must not be negative, not {value}")
        self.model.cfg.beta = float(value)
        self.options.model["beta"] = float(value)  # what the checkpoint records and a resume rebuilds

    def train_step(self, batch: Batch) -> dict[str, float]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        parts = self.model.loss(batch.images)
        parts["loss"].backward()
        opt.step()
        return {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        z = torch.randn(16, self.model.cfg.latent_dim, generator=torch.Generator().manual_seed(1))
        return image_grid(self.model.decoder(z.to(self.device)).cpu().numpy(), cols=8)

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """Negative ELBO in nats per image, on the held-out images when there are any."""
        x = self.eval_images(1000)
        was_training = self.model.training
        self.model.eval()
        g = torch.get_rng_state()
        torch.manual_seed(123)
        parts = self.model.loss(x)
        torch.set_rng_state(g)
        self.model.train(was_training)
        return {"neg_elbo_nats": round(float(parts["loss"]), 3),
                "recon_nats": round(float(parts["recon"]), 3),
                "kl_nats": round(float(parts["kl"]), 3), "eval_images": len(x),
                "eval_split": "held-out" if self.options.holdout else "training"}
