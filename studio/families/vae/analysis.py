"""What the explorer explains with numbers: KL per latent dimension, the ELBO of one image.

Both run on the renderer thread like the other VAE requests (``ops.py``) and
use the same decode/encode graphs, so they work on either backend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool

USAGE_IMAGES = 500  # digits averaged over for the KL per dimension
ELBO_SAMPLES = 16  # z ~ q(z|x) samples for the reconstruction term's expectation


@dataclass(frozen=True)
class VaeUsage:
    """Average KL(q(z|x) || p(z)) per latent dimension over a batch of images."""

    target: Target
    data: str | None = None  # None: the shared MNIST digits when present and the right size
    count: int = USAGE_IMAGES


@dataclass(frozen=True)
class VaeElbo:
    """-ELBO = reconstruction + KL for one image: ``pixels`` ((C, H, W) in [0, 1]) or decode(``z``)."""

    target: Target
    z: tuple[float, ...] | None = None
    pixels: bytes | None = None  # float32 (C, H, W) buffer: the request stays a plain value
    about: str = "the decoded image"


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mu, sigma^2) || N(0, 1)) per example and dimension, in nats (closed form)."""
    return 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1.0 - logvar)


def bernoulli_nll(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """-log p(x | probabilities p) summed over the pixels of each image, in nats."""
    p = np.clip(p.astype(np.float64), 1e-7, 1.0 - 1e-7)
    x = x.astype(np.float64)
    nll = -(x * np.log(p) + (1.0 - x) * np.log1p(-p))
    return nll.reshape(nll.shape[0], -1).sum(axis=1)


@dataclass(frozen=True)
class DimUsage:
    """Average KL of each latent dimension (nats) and the images it was measured on."""

    kl: np.ndarray
    source: str


@dataclass(frozen=True)
class ElboParts:
    """One image's -ELBO split into reconstruction and KL (nats), with its posterior."""

    recon: float
    kl: float
    mu: np.ndarray
    sigma: np.ndarray
    about: str


def _run(pool: RuntimePool, target: Target, graph: str, inputs: dict[str, np.ndarray]):
    runtime = pool.get(target.checkpoint, family="vae")
    # wait=False: a fresh checkpoint's sums run on torch while its ONNX export runs.
    return runtime.run(graph, inputs, target.backend, target.device, wait=False)


@lru_cache(maxsize=4)
def _last_images(data: str | None, stamp: tuple, channels: int, size: int, count: int):
    """The dataset's last ``count`` images and its name, or None if it does not fit the model.

    Cached by file and modification time: switching between checkpoints must not read and
    decompress the whole dataset again for the same few hundred images.
    """
    from studio.data.datasets import DatasetError, check_dataset, open_dataset

    try:
        ds = open_dataset(data)
        check_dataset(ds, channels, size)
    except DatasetError:
        return None
    n = min(count, len(ds))
    return np.ascontiguousarray(ds.images[-n:]), ds.name


def _stamp(data: str | None) -> tuple:
    from studio.core.paths import default_mnist

    path = Path(data) if data is not None else default_mnist()
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _usage_images(pool: RuntimePool, req: VaeUsage) -> tuple[np.ndarray, str]:
    """The images to average over and what they are."""
    cfg = pool.get(req.target.checkpoint, family="vae").config
    found = _last_images(req.data, _stamp(req.data), int(cfg["channels"]), int(cfg["image_size"]), req.count)
    if found is not None:
        images, name = found
        # The last digits: the shipped checkpoints held these out of training.
        what = "MNIST digits" if req.data is None else f"images of {name}"
        return images, f"{len(images)} held-out {what}"
    rng = np.random.default_rng(0)
    z = rng.standard_normal((req.count, int(cfg["latent_dim"]))).astype(np.float32)
    out, _ = _run(pool, req.target, "decode", {"z": z})
    return out["image"], f"{req.count} decoded prior samples, re-encoded"


USAGE_CHUNK = 100  # images encoded per renderer turn: the sliders' decodes slip in between


def usage(pool: RuntimePool, req: VaeUsage) -> Iterator[Output | None]:
    images, source = _usage_images(pool, req)
    kl_sum, ms = None, 0.0
    for start in range(0, len(images), USAGE_CHUNK):
        yield None
        t0 = time.perf_counter()
        batch = np.ascontiguousarray(images[start:start + USAGE_CHUNK], dtype=np.float32)
        out, runner = _run(pool, req.target, "encode", {"image": batch})
        kl = kl_per_dim(out["mu"], out["logvar"]).sum(axis=0)
        kl_sum = kl if kl_sum is None else kl_sum + kl
        ms += (time.perf_counter() - t0) * 1000.0
    yield Output.ran(runner, None, DimUsage(kl_sum / len(images), source), ms)


def elbo(pool: RuntimePool, req: VaeElbo) -> Output:
    t0 = time.perf_counter()
    if req.pixels is not None:
        cfg = pool.get(req.target.checkpoint, family="vae").config
        shape = (int(cfg["channels"]), int(cfg["image_size"]), int(cfg["image_size"]))
        x = np.frombuffer(req.pixels, dtype=np.float32).reshape((1,) + shape)
    elif req.z is not None:
        out, _ = _run(pool, req.target, "decode", {"z": np.asarray(req.z, np.float32)[None]})
        x = out["image"]
    else:
        raise ValueError("an ELBO needs an image or a latent point")
    enc, runner = _run(pool, req.target, "encode", {"image": x.astype(np.float32)})
    mu, logvar = enc["mu"], enc["logvar"]
    sigma = np.exp(0.5 * logvar)
    # E_q[-log p(x|z)] by Monte Carlo with a fixed seed: the same image gives the same number.
    eps = np.random.default_rng(0).standard_normal((ELBO_SAMPLES, mu.shape[1])).astype(np.float32)
    z = mu + sigma * eps
    dec, _ = _run(pool, req.target, "decode", {"z": z})
    recon = float(bernoulli_nll(np.repeat(x, ELBO_SAMPLES, axis=0), dec["image"]).mean())
    kl = float(kl_per_dim(mu, logvar).sum())
    ms = (time.perf_counter() - t0) * 1000.0
    return Output.ran(runner, None, ElboParts(recon, kl, mu[0], sigma[0], req.about), ms)


HANDLERS = {VaeUsage: usage, VaeElbo: elbo}


def register(renderer, pool: RuntimePool) -> None:
    for request_type, fn in HANDLERS.items():
        renderer.register(request_type, lambda req, fn=fn: fn(pool, req))
