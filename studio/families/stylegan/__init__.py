"""A compact StyleGAN (32x32): everything about the family, named in one place."""

from studio.core.family import FamilySpec

FAMILY = FamilySpec(
    name="stylegan",
    title="StyleGAN",
    summary="Mapping network z -> w, 8 per-layer styles on a learned constant, per-layer noise.",
    model="studio.families.stylegan.model:build_stylegan",
    graphs="studio.families.stylegan.graphs:stylegan_graphs",
    preprocessing="rgb",
    order=32,
)
