"""Convolutional VAE (Kingma & Welling) with a beta weight on the KL (beta-VAE)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class VAEConfig:
    latent_dim: int = 2
    channels: int = 1
    image_size: int = 28  # 28 (MNIST) or 32
    width: int = 32  # channels of the first conv; the second has 2x
    hidden: int = 128
    beta: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


class Encoder(nn.Module):
    """x in [0, 1], (B, C, S, S) -> (mu, logvar), each (B, latent_dim)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        w = cfg.width
        self.features = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * w * (cfg.image_size // 4) ** 2, cfg.hidden), nn.LeakyReLU(0.2),
        )
        self.mu = nn.Linear(cfg.hidden, cfg.latent_dim)
        self.logvar = nn.Linear(cfg.hidden, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z (B, latent_dim) -> Bernoulli means in [0, 1], (B, C, S, S)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        w, s = cfg.width, cfg.image_size // 4
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, 2 * w * s * s), nn.ReLU(),
        )
        self.unflatten = nn.Unflatten(1, (2 * w, s, s))
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1),
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.unflatten(self.fc(z)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        # z = mu + sigma * eps keeps the sample differentiable in mu and sigma.
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encoder(x)
        z = self.reparameterize(mu, logvar)
        return self.decoder.logits(z), mu, logvar

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO per example: Bernoulli reconstruction + beta * analytic KL."""
        logits, mu, logvar = self(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        # KL(N(mu, sigma^2) || N(0, I)) in closed form.
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
        total = recon + self.cfg.beta * kl
        return {"loss": total, "recon": recon, "kl": kl}


def build_vae(config: dict) -> VAE:
    return VAE(VAEConfig.from_dict(config))
