"""Samples of any generator, through its family descriptor's ``sampler`` function.

The evaluation knows no family: it asks the registry for the checkpoint's
family, calls the function its descriptor names, and passes it only the
sampler options its signature takes (``sampler``/``steps`` mean something to
diffusion and nothing to a VAE). Each model-and-sampler pair gets a label such
as ``unet_ddpm_mnist/ddim50``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.core.checkpoint import CheckpointError
from studio.core.family import UnknownFamily, get_family

# Options whose value is part of a label only when it differs from the default.
_LABEL_DEFAULTS = {"spacing": "leading", "eta": 0.0, "steps_offset": 0, "set_alpha_to_one": True,
                   "variance": "fixed_small", "use_clipped_model_output": False}
_SHORT_NAMES = {"use_clipped_model_output": "clipped_eps"}
_NOT_OPTIONS = {"runtime", "n", "seed", "backend", "device", "progress", "batch_size"}


class EvaluationCancelled(Exception):
    """The user cancelled the evaluation; raised from a progress callback."""


def sampler_function(family: str) -> Callable:
    """The family's ``sampler`` function; CheckpointError if the family generates nothing."""
    try:
        spec = get_family(family)
    except UnknownFamily as exc:
        raise CheckpointError(str(exc)) from None
    if not spec.sampler:
        raise CheckpointError(f"'{family}' models generate no images: there is nothing to evaluate")
    return spec.load("sampler")


def accepted_options(fn: Callable, options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` that ``fn`` takes as keyword arguments (all of them if it takes **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params and k not in _NOT_OPTIONS}


def variant_label(options: dict[str, Any]) -> str:
    """``ddim50``, ``ddpm1000``, ``ddim50-trailing-eta0.5``; "" for a family with no options."""
    if not options:
        return ""
    head = f"{options.get('sampler', '')}{options.get('steps') or ''}"
    tail = []
    for key, value in options.items():
        if key in ("sampler", "steps") or _LABEL_DEFAULTS.get(key, object()) == value:
            continue
        if isinstance(value, str):
            tail.append(value)
        elif isinstance(value, bool):
            name = _SHORT_NAMES.get(key, key)
            tail.append(name if value else f"no_{name}")
        else:
            tail.append(f"{key.replace('steps_offset', 'offset')}{value:g}")
    return "-".join(p for p in [head] + tail if p)


def model_label(checkpoint: str | Path, options: dict[str, Any]) -> str:
    variant = variant_label(options)
    stem = Path(checkpoint).stem
    return f"{stem}/{variant}" if variant else stem


def sample_images(runtime, n: int, seed: int, options: dict[str, Any], backend: str = "onnx",
                  device: str = "auto", progress: Callable[[int, int], None] | None = None,
                  batch_size: int | None = None) -> tuple[np.ndarray, float]:
    """``n`` float images (N, C, H, W) in [0, 1] from ``runtime``'s model, and ms per image."""
    fn = sampler_function(runtime.family)
    kwargs = accepted_options(fn, options)
    if batch_size is not None:
        kwargs["batch_size"] = int(batch_size)
    images, ms = fn(runtime, int(n), seed=int(seed), backend=backend, device=device, progress=progress, **kwargs)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) != n:
        raise ValueError(f"the '{runtime.family}' sampler returned {images.shape}, not {n} images (N, C, H, W)")
    return images, float(ms)
