"""VAE and beta-VAE: everything about the family, named in one place."""

from studio.core.family import CliOption, FamilySpec

FAMILY = FamilySpec(
    name="vae",
    title="VAE",
    summary="Convolutional VAE with a beta weight on the KL term (beta-VAE).",
    model="studio.families.vae.model:build_vae",
    graphs="studio.families.vae.graphs:vae_graphs",
    trainer="studio.families.vae.trainer:VAETrainer",
    panel="studio.families.vae.ui.panel:VAEPanel",
    panel_name="vae",
    panel_title="VAE explorer",
    form_defaults={"steps": 2000, "batch_size": 128, "lr": 1e-3, "model": "latent_dim=2"},
    cli_options=(
        CliOption("--latent-dim", "latent_dim", int, "size of the latent space"),
        CliOption("--beta", "beta", float, "beta-VAE weight of the KL term"),
    ),
    live_options=("lr", "beta"),
    preprocessing="digit",
    order=10,
)
