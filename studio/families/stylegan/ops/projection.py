"""Projection: find the w (or per-layer w+) and noise maps whose image matches a given picture.

As in the StyleGAN2 projector: start from w_avg or, better, the nearest of a few
hundred sampled w (nearest by the same distance; their pictures are made once per
checkpoint and seed), Adam on w and on the noise
maps, a little noise on w early on, a learning-rate ramp, and the noise
regulariser (the maps' autocorrelation at every scale, penalised; each map
renormalised after every step) so the noise cannot paint the picture itself.
The distance is the pixel MSE plus, when the project's digit classifier is
shipped, the distance between its penultimate features (LPIPS's VGG makes no
sense at 32 pixels). The handler is a generator: it streams the loss curve and
the current image, and a cancel stops it at the next report.
"""

from __future__ import annotations

import io
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.imaging import image_grid
from studio.core.paths import shipped_checkpoint_dir
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.stylegan.ops.latents import GanModel

CLASSIFIER_NAME = "digit_classifier.safetensors"
MNIST_SIZE = 28


@dataclass(frozen=True)
class GanProject:
    target: Target
    source: str | bytes = field(repr=False)  # a file path, or encoded image bytes
    space: str = "w"  # "w": one w for every layer; "w+": one w per layer
    steps: int = 200
    max_seconds: float = 2.0
    feature_weight: float = 0.5
    noise_regularize: float = 1e3
    report_every: int = 10
    seed: int = 0
    candidates: int = 256  # sampled w tried as starting points (besides w_avg)
    classifier: str | None = None  # None: the shipped digit classifier, when there is one


@dataclass(frozen=True)
class ProjectionStep:
    """A projection's progress; the final one also holds what it found."""

    step: int
    steps: int
    loss: tuple[float, ...]  # the distance after every step so far
    seconds: float
    space: str
    ws: tuple[tuple[float, ...], ...] | None = None  # final: one w per layer
    noise: tuple[np.ndarray, ...] | None = field(default=None, compare=False)  # final: its noise maps
    classifier: str = ""  # why the classifier's features were not used ("" when they were)


def default_classifier() -> Path:
    return shipped_checkpoint_dir() / CLASSIFIER_NAME


_classifiers: dict[str, object] = {}
_classifier_lock = threading.Lock()


def load_classifier(path: Path):
    """The classifier's torch model (cached), or None with the reason when it cannot be used."""
    from studio.core.checkpoint import CheckpointError, load_checkpoint
    from studio.core.family import UnknownFamily
    from studio.engine.export import build_torch_model

    key = str(path)
    with _classifier_lock:
        if key in _classifiers:
            return _classifiers[key], ""
    if not path.exists():
        return None, "no classifier checkpoint"
    try:
        model = build_torch_model(load_checkpoint(path)).eval().requires_grad_(False)
    except (CheckpointError, UnknownFamily) as exc:
        return None, str(exc)
    if not hasattr(model, "features"):
        return None, f"{path.name}: the model has no features()"
    with _classifier_lock:
        _classifiers[key] = model
    return model, ""


def target_image(source: str | bytes, size: int, channels: int) -> np.ndarray:
    """The picture as (C, S, S) in [0, 1]. 28x28 digits are padded to 32 as in training, not stretched."""
    from studio.data.images import load_image, to_digit_input

    native = _image_size(source)
    if native == (MNIST_SIZE, MNIST_SIZE) and size > MNIST_SIZE:
        pixels = load_image(source, channels=channels)
        pad = (size - MNIST_SIZE) // 2
        widths = ((pad, size - MNIST_SIZE - pad), (pad, size - MNIST_SIZE - pad))
        pixels = np.pad(pixels, widths + (((0, 0),) if pixels.ndim == 3 else ()), mode="edge")
    else:
        pixels = load_image(source, size=(size, size), channels=channels)
    if channels == 1:
        return to_digit_input(pixels)[None]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _image_size(source: str | bytes) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as im:
            return im.size
    except Exception:  # the loader itself reports unreadable files properly
        return None


_starts: dict[tuple, tuple] = {}
_starts_lock = threading.Lock()


def _start_pictures(key, g, candidates, noises, classifier):
    """The candidates' pictures and classifier features, made once per (checkpoint, seed, count):
    every projection with that seed draws the same candidates and noise, so later ones spend
    their seconds on optimisation instead."""
    import torch

    with _starts_lock:
        hit = _starts.get(key)
    if hit is not None:
        return hit
    images, feats = [], []
    with torch.no_grad():
        for chunk in torch.split(candidates, 64):
            ws = chunk[:, None, :].expand(-1, g.num_layers, -1)
            images.append(g.synthesis(ws, [n.expand(len(chunk), -1, -1, -1) for n in noises]))
            if classifier is not None:
                feats.append(classifier.features(grey_like_evaluation(images[-1].clamp(-1, 1))))
    found = (torch.cat(images), torch.cat(feats) if feats else None)
    with _starts_lock:
        if len(_starts) > 8:
            _starts.clear()
        _starts[key] = found
    return found


def grey_like_evaluation(images):
    """RGB images in [-1, 1] -> grey digits in [0, 1], as ``studio.data.recolour.grey_digits`` makes them.

    The classifier reads the projection the way the evaluation does (distance from the
    border colour), so its features see the digit's shape whatever the colours; a plain
    channel mean of a coloured picture is a grey-on-grey image that it misreads.
    """
    import torch

    from studio.data.recolour import BACKGROUND_FLOOR

    x = images * 0.5 + 0.5
    if x.shape[1] != 3:
        return x
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
    background = border.median(dim=2).values
    dist = (x - background[:, :, None, None]).pow(2).sum(dim=1).add(1e-12).sqrt()
    top = dist.flatten(1).max(dim=1).values.clamp_min(1e-6)
    scaled = dist / top[:, None, None]
    return ((scaled - BACKGROUND_FLOOR) / (1.0 - BACKGROUND_FLOOR)).clamp(0.0, 1.0)[:, None]


def _noise_regularisation(noises) -> "torch.Tensor":  # noqa: F821
    from torch.nn import functional as F

    total = 0.0
    for n in noises:
        while True:
            total = total + (n * n.roll(1, dims=3)).mean() ** 2 + (n * n.roll(1, dims=2)).mean() ** 2
            if n.shape[2] <= 4:
                break
            n = F.avg_pool2d(n, 2)
    return total


def project(pool: RuntimePool, req: GanProject):
    import torch

    model = GanModel(pool, req.target)
    model.require_style("projection")
    if req.space not in ("w", "w+"):
        raise ValueError(f"unknown projection space '{req.space}' (w or w+)")
    if req.steps < 1 or req.max_seconds <= 0:
        raise ValueError("projection needs at least one step and some time")
    cfg = model.config
    target_np = target_image(req.source, cfg.image_size, cfg.channels)
    g = model.runtime.torch_model()
    classifier, why_not = load_classifier(Path(req.classifier) if req.classifier else default_classifier())
    device = next(g.parameters()).device  # the torch backend may have moved the model to a GPU
    gen = torch.Generator().manual_seed(req.seed)
    t_start = time.perf_counter()
    with torch.no_grad():
        w_samples = g.mapping(torch.randn(1000, cfg.z_dim, generator=gen).to(device))
        w_std = float(((w_samples - g.w_avg) ** 2).sum(dim=1).mean().sqrt())
    target = torch.from_numpy(target_np)[None].to(device) * 2.0 - 1.0
    layers = 1 if req.space == "w" else model.num_layers
    noises = [torch.randn((1,) + shape, generator=gen).to(device).requires_grad_(True)
              for shape in model.noise_shapes()]
    target_features = None
    if classifier is not None and req.feature_weight > 0:
        classifier.to(device)
        with torch.no_grad():
            target_features = classifier.features(grey_like_evaluation(target))

    def distance(images, feats=None):
        """Per image: pixel MSE plus the weighted, normalised distance of the classifier's features."""
        err = ((images - target) ** 2).flatten(1).mean(dim=1)
        if target_features is not None:
            if feats is None:
                feats = classifier.features(grey_like_evaluation(images.clamp(-1, 1)))
            err = err + req.feature_weight * ((feats - target_features) ** 2).sum(dim=1) / (
                target_features.pow(2).sum() + 1e-8)
        return err

    # The start: whichever of w_avg and some sampled w is nearest the target by that distance. A
    # global attribute such as the background colour, and above all which digit it is, is a basin
    # that a few seconds of gradient descent rarely leave; starting in the right one is what a
    # small encoder would buy.
    candidates = torch.cat([g.w_avg[None], w_samples[: req.candidates]])
    key = (model.runtime.digest, req.seed, len(candidates), str(device), id(classifier) if target_features is not None else None)
    with torch.no_grad():
        images, feats = _start_pictures(key, g, candidates, noises, classifier if target_features is not None else None)
        start = candidates[int(distance(images, feats).argmin())]
    w_opt = start.detach().clone()[None, None].repeat(1, layers, 1).requires_grad_(True)
    params = [w_opt] + noises
    opt = torch.optim.Adam(params, lr=0.1, betas=(0.9, 0.999))
    curve: list[float] = []
    step = 0
    image = None
    while step < req.steps:
        elapsed = time.perf_counter() - t_start
        if step and elapsed >= req.max_seconds:
            break
        # Progress by steps or by time, whichever is further: the schedule ends when either does.
        t = max(step / req.steps, elapsed / req.max_seconds)
        ramp_down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / 0.25))
        ramp_up = min(1.0, (step + 1) / max(1.0, 0.05 * req.steps))
        for group in opt.param_groups:
            group["lr"] = 0.1 * ramp_down * ramp_up
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * (
            w_std * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2)
        ws = (w_opt + w_noise).expand(1, model.num_layers, -1)
        image = g.synthesis(ws, noises)
        loss = distance(image)[0]
        total = loss + req.noise_regularize * _noise_regularisation(noises)
        # Gradients for w and the noise only: the shared model's own weights are left alone.
        for p, grad in zip(params, torch.autograd.grad(total, params)):
            p.grad = grad
        opt.step()
        with torch.no_grad():
            for n in noises:
                n.sub_(n.mean()).div_(n.square().mean().sqrt() + 1e-8)
        step += 1
        curve.append(float(loss.detach()))
        if step % req.report_every == 0 and step < req.steps:
            yield _report(target_np, image, curve, step, req, t_start, str(device.type), final=False)
    ws_final = w_opt.detach().expand(1, model.num_layers, -1)[0].cpu().numpy().copy()
    yield _report(target_np, image, curve, step, req, t_start, str(device.type), final=True,
                  ws=tuple(tuple(float(v) for v in layer) for layer in ws_final),
                  noise=tuple(n.detach().cpu().numpy()[0].copy() for n in noises),
                  classifier="" if classifier is not None else why_not)


def _report(target_np, image, curve, step, req, t_start, device: str, final: bool, **found) -> Output:
    current = (image.detach().clamp(-1, 1).cpu().numpy()[0] + 1.0) * 0.5
    pair = image_grid(np.stack([target_np, current]), cols=2, pad=1)
    payload = ProjectionStep(step, req.steps, tuple(curve), time.perf_counter() - t_start, req.space, **found)
    return Output(pair, payload, "torch", device, None, final)
