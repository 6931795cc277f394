"""The VAE family's Qt widgets (the only Qt code in this family)."""
