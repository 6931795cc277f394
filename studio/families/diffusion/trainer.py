"""DDPM trainer: L_simple = || eps - eps_theta(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t) ||^2.

t is uniform over the T training timesteps. An exponential moving average
of the weights is kept (studio.training.ema, with warm-up); checkpoints
ship the EMA weights as *the* weights (what sampling uses) and keep the
online weights as training state, so a resumed run continues exactly. The
last ``holdout`` images of the dataset are never trained on (``--holdout``);
the loss measured on them is the checkpoint's quality figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.core.imaging import image_grid
from studio.core.schedules import DDIMSampler, NoiseSchedule, sample_loop
from studio.families.diffusion.model import UNetConfig, build_unet, to_model_space
from studio.training.data import Batch
from studio.training.trainer import Trainer


class DiffusionTrainer(Trainer):
    family = "diffusion"
    config_class = UNetConfig
    default_model = {"base": 24, "mults": [1, 2, 2], "attn_res": [7], "schedule": "linear",
                     "timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
                     "ema": 0.999}

    def __init__(self, options, dataset, context=None, extra_data=None):
        super().__init__(options, dataset, context, extra_data)
        self.ema_decay = float(self.options.model.get("ema", 0.999))
        self.add_ema("model", self.ema_decay, warmup=True)
        sched = NoiseSchedule.from_config(self.options.model)
        self.alphas_cumprod = torch.from_numpy(sched.alphas_cumprod.copy()).to(self.device)
        self.T = sched.num_train_timesteps

    @classmethod
    def configure(cls, model, data):
        config = cls.fit_image_shape(super().configure(model, data), data)
        NoiseSchedule.from_config(config)  # names an unknown noise schedule before anything starts
        if not 0.0 <= float(config["ema"]) < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), not {config['ema']}")
        return config

    @classmethod
    def build_modules(cls, config: dict[str, Any]):
        return {"model": build_unet(config)}

    @property
    def ema(self) -> torch.nn.Module:
        """The averaged UNet (what sampling and the checkpoint use)."""
        return self.emas["model"].module

    def loss(self, model: torch.nn.Module, x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
        ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        return torch.mean((model(x_t, t.float()) - noise) ** 2)

    def train_step(self, batch: Batch) -> dict[str, float]:
        x0 = to_model_space(batch.images)
        t = torch.randint(0, self.T, (x0.shape[0],), device=self.device)
        noise = torch.randn_like(x0)
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model, x0, t, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        opt.step()
        self.emas["model"].update(self.model)
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def sample(self, n: int = 16, steps: int = 25, seed: int = 1) -> np.ndarray:
        """n samples in [0, 1] from the EMA model with DDIM (eta 0)."""
        sampler = DDIMSampler(NoiseSchedule.from_config(self.options.model))
        sampler.set_timesteps(steps)
        c, s = self.ema.cfg.channels, self.ema.cfg.image_size

        def eps(x, t):
            out = self.ema(torch.from_numpy(x).to(self.device), torch.from_numpy(t).to(self.device))
            return out.cpu().numpy()

        x = None
        for rec in sample_loop(eps, sampler, (n, c, s, s), seed):
            x = rec["prev"]
        return np.clip((x + 1) / 2, 0, 1)

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        return image_grid(self.sample(16, 25), cols=8)

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """L_simple of the EMA model on held-out images, fixed t and noise (lower is better)."""
        x0 = to_model_space(self.eval_images(1000))
        n = len(x0)
        g = torch.Generator().manual_seed(123)
        reps, total, per_band = 4, 0.0, {}
        bands = {"t<100": (0, 100), "100<=t<500": (100, 500), "t>=500": (500, self.T)}
        band_sum = {k: 0.0 for k in bands}
        band_n = {k: 0 for k in bands}
        for _ in range(reps):
            t = torch.randint(0, self.T, (n,), generator=g).to(self.device)
            noise = torch.randn(x0.shape, generator=g).to(self.device)
            ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
            pred = self.ema(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t.float())
            err = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
            total += float(err.mean())
            for k, (lo, hi) in bands.items():
                m = (t >= lo) & (t < hi)
                band_sum[k] += float(err[m].sum())
                band_n[k] += int(m.sum())
        for k in bands:
            per_band[k] = round(band_sum[k] / max(1, band_n[k]), 5)
        return {"l_simple": round(total / reps, 5), "l_simple_by_t": per_band,
                "eval_images": n, "eval_split": "held-out" if self.options.holdout else "training",
                "ema_decay": self.ema_decay}
