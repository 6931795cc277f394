"""Small CycleGAN checkpoints for tests (their session fixtures are shared through conftest.py).

``make_cyclegan_checkpoint`` writes randomly initialised generators in the shipped layout;
with ``sidecars=True`` their ONNX files are exported beside it at once (as shipped checkpoints
have them), so no GUI test waits for the exporter. ``digits=True`` (the default) marks it a
digit model: its results carry the digit classifier's readings.
"""

from __future__ import annotations

import pytest

TINY = {"width": 4, "blocks": 1, "image_size": 32, "channels": 1}


def make_cyclegan_checkpoint(path, seed: int = 0, sidecars: bool = False, digits: bool = True,
                             semantic_weight: float = 0.0, metrics: dict | None = None, **config):
    import torch

    from studio.core.checkpoint import Checkpoint, save_checkpoint
    from studio.engine.export import export_checkpoint
    from studio.families.cyclegan.model import CycleGANConfig, CycleGenerators

    torch.manual_seed(seed)
    cfg = CycleGANConfig.from_dict({**TINY, **config})
    model = CycleGenerators(cfg).eval()
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    full = {**cfg.to_dict(), "digits": digits, "domain_a": "handwritten", "domain_b": "printed",
            "semantic_weight": semantic_weight}
    ckpt = Checkpoint("cyclegan", full, weights, "random", 0, metrics=dict(metrics or {}))
    if sidecars:
        return export_checkpoint(ckpt, path)[0]
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="session")
def cyclegan_path(tmp_path_factory):
    """A tiny random digit CycleGAN (1 channel, 32x32) with its two ONNX graphs beside it."""
    return make_cyclegan_checkpoint(tmp_path_factory.mktemp("cyclegan") / "tiny_cyclegan.safetensors",
                                    sidecars=True)


@pytest.fixture(scope="session")
def cyclegan_rgb_path(tmp_path_factory):
    """A tiny random colour CycleGAN (3 channels, not digits), without ONNX files."""
    return make_cyclegan_checkpoint(tmp_path_factory.mktemp("cyclegan_rgb") / "tiny_cyclegan_rgb.safetensors",
                                    digits=False, channels=3)
