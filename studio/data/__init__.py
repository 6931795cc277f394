"""data layer (free of Qt)."""
