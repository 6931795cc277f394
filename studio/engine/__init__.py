"""engine layer (free of Qt)."""
