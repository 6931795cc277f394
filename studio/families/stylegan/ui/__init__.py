"""The StyleGAN family's Qt panels: the GAN latent explorer (DCGAN too), style mixing and noise."""
