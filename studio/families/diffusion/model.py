"""A small UNet epsilon-predictor for DDPM / DDIM (Ho et al. 2020).

ResNet blocks with GroupNorm and SiLU, a sinusoidal embedding of the
(float) timestep added inside every block, and optional single-head
self-attention at the low resolutions. Default layout for 28x28 MNIST:
28 -> 14 -> 7 with attention only at 7x7, base width 32.

The model works in [-1, 1] image space: ``forward(x_t, t)`` predicts the
noise epsilon that was mixed into x_t. Data in [0, 1] is scaled by the
trainer (``to_model_space``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class UNetConfig:
    channels: int = 1
    image_size: int = 28  # 28 or 32 (any size divisible by 2**(levels-1))
    base: int = 32  # channels at full resolution
    mults: tuple[int, ...] = (1, 2, 2)  # per level; each level after the first halves H, W
    attn_res: tuple[int, ...] = (7,)  # resolutions that get self-attention
    mid_attn: bool = True  # self-attention in the middle block (lowest resolution)
    groups: int = 8
    dropout: float = 0.0
    # Noise schedule the model is trained with (the samplers read these).
    schedule: str = "linear"  # "linear" (DDPM) or "cosine" (Nichol & Dhariwal)
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mults"] = list(self.mults)
        d["attn_res"] = list(self.attn_res)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "extra"}
        for k in ("mults", "attn_res"):
            if k in known:
                v = known[k]
                known[k] = tuple(int(x) for x in (v if isinstance(v, (list, tuple)) else [v]))
        return cls(**known)


def to_model_space(x01: torch.Tensor) -> torch.Tensor:
    return x01 * 2.0 - 1.0


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoids of a float timestep (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(min(groups, cout), cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual."""

    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) * (c ** -0.5), dim=-1)  # (b, hw, hw)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj(out)


class Level(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, attn: bool, groups: int, dropout: float):
        super().__init__()
        self.res = ResBlock(cin, cout, temb, groups, dropout)
        self.attn = SelfAttention(cout, groups) if attn else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.res(x, emb)
        return self.attn(x) if self.attn is not None else x


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        levels = len(cfg.mults)
        if cfg.image_size % (2 ** (levels - 1)):
            raise ValueError(f"image size {cfg.image_size} is not divisible by {2 ** (levels - 1)} "
                             f"({levels} resolution levels)")
        self.temb_dim = 4 * cfg.base
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base, self.temb_dim), nn.SiLU(), nn.Linear(self.temb_dim, self.temb_dim))
        self.conv_in = nn.Conv2d(cfg.channels, cfg.base, 3, padding=1)
        chans = [cfg.base * m for m in cfg.mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        res, cin = cfg.image_size, cfg.base
        for i, c in enumerate(chans):
            self.down.append(Level(cin, c, self.temb_dim, res in cfg.attn_res, cfg.groups, cfg.dropout))
            cin = c
            if i < levels - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                res //= 2
        self.mid1 = ResBlock(cin, cin, self.temb_dim, cfg.groups, cfg.dropout)
        self.mid_attn = SelfAttention(cin, cfg.groups) if cfg.mid_attn else nn.Identity()
        self.mid2 = ResBlock(cin, cin, self.temb_dim, cfg.groups, cfg.dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(levels)):
            c = chans[i]
            self.up.append(Level(cin + c, c, self.temb_dim, res in cfg.attn_res, cfg.groups, cfg.dropout))
            cin = c
            if i > 0:  # the conv after upsampling also narrows to the next level's width
                self.upsample.append(nn.Conv2d(c, chans[i - 1], 3, padding=1))
                cin = chans[i - 1]
                res *= 2
        self.norm_out = nn.GroupNorm(min(cfg.groups, cin), cin)
        self.conv_out = nn.Conv2d(cin, cfg.channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t (B, C, H, W) in model space, t (B,) float timesteps -> predicted epsilon."""
        emb = self.time_mlp(timestep_embedding(t, self.cfg.base))
        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, level in enumerate(self.up):
            h = level(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def build_unet(config: dict) -> UNet:
    return UNet(UNetConfig.from_dict(config))
