"""VAE and beta-VAE: everything about the family, named in one place."""

from studio.core.family import CliOption, FamilySpec

FAMILY = FamilySpec(
    name="vae",
    title="VAE",
    summary="Convolutional VAE with a beta weight on the KL term (beta-VAE).",
    model="studio.families.vae.model:build_vae",
    graphs="studio.families.vae.graphs:vae_graphs",
    trainer="studio.families.vae.trainer:VAETrainer",
    sampler="studio.families.vae.ops:sample_for_evaluation",
    likelihood="studio.families.vae.ops:heldout_likelihood",
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
    training_notes=(
        "<b>loss</b> is the negative ELBO per image, in nats: <b>recon</b> (how badly the decoder "
        "redraws the image from a sampled z, a Bernoulli log-likelihood summed over pixels) plus "
        "&beta;&middot;<b>kl</b> (how far each image's posterior q(z|x) sits from the prior N(0, I)). "
        "Early on recon falls fast; kl rises as the code starts to carry information. A kl near 0 "
        "means the latent is ignored (posterior collapse)."),
    training_equations=(
        r"-\mathrm{ELBO} = \mathbb{E}_{q(z|x)}[-\log p(x|z)] + \beta\,\mathrm{KL}(q(z|x)\,\|\,\mathcal{N}(0,I))",
        r"z = \mu + \sigma \odot \epsilon,\quad \epsilon \sim \mathcal{N}(0, I)",
    ),
)
