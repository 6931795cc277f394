"""The VAE's interactive graphs: decode z -> image, encode image -> (mu, logvar)."""

from __future__ import annotations

from studio.engine.graphs import GraphSpec, InputSpec


def vae_graphs(model) -> dict[str, GraphSpec]:
    cfg = model.cfg
    return {
        "decode": GraphSpec("decode", model.decoder, (InputSpec("z", (1, cfg.latent_dim)),), ("image",)),
        "encode": GraphSpec(
            "encode", model.encoder,
            (InputSpec("image", (1, cfg.channels, cfg.image_size, cfg.image_size)),),
            ("mu", "logvar"),
        ),
    }
