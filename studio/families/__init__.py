"""Model families that live beside studio.models (one package per family)."""
