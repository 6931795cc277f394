"""VAE requests and their renderer handlers: decode, manifold, encode, interpolate, scatter."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from studio.core.imaging import image_grid, to_uint8
from studio.engine.latent import interpolate, plane_grid
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool


@dataclass(frozen=True)
class VaeDecode:
    target: Target
    z: tuple[float, ...]


@dataclass(frozen=True)
class VaeManifold:
    target: Target
    base_z: tuple[float, ...]
    dims: tuple[int, int] = (0, 1)
    grid: int = 15
    span: float = 3.0


@dataclass(frozen=True)
class VaeEncodeImage:
    target: Target
    source: str | bytes  # a file path, or encoded image bytes from the clipboard


@dataclass(frozen=True)
class VaeInterpolate:
    target: Target
    z0: tuple[float, ...]
    z1: tuple[float, ...]
    steps: int = 10
    mode: str = "linear"


@dataclass(frozen=True)
class VaeEncodeDataset:
    target: Target
    data: str | None  # None: the shared MNIST digits
    limit: int = 3000


def _decode(pool: RuntimePool, target: Target, z: np.ndarray):
    runtime = pool.get(target.checkpoint, family="vae")
    t0 = time.perf_counter()
    out, runner = runtime.run("decode", {"z": z.astype(np.float32)}, target.backend, target.device)
    return out["image"], runner, (time.perf_counter() - t0) * 1000.0


def _encode(pool: RuntimePool, target: Target, x: np.ndarray):
    runtime = pool.get(target.checkpoint, family="vae")
    out, runner = runtime.run("encode", {"image": x.astype(np.float32)}, target.backend, target.device)
    return out["mu"], out["logvar"], runner


def decode(pool: RuntimePool, req: VaeDecode) -> Output:
    images, runner, ms = _decode(pool, req.target, np.asarray(req.z, dtype=np.float32)[None])
    return Output(to_uint8(images[0]), {"z": req.z}, runner.name, runner.device, ms)


def manifold(pool: RuntimePool, req: VaeManifold) -> Output:
    zs = plane_grid(np.asarray(req.base_z, dtype=np.float32), req.dims, req.grid, req.span)
    images, runner, ms = _decode(pool, req.target, zs)
    grid = image_grid(images, cols=req.grid, pad=0)
    return Output(grid, {"span": req.span, "grid": req.grid, "dims": req.dims}, runner.name, runner.device, ms)


def encode_image(pool: RuntimePool, req: VaeEncodeImage) -> Output:
    from studio.data.images import load_image, to_digit_input

    cfg = pool.get(req.target.checkpoint, family="vae").config
    size = int(cfg["image_size"])
    channels = int(cfg["channels"])
    pixels = load_image(req.source, size=(size, size), channels=channels)
    if channels == 1:
        pixels = to_digit_input(pixels)[None]
    else:
        pixels = pixels.transpose(2, 0, 1)
    t0 = time.perf_counter()
    mu, logvar, runner = _encode(pool, req.target, pixels[None])
    recon, _, _ = _decode(pool, req.target, mu)
    ms = (time.perf_counter() - t0) * 1000.0
    pair = image_grid(np.stack([pixels, recon[0]]), cols=2, pad=1)
    name = req.source if isinstance(req.source, str) else "clipboard image"
    return Output(pair, {"mu": tuple(float(v) for v in mu[0]), "sigma": np.exp(0.5 * logvar[0]).tolist(),
                         "source": name, "input": to_uint8(pixels), "reconstruction": to_uint8(recon[0])},
                  runner.name, runner.device, ms)


def interpolation(pool: RuntimePool, req: VaeInterpolate) -> Output:
    zs = interpolate(np.asarray(req.z0, np.float32), np.asarray(req.z1, np.float32), req.steps, req.mode)
    images, runner, ms = _decode(pool, req.target, zs)
    strip = image_grid(images, cols=req.steps, pad=1)
    return Output(strip, {"mode": req.mode, "steps": req.steps}, runner.name, runner.device, ms)


def encode_dataset(pool: RuntimePool, req: VaeEncodeDataset) -> Output:
    from studio.data.datasets import check_dataset, open_dataset

    cfg = pool.get(req.target.checkpoint, family="vae").config
    ds = open_dataset(req.data)
    check_dataset(ds, int(cfg["channels"]), int(cfg["image_size"]))
    n = min(req.limit, len(ds))
    t0 = time.perf_counter()
    mus = []
    for start in range(0, n, 500):
        mu, _, runner = _encode(pool, req.target, ds.images[start: min(n, start + 500)])
        mus.append(mu)
    ms = (time.perf_counter() - t0) * 1000.0
    labels = ds.labels[:n] if ds.labels is not None else None
    return Output(None, {"mu": np.concatenate(mus), "labels": labels, "name": ds.name},
                  runner.name, runner.device, ms)


HANDLERS = {
    VaeDecode: decode,
    VaeManifold: manifold,
    VaeEncodeImage: encode_image,
    VaeInterpolate: interpolation,
    VaeEncodeDataset: encode_dataset,
}


def register(renderer, pool: RuntimePool) -> None:
    """Register the VAE handlers on a renderer (or anything with ``register``)."""
    for request_type, fn in HANDLERS.items():
        renderer.register(request_type, lambda req, fn=fn: fn(pool, req))
