"""GAN requests and their renderer handlers (DCGAN and StyleGAN checkpoints alike).

Latent exploration (seeds, z, PCA edits of w, truncation, interpolation), style
mixing, noise and its per-pixel spread, and projection of a picture into W/W+.
"""

from __future__ import annotations

from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.stylegan.ops.explore import (
    GanDirections, GanDirectionsInfo, GanGenerate, GanInterpolate, GanPicture, GanStrip, Session, directions,
    export_gif, generate, interpolate, load_session, save_session,
)
from studio.families.stylegan.ops.latents import (
    GAN_FAMILIES, NOISE_MODES, Code, Edit, GanModel, NoiseSpec, mix_styles, seed_to_z, truncate,
)
from studio.families.stylegan.ops.mixing import (
    MixingGrid, NoiseSpread, NoiseStdMap, StyleMixGrid, heatmap, mixing_grid, noise_std_map,
)
from studio.families.stylegan.ops.projection import GanProject, ProjectionStep, project

HANDLERS = {
    GanGenerate: generate,
    GanInterpolate: interpolate,
    GanDirections: directions,
    StyleMixGrid: mixing_grid,
    NoiseStdMap: noise_std_map,
    GanProject: project,
}


def register(renderer, pool: RuntimePool, request_types=None) -> None:
    """Register the GAN handlers (all, or ``request_types``) on a renderer or render bridge."""
    for request_type, fn in HANDLERS.items():
        if request_types is None or request_type in request_types:
            renderer.register(request_type, lambda req, fn=fn: fn(pool, req))


__all__ = [
    "GAN_FAMILIES", "NOISE_MODES", "Code", "Edit", "GanDirections", "GanDirectionsInfo", "GanGenerate",
    "GanInterpolate", "GanModel", "GanPicture", "GanProject", "GanStrip", "HANDLERS", "MixingGrid",
    "NoiseSpec", "NoiseSpread", "NoiseStdMap", "ProjectionStep", "Session", "StyleMixGrid", "Target",
    "export_gif", "heatmap", "load_session", "mix_styles", "register", "save_session", "seed_to_z", "truncate",
]
