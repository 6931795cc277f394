"""A compact StyleGAN (32x32): everything about the family, named in one place."""

from studio.core.family import CliOption, FamilySpec

_UI = "studio.families.stylegan.ui"

# What a GAN's loss curves mean; DCGAN, which shares this family's explorer, shows the same.
GAN_TRAINING_NOTES = (
    "Two networks play a game. <b>d_loss</b> is the discriminator's loss (telling real digits "
    "from generated ones); <b>g_loss</b> the generator's (fooling it). Neither should go to "
    "zero: a d_loss near 0 means D wins and G stops learning. <b>d_real</b> and <b>d_fake</b> are "
    "D's mean scores on real and generated images; they should stay apart but not diverge.")
GAN_TRAINING_EQUATIONS = (
    r"L_D = -\mathbb{E}_x[\log D(x)] - \mathbb{E}_z[\log(1 - D(G(z)))]",
    r"L_G = -\mathbb{E}_z[\log D(G(z))]\quad \mathrm{(non\ saturating)}",
)

FAMILY = FamilySpec(
    name="stylegan",
    title="StyleGAN",
    summary="Mapping network z -> w, 8 per-layer styles on a learned constant, per-layer noise.",
    model="studio.families.stylegan.model:build_stylegan",
    graphs="studio.families.stylegan.graphs:stylegan_graphs",
    trainer="studio.families.stylegan.trainer:StyleGANTrainer",
    # The latent explorer serves DCGAN checkpoints too (the DCGAN descriptor names it as well).
    panel=f"{_UI}.explorer:GanExplorerPanel",
    panel_name="gan",
    panel_title="GAN explorer",
    extra_panels=(
        ("style-mixing", f"{_UI}.mixing_panel:StyleMixingPanel", "Style mixing"),
        ("noise", f"{_UI}.noise_panel:NoisePanel", "Noise"),
    ),
    form_defaults={"steps": 4000, "batch_size": 16, "lr": 2e-3,
                   "model": "loss=ns, r1_gamma=0.1, mixing_prob=0.9, recolour=true"},
    cli_options=(
        CliOption("--loss", "loss", str, "ns, lsgan, wgan-gp or hinge"),
        CliOption("--d-steps", "d_steps", int, "discriminator updates per generator update"),
        CliOption("--mixing-prob", "mixing_prob", float, "share of samples trained with two latents"),
    ),
    preprocessing="rgb",
    order=32,
    training_notes=GAN_TRAINING_NOTES,
    training_equations=GAN_TRAINING_EQUATIONS,
)
