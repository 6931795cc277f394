"""VAE requests, their renderer handlers (decode, manifold, encode, interpolate, scatter) and what
each handler returns with its image: a small typed payload per view."""

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


# ---- what the handlers return (RenderResult.payload) ---------------------------------
@dataclass(frozen=True)
class VaeDecoded:
    z: tuple[float, ...]


@dataclass(frozen=True)
class ManifoldGrid:
    span: float
    grid: int
    dims: tuple[int, int]


@dataclass(frozen=True)
class VaeEncoded:
    mu: tuple[float, ...]
    sigma: tuple[float, ...]
    source: str  # the file, or "clipboard image"
    input: np.ndarray  # uint8, what the encoder saw
    reconstruction: np.ndarray  # uint8, decode(mu)


@dataclass(frozen=True)
class InterpolationStrip:
    mode: str
    steps: int


@dataclass(frozen=True)
class DatasetLatents:
    mu: np.ndarray  # (N, latent_dim)
    labels: np.ndarray | None
    name: str


# ---- handlers -------------------------------------------------------------------------
def _decode(pool: RuntimePool, target: Target, z: np.ndarray):
    runtime = pool.get(target.checkpoint, family="vae")
    t0 = time.perf_counter()
    out, runner = runtime.run("decode", {"z": z.astype(np.float32)}, target.backend, target.device, wait=False)
    return out["image"], runner, (time.perf_counter() - t0) * 1000.0


def _encode(pool: RuntimePool, target: Target, x: np.ndarray):
    runtime = pool.get(target.checkpoint, family="vae")
    out, runner = runtime.run("encode", {"image": x.astype(np.float32)}, target.backend, target.device,
                              wait=False)
    return out["mu"], out["logvar"], runner


def decode(pool: RuntimePool, req: VaeDecode) -> Output:
    images, runner, ms = _decode(pool, req.target, np.asarray(req.z, dtype=np.float32)[None])
    return Output.ran(runner, to_uint8(images[0]), VaeDecoded(tuple(req.z)), ms)


def manifold(pool: RuntimePool, req: VaeManifold) -> Output:
    zs = plane_grid(np.asarray(req.base_z, dtype=np.float32), req.dims, req.grid, req.span)
    images, runner, ms = _decode(pool, req.target, zs)
    grid = image_grid(images, cols=req.grid, pad=0)
    return Output.ran(runner, grid, ManifoldGrid(req.span, req.grid, tuple(req.dims)), ms)


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
    mu, logvar, encoder = _encode(pool, req.target, pixels[None])
    recon, decoder, _ = _decode(pool, req.target, mu)
    ms = (time.perf_counter() - t0) * 1000.0
    pair = image_grid(np.stack([pixels, recon[0]]), cols=2, pad=1)
    name = req.source if isinstance(req.source, str) else "clipboard image"
    payload = VaeEncoded(tuple(float(v) for v in mu[0]), tuple(float(v) for v in np.exp(0.5 * logvar[0])),
                         name, to_uint8(pixels), to_uint8(recon[0]))
    out = Output.ran(decoder, pair, payload, ms)
    if encoder.name != decoder.name:  # one graph exported already, the other not yet: say both
        out.backend = f"{encoder.name}+{decoder.name}"
    out.export_pending = out.export_pending or bool(getattr(encoder, "export_pending", False))
    return out


def interpolation(pool: RuntimePool, req: VaeInterpolate) -> Output:
    zs = interpolate(np.asarray(req.z0, np.float32), np.asarray(req.z1, np.float32), req.steps, req.mode)
    images, runner, ms = _decode(pool, req.target, zs)
    strip = image_grid(images, cols=req.steps, pad=1)
    return Output.ran(runner, strip, InterpolationStrip(req.mode, req.steps), ms)


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
    return Output.ran(runner, None, DatasetLatents(np.concatenate(mus), labels, ds.name), ms)


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
