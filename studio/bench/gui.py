"""GUI responsiveness: slider-to-pixels latency and start-up time."""

from __future__ import annotations

from pathlib import Path

from studio.engine.catalog import shipped


def bench(quick: bool) -> dict:
    from studio.ui.measure import vae as vae_measure  # the Qt part lives in studio/ui

    vae = shipped("vae")
    if not vae:
        return {"error": "no shipped VAE checkpoint"}
    result = vae_measure.slider_to_pixels(str(vae[0]), moves=40 if quick else 200)
    result["startup_ms"] = vae_measure.startup_ms(1 if quick else 5, Path(__file__).resolve().parents[2])
    result.update(_gan(quick))
    return result


def _gan(quick: bool) -> dict:
    """The GAN explorer's slider-to-pixels and the style-mixing grid (4x4) on the shipped StyleGAN."""
    from studio.families.stylegan.ui import measure as gan_bench

    stylegan = shipped("stylegan")
    if not stylegan:
        return {"gan_error": "no shipped StyleGAN checkpoint"}
    out = gan_bench.gan_slider_to_pixels(str(stylegan[0]), moves=40 if quick else 200)
    out.update(gan_bench.style_mixing_grid(str(stylegan[0]), repeats=15 if quick else 60))
    return out
