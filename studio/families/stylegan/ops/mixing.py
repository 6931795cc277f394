"""Style mixing (the StyleGAN paper's grid) and stochastic variation (per-pixel std over noise draws)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.core.imaging import image_grid, to_uint8
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.stylegan.ops.latents import Code, GanModel, NoiseSpec, mix_styles

MAX_SOURCES = 8


@dataclass(frozen=True)
class StyleMixGrid:
    """Rows: sources A; columns: sources B; each cell is A with B's styles on layers a..b."""

    target: Target
    rows: tuple[Code, ...]
    cols: tuple[Code, ...]
    layers: tuple[int, int] = (0, 3)
    psi: float = 1.0
    cutoff: int | None = None
    noise: NoiseSpec = NoiseSpec()


@dataclass(frozen=True)
class NoiseStdMap:
    """Per-pixel standard deviation over ``draws`` noise samples: where the noise acts.

    Every layer whose mode is not "off" gets fresh noise for each draw, at its strength.
    """

    target: Target
    code: Code
    psi: float = 1.0
    cutoff: int | None = None
    noise: NoiseSpec = NoiseSpec()
    draws: int = 32
    seed: int = 0


# ---- what the handlers return (RenderResult.payload) ---------------------------------
@dataclass(frozen=True)
class MixingGrid:
    """The grid's layout and its pictures as floats in [0, 1] (the cells, for opening one large)."""

    rows: int
    cols: int
    cell: int  # pixels per picture
    pad: int
    layers: tuple[int, int]
    mixes: np.ndarray  # (rows, cols, C, S, S)
    sources_a: np.ndarray  # (rows, C, S, S)
    sources_b: np.ndarray  # (cols, C, S, S)


@dataclass(frozen=True)
class NoiseSpread:
    std: np.ndarray  # (H, W) per-pixel standard deviation over the draws
    max_std: float
    mean_image: np.ndarray  # uint8, the average picture over the draws
    noisy_layers: int


def mixing_grid(pool: RuntimePool, req: StyleMixGrid) -> Output:
    model = GanModel(pool, req.target)
    model.require_style("style mixing")
    n_rows, n_cols = len(req.rows), len(req.cols)
    if not (1 <= n_rows <= MAX_SOURCES and 1 <= n_cols <= MAX_SOURCES):
        raise ValueError(f"style mixing takes 1 to {MAX_SOURCES} sources on each side")
    ws = model.truncate(model.styles(list(req.rows) + list(req.cols)), req.psi, req.cutoff)
    ws_a, ws_b = ws[:n_rows], ws[n_rows:]
    mixed = mix_styles(np.repeat(ws_a, n_cols, axis=0), np.tile(ws_b, (n_rows, 1, 1)), req.layers)
    # Sources and mixes in one synthesis call, all with the same noise maps.
    images = model.synthesize(np.concatenate([ws, mixed]), model.noise(req.noise, len(ws) + len(mixed)))
    sources, mixes = images[: len(ws)], images[len(ws):]
    c, s = images.shape[1], images.shape[2]
    cells = np.zeros((n_rows + 1, n_cols + 1, c, s, s), np.float32)
    cells[0, 1:] = sources[n_rows:]
    cells[1:, 0] = sources[:n_rows]
    cells[1:, 1:] = mixes.reshape(n_rows, n_cols, c, s, s)
    grid = image_grid(cells.reshape(-1, c, s, s), cols=n_cols + 1, pad=1)
    payload = MixingGrid(n_rows, n_cols, s, 1, tuple(req.layers), mixes.reshape(n_rows, n_cols, c, s, s),
                         sources[:n_rows], sources[n_rows:])
    return model.output(grid, payload)


def noise_std_map(pool: RuntimePool, req: NoiseStdMap) -> Output:
    model = GanModel(pool, req.target)
    model.require_style("the noise map")
    if not 2 <= req.draws <= 256:
        raise ValueError("the noise map takes 2 to 256 draws")
    ws = model.truncate(model.styles([req.code]), req.psi, req.cutoff)
    modes = tuple("off" if req.noise.mode(i) == "off" else "random" for i in range(model.num_layers))
    spec = NoiseSpec(modes, req.noise.strengths, req.noise.seed)
    noise = model.noise(spec, req.draws, np.random.default_rng(req.seed))
    images = model.synthesize(np.repeat(ws, req.draws, axis=0), noise)
    std = images.std(axis=0).mean(axis=0)  # over draws, then colour channels
    top = float(std.max())
    # Scaled to its maximum, but float rounding (no noise at all) stays black.
    return model.output(heatmap(std / max(top, 1e-3)),
                        NoiseSpread(std, top, to_uint8(images.mean(axis=0)), sum(m != "off" for m in modes)))


# A perceptually ordered dark-to-bright map (black, purple, orange, pale yellow).
_ANCHORS = np.array([[0, 0, 4], [80, 18, 123], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float32)


def heatmap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> uint8 RGB (H, W, 3)."""
    x = np.clip(values, 0.0, 1.0) * (len(_ANCHORS) - 1)
    lo = np.floor(x).astype(int).clip(0, len(_ANCHORS) - 2)
    t = (x - lo)[..., None]
    rgb = _ANCHORS[lo] * (1 - t) + _ANCHORS[lo + 1] * t
    return (rgb + 0.5).astype(np.uint8)
