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
    training_notes=(
        "<b>loss</b> is L_simple: the mean squared error between the noise mixed into a training "
        "image and the UNet's guess of it, at a timestep t drawn uniformly from 1..T. It is noisy "
        "because each batch draws other timesteps (small t are the hardest); watch its trend. "
        "Sampling uses the exponential moving average (EMA) of the weights, so previews lag it."),
    training_equations=(
        r"L_{simple} = \mathbb{E}_{t, x_0, \epsilon}\,\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\|^2",
    ),
)
