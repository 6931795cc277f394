"""Shared fixtures. Qt runs headless; exports go to a per-session cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The small GAN and CycleGAN checkpoints (ONNX sidecars exported once a session): defined here, so
# every test module shares one of each; imported into each module, each would export its own.
from cyclegan_fixtures import cyclegan_path, cyclegan_rgb_path  # noqa: E402, F401
from gan_fixtures import dcgan_path, stylegan_path  # noqa: E402, F401

MNIST = REPO.parent / "shared" / "datasets" / "mnist"
SHIPPED_VAE_2D = REPO / "studio" / "checkpoints" / "vae_mnist_2d.safetensors"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("studio-cache")
    old = os.environ.get("GENERATIVE_STUDIO_CACHE")
    os.environ["GENERATIVE_STUDIO_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("GENERATIVE_STUDIO_CACHE", None)
    else:
        os.environ["GENERATIVE_STUDIO_CACHE"] = old


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Each test's window remembers into its own file, never the user's settings."""
    path = tmp_path / "studio-settings.ini"
    monkeypatch.setenv("GENERATIVE_STUDIO_SETTINGS", str(path))
    return path


@pytest.fixture(scope="session")
def mnist_small():
    """The first 512 shared MNIST digits (never copied into the repo)."""
    from studio.data.datasets import ImageDataset, open_dataset

    if not MNIST.exists():
        pytest.skip("the shared MNIST digits are not present")
    ds = open_dataset(MNIST)
    return ImageDataset(ds.images[:512], ds.labels[:512], "mnist-512")


@pytest.fixture(scope="session")
def tiny_vae_path(tmp_path_factory):
    """A small randomly initialised 3-D VAE checkpoint, with no ONNX files beside it."""
    import torch

    from studio.families.vae.model import VAE, VAEConfig
    from studio.core.checkpoint import Checkpoint, save_checkpoint

    torch.manual_seed(0)
    cfg = VAEConfig(latent_dim=3, width=8, hidden=32)
    model = VAE(cfg)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("ckpt") / "tiny_vae.safetensors"
    save_checkpoint(Checkpoint("vae", cfg.to_dict(), weights, "random", 0), path)
    return path


@pytest.fixture(scope="session")
def vae_2d_path():
    if not SHIPPED_VAE_2D.exists():
        pytest.fail(f"shipped checkpoint missing: {SHIPPED_VAE_2D}")
    return SHIPPED_VAE_2D


def images_differ(a: np.ndarray, b: np.ndarray, threshold: float = 1.0) -> bool:
    """Mean absolute difference of two uint8 images above ``threshold`` grey levels."""
    return a.shape != b.shape or float(np.abs(a.astype(float) - b.astype(float)).mean()) > threshold
