"""GAN training: two networks, two optimisers, the lecture's loss zoo and tricks.

Losses (``loss`` option): "ns" (non-saturating), "lsgan" (least squares),
"wgan-gp" (critic with gradient penalty, lambda = ``gp_weight`` = 10) and "hinge".
Tricks: one-sided label smoothing (real targets 1 - ``label_smoothing``; ns and
lsgan), instance noise on both D inputs with a standard deviation decayed
linearly to 0 over ``instance_noise_steps``, ``d_steps`` D updates (each on a
fresh batch) per G update, an optional R1 penalty on real images, and G_ema,
the exponential moving average of G that checkpoints store as *the* weights.

Written against studio.training.trainer.Trainer (one model, one optimiser):
G is ``self.model`` with the base optimiser; D, its optimiser and G_ema are
added here and saved as training state, so a resumed run continues exactly.
D has no BatchNorm (safe under DistributedDataParallel, pytorch #175024).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from studio.core.checkpoint import Checkpoint
from studio.core.imaging import image_grid
from studio.data.datasets import check_dataset
from studio.families.dcgan.model import DCGANConfig, Discriminator, build_generator
from studio.training.trainer import Trainer

LOSSES = ("ns", "lsgan", "wgan-gp", "hinge")
ONLINE_PREFIX = "online/"
DISC_PREFIX = "disc/"
D_OPTIMIZER_PREFIX = "optim_d/"

GAN_DEFAULTS: dict[str, Any] = {
    "loss": "ns", "d_steps": 1, "label_smoothing": 0.0, "instance_noise": 0.0, "instance_noise_steps": 2000,
    "gp_weight": 10.0, "r1_gamma": 0.0, "ema": 0.999, "beta1": 0.5, "beta2": 0.999, "d_lr_mul": 1.0,
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


def r1_penalty(disc, real: torch.Tensor) -> torch.Tensor:
    """R1: the squared gradient norm of D on real images (Mescheder et al. 2018)."""
    x = real.detach().requires_grad_(True)
    grad, = torch.autograd.grad(disc(x).sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()


class GanTrainer(Trainer):
    """What every GAN family shares; a family supplies G, D, ``sample_fake`` and the data's shape."""

    def __init__(self, options, dataset):
        options.model = {**GAN_DEFAULTS, **self.default_model, **options.model}
        self._check_gan_options(options.model)
        super().__init__(options, dataset)
        cfg = self.options.model
        self.disc = self.build_discriminator(cfg).to(self.device)
        self.d_optimizer = torch.optim.Adam(self.disc.parameters(), lr=options.lr * float(cfg["d_lr_mul"]),
                                            betas=(float(cfg["beta1"]), float(cfg["beta2"])))
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.ema_decay = float(cfg["ema"])
        self.preview_z = torch.randn(16, int(cfg["z_dim"]), generator=torch.Generator().manual_seed(1))

    @staticmethod
    def _check_gan_options(cfg: dict[str, Any]) -> None:
        problems = []
        if cfg["loss"] not in LOSSES:
            problems.append(f"unknown loss '{cfg['loss']}' (choose {', '.join(LOSSES)})")
        if not (isinstance(cfg["d_steps"], int) and cfg["d_steps"] >= 1):
            problems.append("d_steps must be a whole number, at least 1")
        if not 0.0 <= float(cfg["label_smoothing"]) < 0.5:
            problems.append("label_smoothing must be in [0, 0.5)")
        if float(cfg["instance_noise"]) < 0 or int(cfg["instance_noise_steps"]) < 1:
            problems.append("instance_noise must be >= 0 and instance_noise_steps >= 1")
        if not 0.0 <= float(cfg["ema"]) < 1.0:
            problems.append("ema must be in [0, 1)")
        if problems:
            raise ValueError("; ".join(problems))

    # ---- what a GAN family provides --------------------------------------------------
    def build_discriminator(self, config: dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    def sample_fake(self, batch: int) -> torch.Tensor:
        """Images in [-1, 1] from the online G, with gradients (training-time tricks included)."""
        return self.model(torch.randn(batch, int(self.options.model["z_dim"]), device=self.device))

    @torch.no_grad()
    def sample_ema(self, z: torch.Tensor) -> torch.Tensor:
        return self.ema(z.to(self.device))

    def to_model_space(self, batch: torch.Tensor) -> torch.Tensor:
        return batch * 2.0 - 1.0

    def after_g_step(self) -> None:
        """Family bookkeeping after each G update (StyleGAN: w_avg)."""

    # ---- the step ------------------------------------------------------------------
    def build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.options.model
        return torch.optim.Adam(self.model.parameters(), lr=self.options.lr,
                                betas=(float(cfg["beta1"]), float(cfg["beta2"])))

    def instance_noise_std(self) -> float:
        cfg = self.options.model
        return float(cfg["instance_noise"]) * max(0.0, 1.0 - self.step / int(cfg["instance_noise_steps"]))

    def _noisy(self, x: torch.Tensor, std: float) -> torch.Tensor:
        return x + std * torch.randn_like(x) if std > 0 else x

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        cfg = self.options.model
        kind = cfg["loss"]
        d_lr = self.lr_at(self.step) * float(cfg["d_lr_mul"])
        for group in self.d_optimizer.param_groups:
            group["lr"] = d_lr
        std = self.instance_noise_std()
        self.disc.requires_grad_(True)
        for k in range(int(cfg["d_steps"])):
            real = self.to_model_space(batch if k == 0 else self.next_batch())
            with torch.no_grad():
                fake = self.sample_fake(real.shape[0])
            real_in, fake_in = self._noisy(real, std), self._noisy(fake, std)
            d_real, d_fake = self.disc(real_in), self.disc(fake_in)
            loss_d = d_loss(kind, d_real, d_fake, float(cfg["label_smoothing"]))
            if kind == "wgan-gp":
                loss_d = loss_d + float(cfg["gp_weight"]) * gradient_penalty(self.disc, real_in, fake_in)
            if float(cfg["r1_gamma"]) > 0:
                loss_d = loss_d + 0.5 * float(cfg["r1_gamma"]) * r1_penalty(self.disc, real_in)
            self.d_optimizer.zero_grad(set_to_none=True)
            loss_d.backward()
            self.d_optimizer.step()
        self.disc.requires_grad_(False)  # G's step needs D's input gradients only
        fake = self.sample_fake(real.shape[0])
        loss_g = g_loss(kind, self.disc(self._noisy(fake, std)))
        self.optimizer.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizer.step()
        self.after_g_step()
        self._update_ema()
        return {"d_loss": float(loss_d.detach()), "g_loss": float(loss_g.detach()),
                "d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean())}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up, so that early checkpoints are already usable.
        d = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)  # BatchNorm statistics and w_avg follow the online G

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        images = (self.sample_ema(self.preview_z).clamp(-1, 1) + 1.0) * 0.5
        return image_grid(images.cpu().numpy(), cols=8)

    def metrics(self) -> dict[str, Any]:
        """Loss averages over the last 100 steps (sample quality: ``studio.evaluation``, see checkpoints/)."""
        out: dict[str, Any] = {"loss": self.options.model["loss"]}
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            values = self.history.get(key, [])[-100:]
            if values:
                out[f"{key}_last100"] = round(float(np.mean(values)), 4)
        return out

    # ---- checkpoints: G_ema is the weights; online G, D and D's optimiser are state ----
    def to_checkpoint(self, with_training_state: bool = True) -> Checkpoint:
        ckpt = super().to_checkpoint(with_training_state)
        ckpt.weights = {k: v.detach().cpu().numpy() for k, v in self.ema.state_dict().items()}
        ckpt.config = dict(self.options.model)
        if with_training_state:
            for k, v in self.model.state_dict().items():
                ckpt.training_state[ONLINE_PREFIX + k] = v.detach().cpu().numpy()
            for k, v in self.disc.state_dict().items():
                ckpt.training_state[DISC_PREFIX + k] = v.detach().cpu().numpy()
            opt = self.d_optimizer.state_dict()
            for idx, slots in opt["state"].items():
                for key, value in slots.items():
                    tensor = value if torch.is_tensor(value) else torch.tensor(value)
                    ckpt.training_state[f"{D_OPTIMIZER_PREFIX}{idx}/{key}"] = tensor.detach().cpu().numpy()
            ckpt.extra["d_param_groups"] = opt["param_groups"]
        return ckpt

    def restore(self, ckpt: Checkpoint) -> None:
        super().restore(ckpt)  # loads the EMA weights into self.model
        self.ema.load_state_dict(self.model.state_dict())
        state = ckpt.training_state

        def prefixed(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith(prefix)}

        online = prefixed(ONLINE_PREFIX)
        if online:
            self.model.load_state_dict(online)
        disc = prefixed(DISC_PREFIX)
        if disc:
            self.disc.load_state_dict(disc)
        groups = ckpt.extra.get("d_param_groups")
        if groups:
            slots: dict[int, dict[str, torch.Tensor]] = {}
            for name, tensor in prefixed(D_OPTIMIZER_PREFIX).items():
                idx, key = name.split("/", 1)
                slots.setdefault(int(idx), {})[key] = tensor.to(self.device) if key != "step" else tensor
            self.d_optimizer.load_state_dict({"state": slots, "param_groups": groups})


class DCGANTrainer(GanTrainer):
    family = "dcgan"
    default_model = {"z_dim": 64, "width": 64}

    def build_model(self, config: dict[str, Any]):
        c, h, _ = self.dataset.shape
        config.setdefault("channels", c)
        config.setdefault("image_size", h)
        check_dataset(self.dataset, config["channels"], config["image_size"])
        return build_generator(config)

    def build_discriminator(self, config: dict[str, Any]):
        return Discriminator(DCGANConfig.from_dict(config))
