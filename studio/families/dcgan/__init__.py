"""DCGAN: everything about the family, named in one place."""

from studio.core.family import FamilySpec

FAMILY = FamilySpec(
    name="dcgan",
    title="DCGAN",
    summary="Deep convolutional GAN: transposed convolutions with BatchNorm map z to an image.",
    model="studio.families.dcgan.model:build_generator",
    graphs="studio.families.dcgan.graphs:dcgan_graphs",
    preprocessing="digit",
    order=30,
)
