"""VAE requests, their renderer handlers (decode, manifold, encode, interpolate, scatter) and what
each handler returns with its image: a small typed payload per view."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from studio.core.imaging import image_grid, to_uint8
from studio.engine.latent import interpolate, plane_grid, sample_from_prior
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


# The map's decodes run in a few chunks, so a slider's single decode on another channel
# waits for one chunk at most, never for the whole map.
MANIFOLD_CHUNKS = 3


def manifold(pool: RuntimePool, req: VaeManifold) -> Iterator[Output | None]:
    zs = plane_grid(np.asarray(req.base_z, dtype=np.float32), req.dims, req.grid, req.span)
    parts, ms = [], 0.0
    for i, chunk in enumerate(np.array_split(zs, MANIFOLD_CHUNKS)):
        if i:
            yield None  # the other channels' turn
        images, runner, chunk_ms = _decode(pool, req.target, chunk)
        parts.append(images)
        ms += chunk_ms
    grid = image_grid(np.concatenate(parts), cols=req.grid, pad=0)
    yield Output.ran(runner, grid, ManifoldGrid(req.span, req.grid, tuple(req.dims)), ms)


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
    ds = with_classifier_labels(ds, n, pool)  # unlabelled digits: colour the scatter by what the classifier reads
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


# ---- evaluation: prior samples and the held-out ELBO ------------------------------------

def sample_for_evaluation(runtime, n: int, seed: int = 0, backend: str = "onnx", device: str = "auto",
                          batch_size: int = 500, progress=None) -> tuple[np.ndarray, float]:
    """``n`` images decoded from z ~ N(0, I): float32 (n, C, H, W) in [0, 1], and ms per image.

    The decoder's Bernoulli means are the images (no pixel sampling), as the panel shows them.
    Only the decoder calls are timed.
    """
    return sample_from_prior(runtime, "decode", int(runtime.config["latent_dim"]), n, seed, backend, device,
                             batch_size, progress)


def heldout_likelihood(runtime, images: np.ndarray, seed: int = 0, batch_size: int = 500) -> dict:
    """The negative ELBO of ``images`` (float (N, C, H, W) in [0, 1]), in nats and bits/dim.

    -ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) with beta = 1 whatever beta the model was
    trained with: an upper bound on -log p(x), one z drawn per image from a seeded generator.
    """
    import torch
    from torch.nn import functional as F

    model = runtime.torch_model()
    x_all = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    cfg = runtime.config
    expected = (int(cfg["channels"]), int(cfg["image_size"]), int(cfg["image_size"]))
    if tuple(x_all.shape[1:]) != expected:
        raise ValueError(f"the images are {tuple(x_all.shape[1:])}, the VAE takes {expected}")
    g = torch.Generator().manual_seed(int(seed))
    recon_sum = kl_sum = 0.0
    with torch.inference_mode():
        for start in range(0, len(x_all), batch_size):
            x = x_all[start: start + batch_size]
            mu, logvar = model.encoder(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
            logits = model.decoder.logits(z)
            recon_sum += float(F.binary_cross_entropy_with_logits(logits, x, reduction="sum"))
            kl_sum += float(-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
    n = len(x_all)
    nats = (recon_sum + kl_sum) / n
    dims = int(np.prod(expected))
    return {"bound": "negative ELBO (upper bound on -log p(x))", "nats": nats,
            "bits_per_dim": float(nats / (dims * np.log(2.0))), "recon_nats": recon_sum / n, "kl_nats": kl_sum / n,
            "images": n, "likelihood": "Bernoulli on grey levels in [0, 1]: comparable between these "
                                      "VAEs, not with discrete 8-bit likelihoods"}


# ---- labels for unlabelled digits (the latent scatter's colours) -------------------------

CLASSIFIER_LABELS = "labels read by the digit classifier"


def with_classifier_labels(ds, n: int, pool: RuntimePool):
    """``ds`` itself if it has labels; else its first ``n`` digits labelled by the studio classifier.

    The classifier runs as any other checkpoint does (its "classify" graph, through the pool), so
    the engine needs nothing from the evaluation layer. The name says where such labels come from,
    so the scatter's legend does not pass them off as truth.
    """
    from dataclasses import replace

    from studio.core.paths import shipped_checkpoint_dir

    c, h, w = ds.shape
    classifier = shipped_checkpoint_dir() / "digit_classifier.safetensors"
    # Grey 28x28 or 32x32 only: colour pictures are no digits, and their "labels" would mislead.
    if ds.labels is not None or not (c == 1 and h == w and h in (28, 32)) or not classifier.exists():
        return ds
    images = ds.images[:n]
    if h == 32:  # the classifier reads 28x28: MNIST padded to 32 loses only its border
        images = images[:, :, 2:30, 2:30]
    logits, _ = pool.get(classifier, family="classifier").run("classify", {"image": images.astype(np.float32)})
    labels = logits["logits"].argmax(axis=1).astype(np.int64)
    return replace(ds, images=ds.images[:n], labels=labels, name=f"{ds.name} ({CLASSIFIER_LABELS})")
