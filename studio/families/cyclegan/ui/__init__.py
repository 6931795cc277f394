"""The CycleGAN family's Qt widgets (the only Qt code in this family) and what its panel says."""
