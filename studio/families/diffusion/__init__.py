"""DDPM / DDIM diffusion with a UNet epsilon-predictor: everything about the family, named in one place."""

from studio.core.family import CliOption, FamilySpec

FAMILY = FamilySpec(
    name="diffusion",
    title="Diffusion (DDPM/DDIM)",
    summary="A UNet predicts the noise in x_t; DDPM and DDIM samplers walk back from pure noise.",
    model="studio.families.diffusion.model:build_unet",
    graphs="studio.families.diffusion.graphs:diffusion_graphs",
    trainer="studio.families.diffusion.trainer:DiffusionTrainer",
    sampler="studio.families.diffusion.ops:sample_for_evaluation",
    panel="studio.families.diffusion.ui.panel:DiffusionPanel",
    panel_name="diffusion",
    panel_title="Diffusion playback",
    form_defaults={"steps": 5000, "batch_size": 64, "lr": 2e-4, "model": ""},
    cli_options=(
        CliOption("--base", "base", int, "UNet channels at full resolution"),
        CliOption("--timesteps", "timesteps", int, "diffusion steps T"),
        CliOption("--noise-schedule", "schedule", str, "linear or cosine noise schedule"),
        CliOption("--ema", "ema", float, "EMA decay of the sampling weights"),
    ),
    preprocessing="digit",
    order=60,
)
