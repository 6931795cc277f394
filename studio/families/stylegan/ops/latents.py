"""Latent codes, styles and noise for the GAN views: numpy arithmetic on the graphs' inputs.

A picture comes from a ``Code`` (a seed, an explicit z, or per-layer w from a
projection). For a StyleGAN the code becomes per-layer styles ws (N, L, w_dim):
truncation, PCA edits and style mixing are arithmetic on ws before the one
synthesis call, and the noise maps are inputs too. A DCGAN has only z.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.stylegan.config import StyleGANConfig

GAN_FAMILIES = ("dcgan", "stylegan")
NOISE_MODES = ("random", "fixed", "off")


@dataclass(frozen=True)
class Code:
    """Where a picture comes from: a seed, an explicit z (the sliders) or per-layer w (a projection)."""

    seed: int = 0
    z: tuple[float, ...] | None = None
    ws: tuple[tuple[float, ...], ...] | None = None
    # A projection's own noise maps, one (1, r, r) array per layer: used where a layer's noise is "fixed".
    noise: tuple[np.ndarray, ...] | None = field(default=None, compare=False, repr=False)

    def label(self) -> str:
        if self.ws is not None:
            return "projection"
        return f"seed {self.seed}" + (" (edited z)" if self.z is not None else "")


@dataclass(frozen=True)
class Edit:
    """Move ``amount`` standard deviations along PCA direction ``component`` of w, on layers a..b."""

    component: int
    amount: float
    layers: tuple[int, int] = (0, 7)  # inclusive


@dataclass(frozen=True)
class NoiseSpec:
    """Per-layer noise: a mode ("random" per render, "fixed" by the seed, "off") and a strength."""

    modes: tuple[str, ...] = ()  # empty: every layer "fixed"
    strengths: tuple[float, ...] = ()  # empty: every layer 1.0
    seed: int = 0

    def mode(self, layer: int) -> str:
        return self.modes[layer] if layer < len(self.modes) else "fixed"

    def strength(self, layer: int) -> float:
        return float(self.strengths[layer]) if layer < len(self.strengths) else 1.0


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The z of a seed: the same on every machine (numpy's PCG64, not torch's generator)."""
    return np.random.default_rng(int(seed)).standard_normal(z_dim).astype(np.float32)


def code_z(code: Code, z_dim: int) -> np.ndarray:
    if code.z is not None:
        z = np.asarray(code.z, dtype=np.float32)
        if z.shape != (z_dim,):
            raise ValueError(f"z has {z.size} values, the model takes {z_dim}")
        return z
    return seed_to_z(code.seed, z_dim)


def mix_styles(ws_a: np.ndarray, ws_b: np.ndarray, layers: tuple[int, int]) -> np.ndarray:
    """Styles of A with B's on layers a..b (inclusive): the paper's style mixing."""
    a, b = int(layers[0]), int(layers[1])
    if not 0 <= a <= b < ws_a.shape[-2]:
        raise ValueError(f"layer range {a}..{b} is outside 0..{ws_a.shape[-2] - 1}")
    out = np.array(ws_a, dtype=np.float32, copy=True)
    out[..., a: b + 1, :] = ws_b[..., a: b + 1, :]
    return out


def truncate(ws: np.ndarray, w_avg: np.ndarray, psi: float, cutoff: int) -> np.ndarray:
    """w_avg + psi (w - w_avg) on the layers below ``cutoff``; the others keep their w."""
    out = np.array(ws, dtype=np.float32, copy=True)
    out[..., :cutoff, :] = w_avg + np.float32(psi) * (out[..., :cutoff, :] - w_avg)
    return out


@dataclass
class Directions:
    """Principal directions of w (GANSpace): unit components, their standard deviations, variance shares."""

    components: np.ndarray  # (K, w_dim)
    stds: np.ndarray  # (K,)
    explained: np.ndarray  # (K,) fraction of the total variance
    mean: np.ndarray  # (w_dim,)


_directions: dict[tuple[str, int, int], Directions] = {}
_directions_lock = threading.Lock()


class GanModel:
    """One GAN checkpoint on one backend: z -> w -> ws -> images, timing every graph call."""

    def __init__(self, pool: RuntimePool, target: Target):
        self.runtime = pool.get(target.checkpoint)
        if self.runtime.family not in GAN_FAMILIES:
            raise ValueError(f"{self.runtime.path.name}: a '{self.runtime.family}' checkpoint, not a GAN "
                             f"({' or '.join(GAN_FAMILIES)})")
        self.target = target
        self.family = self.runtime.family
        cfg = self.runtime.config
        self.z_dim = int(cfg.get("z_dim", 64))
        self.is_style = self.family == "stylegan"
        self.runner = None
        self.model_ms = 0.0
        self.export_pending = False
        if self.is_style:
            self.config = StyleGANConfig.from_dict(cfg)
            self.num_layers = self.config.num_layers
            self.w_avg = np.asarray(self.runtime.checkpoint.weights["w_avg"], dtype=np.float32)
        else:
            self.config = None
            self.num_layers = 0
            self.w_avg = None

    @property
    def backend(self) -> str:
        return self.runner.name if self.runner else self.target.backend

    @property
    def device(self) -> str:
        return self.runner.device if self.runner else ""

    def _run(self, graph: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        # wait=False: while a fresh checkpoint's ONNX export runs, torch renders (and says so).
        out, runner = self.runtime.run(graph, feed, self.target.backend, self.target.device, wait=False)
        self.model_ms += (time.perf_counter() - t0) * 1000.0
        self.export_pending = self.export_pending or bool(getattr(runner, "export_pending", False))
        self.runner = runner
        return out

    def output(self, image, payload, final: bool = True):
        """The renderer's Output for what this model ran: backend, device, model time."""
        from studio.engine.renderer import Output

        return Output(image, payload, self.backend, self.device, self.model_ms, final, self.export_pending)

    def require_style(self, what: str) -> None:
        if not self.is_style:
            raise ValueError(f"{what} needs a StyleGAN checkpoint; a DCGAN has only z")

    # --- z and w --------------------------------------------------------------------
    def map(self, z: np.ndarray) -> np.ndarray:
        self.require_style("the mapping network")
        return self._run("mapping", {"z": np.asarray(z, np.float32)})["w"]

    def styles(self, codes: Sequence[Code]) -> np.ndarray:
        """Per-layer styles (N, L, w_dim) of the codes; seeds and z go through one mapping call."""
        self.require_style("styles")
        out = np.zeros((len(codes), self.num_layers, self.config.w_dim), np.float32)
        need = [i for i, c in enumerate(codes) if c.ws is None]
        if need:
            w = self.map(np.stack([code_z(codes[i], self.z_dim) for i in need]))
            out[need] = w[:, None, :]
        for i, c in enumerate(codes):
            if c.ws is not None:
                ws = np.asarray(c.ws, np.float32)
                if ws.shape != out.shape[1:]:
                    raise ValueError(f"the code's styles are {ws.shape}, the model takes {out.shape[1:]}")
                out[i] = ws
        return out

    def directions(self, samples: int = 10_000, components: int = 16) -> Directions:
        """PCA of w over ``samples`` mapped z (cached per checkpoint)."""
        self.require_style("PCA directions of w")
        key = (self.runtime.digest, samples, components)
        with _directions_lock:
            hit = _directions.get(key)
        if hit is not None:
            return hit
        z = np.random.default_rng(12345).standard_normal((samples, self.z_dim)).astype(np.float32)
        w = np.concatenate([self.map(z[i: i + 2500]) for i in range(0, samples, 2500)]).astype(np.float64)
        mean = w.mean(axis=0)
        _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
        var = s ** 2 / (samples - 1)
        k = min(components, vt.shape[0])
        found = Directions(vt[:k].astype(np.float32), np.sqrt(var[:k]).astype(np.float32),
                           (var[:k] / var.sum()).astype(np.float32), mean.astype(np.float32))
        with _directions_lock:
            _directions[key] = found
        return found

    def apply_edits(self, ws: np.ndarray, edits: Sequence[Edit]) -> np.ndarray:
        if not edits:
            return ws
        basis = self.directions()
        out = np.array(ws, np.float32, copy=True)
        for e in edits:
            if not 0 <= e.component < len(basis.stds):
                raise ValueError(f"PCA direction {e.component} does not exist (0..{len(basis.stds) - 1})")
            a, b = e.layers
            if not 0 <= a <= b < self.num_layers:
                raise ValueError(f"edit layers {a}..{b} are outside 0..{self.num_layers - 1}")
            out[..., a: b + 1, :] += np.float32(e.amount) * basis.stds[e.component] * basis.components[e.component]
        return out

    def truncate(self, ws: np.ndarray, psi: float, cutoff: int | None) -> np.ndarray:
        cutoff = self.num_layers if cutoff is None else int(cutoff)
        if not 0 <= cutoff <= self.num_layers:
            raise ValueError(f"truncation cutoff {cutoff} is outside 0..{self.num_layers}")
        return truncate(ws, self.w_avg, psi, cutoff)

    # --- noise ----------------------------------------------------------------------
    def noise_shapes(self) -> list[tuple[int, int, int]]:
        return [(1, self.config.layer_resolution(i), self.config.layer_resolution(i))
                for i in range(self.num_layers)]

    def noise(self, spec: NoiseSpec, batch: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """One map per layer, (batch, 1, r, r): fixed maps depend only on (seed, layer), so every
        image of a batch and every render gets the same; random ones are new each call."""
        rng = rng or np.random.default_rng()
        maps = []
        for i, shape in enumerate(self.noise_shapes()):
            mode = spec.mode(i)
            if mode == "off":
                maps.append(np.zeros((batch,) + shape, np.float32))
                continue
            if mode == "fixed":
                one = np.random.default_rng([int(spec.seed), i]).standard_normal(shape).astype(np.float32)
                layer = np.broadcast_to(one, (batch,) + shape)
            elif mode == "random":
                layer = rng.standard_normal((batch,) + shape).astype(np.float32)
            else:
                raise ValueError(f"unknown noise mode '{mode}' ({', '.join(NOISE_MODES)})")
            maps.append(np.ascontiguousarray(layer * np.float32(spec.strength(i))))
        return maps

    # --- images ---------------------------------------------------------------------
    def synthesize(self, ws: np.ndarray, noise: list[np.ndarray]) -> np.ndarray:
        feed = {f"w{i}": np.ascontiguousarray(ws[:, i]) for i in range(self.num_layers)}
        feed.update({f"noise{i}": n for i, n in enumerate(noise)})
        return self._run("synthesis", feed)["image"]

    def generate_z(self, z: np.ndarray) -> np.ndarray:
        """DCGAN: z (N, z_dim) -> images in [0, 1]."""
        return self._run("generate", {"z": np.asarray(z, np.float32)})["image"]

    def render(self, codes: Sequence[Code], psi: float = 1.0, cutoff: int | None = None,
               edits: Sequence[Edit] = (), noise: NoiseSpec = NoiseSpec(),
               ws: np.ndarray | None = None) -> np.ndarray:
        """Images (N, C, H, W) in [0, 1] for codes (or for ready-made styles ``ws``)."""
        if not self.is_style:
            if any(c.ws is not None for c in codes):
                raise ValueError("a DCGAN has no per-layer styles")
            # A DCGAN's mean latent is z = 0: truncation scales z towards it.
            z = np.stack([code_z(c, self.z_dim) for c in codes]) * np.float32(psi)
            return self.generate_z(z)
        if ws is None:
            ws = self.truncate(self.styles(codes), psi, cutoff)
            ws = self.apply_edits(ws, edits)
        maps = self.noise(noise, ws.shape[0])
        for i, code in enumerate(codes):
            if code.noise is None:
                continue
            for layer, own in enumerate(code.noise):
                if noise.mode(layer) == "fixed":
                    maps[layer] = np.array(maps[layer], copy=True)
                    maps[layer][i] = np.asarray(own, np.float32).reshape(maps[layer].shape[1:]) * noise.strength(layer)
        return self.synthesize(ws, maps)
