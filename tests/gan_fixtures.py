"""Small GAN checkpoints for the GAN tests (their session fixtures are shared through conftest.py).

The session fixtures write their ONNX sidecars at once (as shipped checkpoints
have them): the exporter takes tens of seconds on a busy CPU, which would
otherwise land inside whichever GUI test renders first.
"""

from __future__ import annotations

import pytest


def make_stylegan_checkpoint(path, seed: int = 0, sidecars: bool = False, **config):
    """A randomly initialised compact StyleGAN with live noise strengths and a measured w_avg.

    A fresh model's noise strengths are zero (as in StyleGAN) and its w_avg is
    untracked; a trained one has both, and the tests need both.
    """
    import torch

    from studio.core.checkpoint import Checkpoint
    from studio.families.stylegan.model import StyleGANConfig, StyleGenerator

    torch.manual_seed(seed)
    cfg = StyleGANConfig.from_dict({"widths": [32, 32, 16, 16], **config})
    model = StyleGenerator(cfg).eval()
    with torch.no_grad():
        for layer in model.synthesis.layers:
            layer.noise_strength.copy_(0.3 + 0.2 * torch.rand_like(layer.noise_strength))
        model.w_avg.copy_(model.mapping(torch.randn(2000, cfg.z_dim)).mean(dim=0))
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return _save(Checkpoint("stylegan", cfg.to_dict(), weights, "random", 0), path, sidecars)


def make_dcgan_checkpoint(path, seed: int = 0, sidecars: bool = False, **config):
    import torch

    from studio.core.checkpoint import Checkpoint
    from studio.families.dcgan.model import DCGANConfig, Generator

    torch.manual_seed(seed)
    cfg = DCGANConfig.from_dict({"width": 16, **config})
    model = Generator(cfg)
    with torch.no_grad():  # BatchNorm statistics as after training, not the identity of a fresh layer
        model.train()(torch.randn(256, cfg.z_dim))
    model.eval()
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return _save(Checkpoint("dcgan", cfg.to_dict(), weights, "random", 0), path, sidecars)


def _save(ckpt, path, sidecars: bool):
    from studio.core.checkpoint import save_checkpoint
    from studio.engine.export import export_checkpoint

    if sidecars:
        return export_checkpoint(ckpt, path)[0]
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="session")
def stylegan_path(tmp_path_factory):
    return make_stylegan_checkpoint(tmp_path_factory.mktemp("stylegan") / "tiny_stylegan.safetensors", sidecars=True)


@pytest.fixture(scope="session")
def dcgan_path(tmp_path_factory):
    return make_dcgan_checkpoint(tmp_path_factory.mktemp("dcgan") / "tiny_dcgan.safetensors", sidecars=True)
