"""DDPM trainer: L_simple = || eps - eps_theta(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t) ||^2.

t is uniform over the T training timesteps. An exponential moving average
of the weights is kept; checkpoints store the EMA weights as *the* weights
(what sampling uses) and the online weights as training state, so a resumed
run continues exactly. The last ``holdout`` images of the dataset are never
trained on (``--holdout``); the loss measured on them is the checkpoint's quality figure.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from studio.data.datasets import check_dataset
from studio.core.imaging import image_grid
from studio.core.schedules import DDIMSampler, NoiseSchedule, sample_loop
from studio.families.diffusion.model import UNet, build_unet, to_model_space
from studio.core.checkpoint import Checkpoint
from studio.training.trainer import Trainer

ONLINE_PREFIX = "online/"


class DiffusionTrainer(Trainer):
    family = "diffusion"
    default_model = {"base": 24, "mults": [1, 2, 2], "attn_res": [7], "schedule": "linear",
                     "timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
                     "ema": 0.999}

    def __init__(self, options, dataset):
        super().__init__(options, dataset)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.ema_decay = float(self.options.model.get("ema", 0.999))
        sched = NoiseSchedule.from_config(self.options.model)
        self.alphas_cumprod = torch.from_numpy(sched.alphas_cumprod.copy()).to(self.device)
        self.T = sched.num_train_timesteps

    def build_model(self, config: dict[str, Any]) -> UNet:
        c, h, _ = self.dataset.shape
        config.setdefault("channels", c)
        config.setdefault("image_size", h)
        check_dataset(self.dataset, config["channels"], config["image_size"])
        return build_unet(config)

    def loss(self, model: torch.nn.Module, x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
        ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        return torch.mean((model(x_t, t.float()) - noise) ** 2)

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        x0 = to_model_space(batch)
        t = torch.randint(0, self.T, (x0.shape[0],), device=self.device)
        noise = torch.randn_like(x0)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model, x0, t, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self._update_ema()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up (as in many DDPM codebases) so early checkpoints are usable.
        d = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

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
        n = min(1000, len(self.eval_images))
        src = self.eval_images[:n]
        x0 = to_model_space(torch.from_numpy(src).to(self.device))
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

    # ---- checkpoints: EMA weights are the weights, online weights are state ----------
    def to_checkpoint(self, with_training_state: bool = True) -> Checkpoint:
        ckpt = super().to_checkpoint(with_training_state)
        ckpt.weights = {k: v.detach().cpu().numpy() for k, v in self.ema.state_dict().items()}
        ckpt.config = {k: v for k, v in self.options.model.items()}
        if with_training_state:
            for k, v in self.model.state_dict().items():
                ckpt.training_state[ONLINE_PREFIX + k] = v.detach().cpu().numpy()
        return ckpt

    def restore(self, ckpt: Checkpoint) -> None:
        super().restore(ckpt)  # loads the EMA weights into self.model
        self.ema.load_state_dict(self.model.state_dict())
        online = {k[len(ONLINE_PREFIX):]: torch.from_numpy(np.array(v))
                  for k, v in ckpt.training_state.items() if k.startswith(ONLINE_PREFIX)}
        if online:
            self.model.load_state_dict(online)
