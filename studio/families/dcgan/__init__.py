"""DCGAN: everything about the family, named in one place."""

from studio.core.family import FamilySpec

FAMILY = FamilySpec(
    name="dcgan",
    title="DCGAN",
    summary="Deep convolutional GAN: transposed convolutions with BatchNorm map z to an image.",
    model="studio.families.dcgan.model:build_generator",
    graphs="studio.families.dcgan.graphs:dcgan_graphs",
    # One latent explorer for both GAN families; it lives with the StyleGAN, whose w it also explores.
    panel="studio.families.stylegan.ui.explorer:GanExplorerPanel",
    panel_name="gan",
    panel_title="GAN explorer",
    preprocessing="digit",
    order=30,
)
