"""A compact StyleGAN for 32x32 images (Karras et al. 2019, with StyleGAN2's modulation).

z -> mapping MLP -> w; a learned 4x4 constant; two style layers per resolution
(4, 8, 16, 32), hence 8 per-layer styles w[0..7], coarse to fine. Each layer is a
modulated 3x3 convolution written the non-fused way (scale the input channels
by the style, convolve with the fixed weight, then demodulate), so the batch
stays dynamic in ONNX; the fused grouped convolution would freeze it
(onnx/onnx #3843, pytorch #105910). Each layer adds its own noise input, scaled
by learned per-channel strengths. Truncation pulls w towards ``w_avg`` (tracked
during training) on the layers below a cutoff.

Weights use the equalised learning rate of progressive GANs: stored at unit
variance, scaled by 1/sqrt(fan_in) on use.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from studio.families.dcgan.model import with_minibatch_std
from studio.families.stylegan.config import StyleGANConfig

LRELU_GAIN = math.sqrt(2.0)


class EqualLinear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((fan_out,), float(bias_init) / lr_mul))
        self.scale = lr_mul / math.sqrt(fan_in)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): pixel norm, then an MLP with a 100x lower learning rate."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul) for a, b in zip(dims, dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2) * LRELU_GAIN
        return x


class ModulatedConv(nn.Module):
    """The style layer: x*s, a fixed-weight conv, demodulation; then noise, bias, activation."""

    def __init__(self, w_dim: int, c_in: int, c_out: int, upsample: bool = False, kernel: int = 3,
                 demodulate: bool = True, activate: bool = True, noise: bool = True):
        super().__init__()
        self.upsample, self.demodulate, self.activate = upsample, demodulate, activate
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)  # styles start at 1: plain convs
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.padding = kernel // 2
        # Learned per-channel noise strengths, zero at the start as in StyleGAN.
        self.noise_strength = nn.Parameter(torch.zeros(c_out)) if noise else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        style = self.affine(w)  # (B, c_in)
        weight = self.weight * self.scale
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = x * style[:, :, None, None]
        x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # ||W * s|| per output channel, from the style: (B, c_in) @ (c_in, c_out).
            energy = style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t()
            x = x * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        if noise is not None and self.noise_strength is not None:
            x = x + self.noise_strength[None, :, None, None] * noise
        x = x + self.bias[None, :, None, None]
        if self.activate:
            x = F.leaky_relu(x, 0.2) * LRELU_GAIN
        return x


class SynthesisNetwork(nn.Module):
    """Per-layer styles (B, L, w_dim) and noise maps -> image in [-1, 1], (B, C, S, S)."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.widths
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        layers = []
        c_prev = widths[0]
        for i, c in enumerate(widths):
            layers.append(ModulatedConv(cfg.w_dim, c_prev, c, upsample=i > 0))
            layers.append(ModulatedConv(cfg.w_dim, c, c))
            c_prev = c
        self.layers = nn.ModuleList(layers)
        # The output layer takes the finest style: colour is a fine-scale attribute.
        self.to_rgb = ModulatedConv(cfg.w_dim, c_prev, cfg.channels, kernel=1, demodulate=False,
                                    activate=False, noise=False)

    def noise_shapes(self, batch: int = 1) -> list[tuple[int, int, int, int]]:
        return [(batch, 1, self.cfg.layer_resolution(i), self.cfg.layer_resolution(i))
                for i in range(self.cfg.num_layers)]

    def forward(self, ws: torch.Tensor, noises: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1] != len(self.layers):
            raise ValueError(f"expected styles shaped (B, {len(self.layers)}, w_dim), got {tuple(ws.shape)}")
        if noises is None:
            noises = [None] * len(self.layers)
        # A copy, not an expand() view: a view of a parameter made under inference_mode claims
        # requires_grad without a grad_fn, which breaks autograd hooks (FlopCounterMode's module tracker).
        x = self.const.repeat(ws.shape[0], 1, 1, 1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noises[i])
        return self.to_rgb(x, ws[:, -1])


class StyleGenerator(nn.Module):
    """Mapping + synthesis, and the running mean of w used by truncation."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers

    def random_noise(self, batch: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> list[torch.Tensor]:
        return [torch.randn(shape, generator=generator).to(device) for shape in self.synthesis.noise_shapes(batch)]

    def truncate(self, ws: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi (w - w_avg) on the layers below ``cutoff`` (all layers if None)."""
        if psi == 1.0:
            return ws
        cutoff = self.num_layers if cutoff is None else cutoff
        out = ws.clone()
        out[:, :cutoff] = self.w_avg + psi * (ws[:, :cutoff] - self.w_avg)
        return out

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """(B, w_dim) -> the same style on every layer, (B, L, w_dim)."""
        return w[:, None, :].expand(-1, self.num_layers, -1)

    def forward(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None,
                noises: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        ws = self.truncate(self.broadcast(self.mapping(z)), psi, cutoff)
        return self.synthesis(ws, noises)


def build_stylegan(config: dict) -> StyleGenerator:
    return StyleGenerator(StyleGANConfig.from_dict(config))


class StyleDiscriminator(nn.Module):
    """Strided-convolution discriminator with a minibatch-stddev feature; no normalisation layers.

    Plain strided convolutions (as in DCGAN) rather than StyleGAN's residual D:
    a fraction of the cost, which is what lets this train on a CPU. Without
    BatchNorm there are no buffers to broadcast, so DistributedDataParallel cannot
    hit the in-place buffer error of pytorch #175024.
    """

    def __init__(self, cfg: StyleGANConfig, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c, size = cfg.channels, width, cfg.image_size
        while size > 4:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in, c, size = c, min(2 * c, 256), size // 2
        self.features = nn.Sequential(*layers)
        self.final_conv = nn.Conv2d(c_in + 1, c_in, 3, padding=1)
        self.out = nn.Linear(c_in * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # Minibatch standard deviation: lets D see the lack of variety of a collapsed G.
        x = F.leaky_relu(self.final_conv(with_minibatch_std(x)), 0.2)
        return self.out(x.flatten(1)).squeeze(1)
