"""Latent-space arithmetic shared by the explorers (interpolation paths and grids), and samples from the prior."""

from __future__ import annotations

import time

import numpy as np


def lerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.float32)[:, None]
    return ((1.0 - t) * z0[None] + t * z1[None]).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation: stays at the radius a Gaussian latent actually has."""
    t = np.asarray(t, dtype=np.float64)[:, None]
    a, b = z0.astype(np.float64), z1.astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-8 or nb < 1e-8:
        return lerp(z0, z1, t[:, 0])
    cos = np.clip(np.dot(a / na, b / nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:  # (nearly) parallel: the arc is a line
        return lerp(z0, z1, t[:, 0])
    so = np.sin(omega)
    out = (np.sin((1.0 - t) * omega) / so) * a[None] + (np.sin(t * omega) / so) * b[None]
    return out.astype(np.float32)


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, mode: str = "linear") -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps)
    if mode == "spherical":
        return slerp(z0, z1, t)
    if mode == "linear":
        return lerp(z0, z1, t)
    raise ValueError(f"unknown interpolation mode '{mode}' (linear or spherical)")


def plane_grid(base: np.ndarray, dims: tuple[int, int], n: int, span: float) -> np.ndarray:
    """n x n latents over dims (x, y) in [-span, span]; row 0 is the top (largest y)."""
    xs = np.linspace(-span, span, n, dtype=np.float32)
    ys = xs[::-1]
    grid = np.repeat(base[None].astype(np.float32), n * n, axis=0)
    gx, gy = np.meshgrid(xs, ys)
    grid[:, dims[0]] = gx.ravel()
    grid[:, dims[1]] = gy.ravel()
    return grid


def plane_point(u: float, v: float, span: float) -> tuple[float, float]:
    """Normalised picture coordinates (u right, v down) -> latent (x, y) on the plane."""
    return (-span + 2.0 * span * u, span - 2.0 * span * v)


def plane_uv(x: float, y: float, span: float) -> tuple[float, float]:
    return ((x + span) / (2.0 * span), (span - y) / (2.0 * span))


def sample_from_prior(runtime, graph: str, dim: int, n: int, seed: int = 0, backend: str = "onnx",
                      device: str = "auto", batch_size: int = 500, progress=None) -> tuple[np.ndarray, float]:
    """``n`` images from z ~ N(0, I) of ``dim`` dimensions through ``graph`` (input ``z``, output
    ``image`` in [0, 1]): float32 (n, C, H, W), and ms per image, timing only the graph calls.
    What the evaluation asks of a VAE's decoder and a DCGAN's generator alike."""
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    z = np.random.default_rng(int(seed)).standard_normal((int(n), int(dim)), dtype=np.float32)
    runtime.run(graph, {"z": z[:1]}, backend, device)  # load the backend before the clock starts
    parts, ms = [], 0.0
    for start in range(0, len(z), batch_size):
        t0 = time.perf_counter()
        out, _ = runtime.run(graph, {"z": z[start: start + batch_size]}, backend, device)
        ms += (time.perf_counter() - t0) * 1000.0
        parts.append(out["image"])
        if progress is not None:
            progress(min(start + batch_size, len(z)), len(z))
    return np.clip(np.concatenate(parts), 0.0, 1.0).astype(np.float32), ms / len(z)
