"""DCGAN: everything about the family, named in one place."""

from studio.core.family import CliOption, FamilySpec
from studio.families.stylegan import GAN_TRAINING_EQUATIONS, GAN_TRAINING_NOTES

FAMILY = FamilySpec(
    name="dcgan",
    title="DCGAN",
    summary="Deep convolutional GAN: transposed convolutions with BatchNorm map z to an image.",
    model="studio.families.dcgan.model:build_generator",
    graphs="studio.families.dcgan.graphs:dcgan_graphs",
    trainer="studio.families.dcgan.trainer:DCGANTrainer",
    sampler="studio.families.dcgan.ops:sample_for_evaluation",
    # One latent explorer for both GAN families; it lives with the StyleGAN, whose w it also explores.
    panel="studio.families.stylegan.ui.explorer:GanExplorerPanel",
    panel_name="gan",
    panel_title="GAN explorer",
    # The GAN options (loss zoo and tricks) are model options: "loss=hinge, d_steps=2, label_smoothing=0.1".
    form_defaults={"steps": 6000, "batch_size": 64, "lr": 2e-4,
                   "model": "loss=ns, d_steps=1, label_smoothing=0.1, instance_noise=0.1"},
    cli_options=(
        CliOption("--loss", "loss", str, "ns, lsgan, wgan-gp or hinge"),
        CliOption("--d-steps", "d_steps", int, "discriminator updates per generator update"),
        CliOption("--label-smoothing", "label_smoothing", float, "one-sided: real targets 1 - this"),
        CliOption("--instance-noise", "instance_noise", float, "std of the noise on D's inputs, decayed to 0"),
        CliOption("--augment", "augment", str, "what varies D's inputs, real and fake alike: translation, cutout "
                  "or translation,cutout (DiffAugment)"),
    ),
    preprocessing="digit",
    order=30,
    training_notes=GAN_TRAINING_NOTES,
    training_equations=GAN_TRAINING_EQUATIONS,
)
