"""VAE trainer: maximise the ELBO (reparameterisation trick, analytic KL)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.data.datasets import check_dataset
from studio.families.vae.model import VAE, build_vae
from studio.core.imaging import image_grid
from studio.training.trainer import Trainer


class VAETrainer(Trainer):
    family = "vae"
    default_model = {"latent_dim": 2, "beta": 1.0, "width": 32, "hidden": 128}

    def build_model(self, config: dict[str, Any]) -> VAE:
        c, h, _ = self.dataset.shape
        config.setdefault("channels", c)
        config.setdefault("image_size", h)
        check_dataset(self.dataset, config["channels"], config["image_size"])
        if config["image_size"] % 4:
            raise ValueError(f"image size {config['image_size']} must be a multiple of 4")
        return build_vae(config)

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        parts = self.model.loss(batch)
        parts["loss"].backward()
        self.optimizer.step()
        return {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        z = torch.randn(16, self.model.cfg.latent_dim, generator=torch.Generator().manual_seed(1))
        return image_grid(self.model.decoder(z.to(self.device)).cpu().numpy(), cols=8)

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """Negative ELBO in nats per image, on the held-out images when there are any."""
        n = min(1000, len(self.eval_images))
        x = torch.from_numpy(self.eval_images[:n]).to(self.device)
        was_training = self.model.training
        self.model.eval()
        g = torch.get_rng_state()
        torch.manual_seed(123)
        parts = self.model.loss(x)
        torch.set_rng_state(g)
        self.model.train(was_training)
        return {"neg_elbo_nats": round(float(parts["loss"]), 3),
                "recon_nats": round(float(parts["recon"]), 3),
                "kl_nats": round(float(parts["kl"]), 3), "eval_images": n,
                "eval_split": "held-out" if self.options.holdout else "training"}
