"""training layer (free of Qt)."""
