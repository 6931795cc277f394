"""GAN training: two networks, two optimisers, the lecture's loss zoo and tricks.

Losses (``loss`` option): "ns" (non-saturating), "lsgan" (least squares),
"wgan-gp" (critic with gradient penalty, lambda = ``gp_weight`` = 10) and "hinge".
Tricks: one-sided label smoothing (real targets 1 - ``label_smoothing``; ns and
lsgan), instance noise on both D inputs with a standard deviation decayed
linearly to 0 over ``instance_noise_steps``, ``d_steps`` D updates (each on a
fresh batch) per G update, an optional R1 penalty on real images, differentiable
augmentation of everything D sees (``augment``: "translation", "cutout" or both,
as DiffAugment, Zhao et al. 2020: a D that sees 9,000 digits for 100 epochs
memorises them unless its inputs vary), and G_ema, the exponential moving
average of G that checkpoints store as *the* weights.

The trainer protocol (studio.training.trainer): two named modules,
"generator" and "discriminator", each with its own optimiser and LR schedule;
G_ema on the protocol's EMA helper is what checkpoints ship. D has no BatchNorm
(safe under DistributedDataParallel, pytorch #175024).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from studio.core.imaging import image_grid
from studio.families.dcgan.model import DCGANConfig, Discriminator, build_generator
from studio.training.data import Batch
from studio.training.trainer import Trainer

LOSSES = ("ns", "lsgan", "wgan-gp", "hinge")
AUGMENTS = ("translation", "cutout")

GAN_DEFAULTS: dict[str, Any] = {
    "loss": "ns", "d_steps": 1, "label_smoothing": 0.0, "instance_noise": 0.0, "instance_noise_steps": 2000,
    "gp_weight": 10.0, "r1_gamma": 0.0, "ema": 0.999, "beta1": 0.5, "beta2": 0.999, "d_lr_mul": 1.0,
    "augment": "",
}


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """The discriminator's (critic's) loss from its outputs on real and fake images."""
    target = 1.0 - smoothing  # one-sided: only the real label is softened
    if kind == "ns":
        # BCE with logits, real target t: t * softplus(-d) + (1 - t) * softplus(d).
        return (target * F.softplus(-real) + (1 - target) * F.softplus(real)).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - target) ** 2).mean() + 0.5 * (fake ** 2).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown GAN loss '{kind}' ({', '.join(LOSSES)})")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "ns":
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return 0.5 * ((fake - 1.0) ** 2).mean()
    if kind in ("wgan-gp", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown GAN loss '{kind}' ({', '.join(LOSSES)})")


def gradient_penalty(disc, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 at random points between real and fake images."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def augment_names(spec: str) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); unknown names raise ValueError."""
    names = tuple(n.strip() for n in str(spec or "").replace("+", ",").split(",") if n.strip())
    unknown = [n for n in names if n not in AUGMENTS]
    if unknown:
        raise ValueError(f"unknown augment {', '.join(unknown)} (choose from {', '.join(AUGMENTS)})")
    return names


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Each image shifted by up to ``ratio`` of its size, its edge pixels repeated into the gap;
    differentiable (a gather), so G learns through it."""
    b, _, h, w = x.shape
    dy, dx = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    rows = torch.arange(h, device=x.device).view(1, h, 1) + torch.randint(-dy, dy + 1, (b, 1, 1), device=x.device)
    cols = torch.arange(w, device=x.device).view(1, 1, w) + torch.randint(-dx, dx + 1, (b, 1, 1), device=x.device)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1), cols.clamp(0, w - 1)].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """A square of ``ratio`` of the size, at a random place in each image, set to the middle of the
    range (0 in [-1, 1])."""
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    top = torch.randint(0, h - ch + 1, (b, 1, 1), device=x.device)
    left = torch.randint(0, w - cw + 1, (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = ((ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)).unsqueeze(1)
    return x.masked_fill(hole, 0.0)


def augment(x: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    for name in names:
        x = translate(x) if name == "translation" else cutout(x)
    return x


def r1_penalty(disc, real: torch.Tensor) -> torch.Tensor:
    """R1: the squared gradient norm of D on real images (Mescheder et al. 2018)."""
    x = real.detach().requires_grad_(True)
    grad, = torch.autograd.grad(disc(x).sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()


class GanTrainer(Trainer):
    """What every GAN family shares; a family supplies G, D, ``sample_fake`` and the data's shape."""

    shipped = "generator"  # its EMA, G_ema, is what the checkpoint holds as the weights

    def __init__(self, options, dataset, context=None, extra_data=None):
        super().__init__(options, dataset, context, extra_data)
        cfg = self.options.model
        self.add_ema("generator", float(cfg["ema"]), warmup=True)
        self.augments = augment_names(cfg.get("augment", ""))  # validated by configure
        self.preview_z = torch.randn(16, int(cfg["z_dim"]), generator=torch.Generator().manual_seed(1))

    @classmethod
    def configure(cls, model: dict[str, Any], data) -> dict[str, Any]:
        config = super().configure(model, data)
        problems = []
        if config["loss"] not in LOSSES:
            problems.append(f"unknown loss '{config['loss']}' (choose {', '.join(LOSSES)})")
        if not (isinstance(config["d_steps"], int) and config["d_steps"] >= 1):
            problems.append("d_steps must be a whole number, at least 1")
        if not 0.0 <= float(config["label_smoothing"]) < 0.5:
            problems.append("label_smoothing must be in [0, 0.5)")
        if float(config["instance_noise"]) < 0 or int(config["instance_noise_steps"]) < 1:
            problems.append("instance_noise must be >= 0 and instance_noise_steps >= 1")
        if not 0.0 <= float(config["ema"]) < 1.0:
            problems.append("ema must be in [0, 1)")
        try:
            augment_names(config["augment"])
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return cls.fit_data(config, data)

    # ---- what a GAN family provides --------------------------------------------------
    @classmethod
    def fit_data(cls, config: dict[str, Any], data) -> dict[str, Any]:
        """Channels and image size from the data (a family may transform the data first)."""
        return cls.fit_image_shape(config, data)

    def sample_fake(self, batch: int) -> torch.Tensor:
        """Images in [-1, 1] from the online G, with gradients (training-time tricks included)."""
        return self.generator(torch.randn(batch, int(self.options.model["z_dim"]), device=self.device))

    @torch.no_grad()
    def sample_ema(self, z: torch.Tensor) -> torch.Tensor:
        return self.ema(z.to(self.device))

    def after_g_step(self) -> None:
        """Family bookkeeping after each G update (StyleGAN: w_avg)."""

    # ---- modules and optimisers ------------------------------------------------------
    @property
    def generator(self) -> torch.nn.Module:
        return self.modules["generator"]

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.modules["discriminator"]

    @property
    def ema(self) -> torch.nn.Module:
        """G_ema: the averaged generator (what previews and the checkpoint use)."""
        return self.emas["generator"].module

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.options.model
        betas = (float(cfg["beta1"]), float(cfg["beta2"]))
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=self.options.lr, betas=betas),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(),
                                                  lr=self.options.lr * float(cfg["d_lr_mul"]), betas=betas)}

    def set_live_option(self, name: str, value: float) -> None:
        """``lr`` moves both optimisers, D keeping its ``d_lr_mul`` ratio; ``lr.NAME`` moves one."""
        if name == "lr":
            self._set_base_lr("generator", float(value))
            self._set_base_lr("discriminator", float(value) * float(self.options.model["d_lr_mul"]))
        else:
            super().set_live_option(name, value)

    # ---- the step ------------------------------------------------------------------
    def instance_noise_std(self) -> float:
        cfg = self.options.model
        return float(cfg["instance_noise"]) * max(0.0, 1.0 - self.step / int(cfg["instance_noise_steps"]))

    def _d_input(self, x: torch.Tensor, std: float) -> torch.Tensor:
        """What D sees of an image batch: augmented (the same kinds for real and fake), then noised."""
        x = augment(x, self.augments)
        return x + std * torch.randn_like(x) if std > 0 else x

    def train_step(self, batch: Batch) -> dict[str, float]:
        cfg = self.options.model
        kind = cfg["loss"]
        std = self.instance_noise_std()
        d_opt, g_opt = self.optimizers["discriminator"], self.optimizers["generator"]
        self.discriminator.requires_grad_(True)
        for k in range(int(cfg["d_steps"])):
            real = (batch if k == 0 else self.next_batch()).images * 2.0 - 1.0
            with torch.no_grad():
                fake = self.sample_fake(real.shape[0])
            real_in, fake_in = self._d_input(real, std), self._d_input(fake, std)
            d_real, d_fake = self.discriminator(real_in), self.discriminator(fake_in)
            loss_d = d_loss(kind, d_real, d_fake, float(cfg["label_smoothing"]))
            if kind == "wgan-gp":
                loss_d = loss_d + float(cfg["gp_weight"]) * gradient_penalty(self.discriminator, real_in, fake_in)
            if float(cfg["r1_gamma"]) > 0:
                loss_d = loss_d + 0.5 * float(cfg["r1_gamma"]) * r1_penalty(self.discriminator, real_in)
            d_opt.zero_grad(set_to_none=True)
            loss_d.backward()
            d_opt.step()
        self.discriminator.requires_grad_(False)  # G's step needs D's input gradients only
        fake = self.sample_fake(real.shape[0])
        loss_g = g_loss(kind, self.discriminator(self._d_input(fake, std)))
        g_opt.zero_grad(set_to_none=True)
        loss_g.backward()
        g_opt.step()
        self.after_g_step()
        self.emas["generator"].update(self.generator)
        return {"d_loss": float(loss_d.detach()), "g_loss": float(loss_g.detach()),
                "d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean())}

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        images = (self.sample_ema(self.preview_z).clamp(-1, 1) + 1.0) * 0.5
        return image_grid(images.cpu().numpy(), cols=8)

    def metrics(self) -> dict[str, Any]:
        """Loss averages over the last 100 steps (sample quality: checkpoints/evaluate_gan.py)."""
        out: dict[str, Any] = {"loss": self.options.model["loss"]}
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            values = self.history.get(key, [])[-100:]
            if values:
                out[f"{key}_last100"] = round(float(np.mean(values)), 4)
        return out


class DCGANTrainer(GanTrainer):
    family = "dcgan"
    config_class = DCGANConfig
    default_model = {**GAN_DEFAULTS, "z_dim": 64, "width": 64}

    @classmethod
    def build_modules(cls, config: dict[str, Any]) -> dict[str, torch.nn.Module]:
        return {"generator": build_generator(config), "discriminator": Discriminator(DCGANConfig.from_dict(config))}
