"""models layer (free of Qt)."""
