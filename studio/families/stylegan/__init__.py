"""A compact StyleGAN (32x32): everything about the family, named in one place."""

from studio.core.family import FamilySpec

_UI = "studio.families.stylegan.ui"

FAMILY = FamilySpec(
    name="stylegan",
    title="StyleGAN",
    summary="Mapping network z -> w, 8 per-layer styles on a learned constant, per-layer noise.",
    model="studio.families.stylegan.model:build_stylegan",
    graphs="studio.families.stylegan.graphs:stylegan_graphs",
    # The latent explorer serves DCGAN checkpoints too (the DCGAN descriptor names it as well).
    panel=f"{_UI}.explorer:GanExplorerPanel",
    panel_name="gan",
    panel_title="GAN explorer",
    extra_panels=(
        ("style-mixing", f"{_UI}.mixing_panel:StyleMixingPanel", "Style mixing"),
        ("noise", f"{_UI}.noise_panel:NoisePanel", "Noise"),
    ),
    preprocessing="rgb",
    order=32,
)
