"""The panels the app has, by short name (``--panel NAME``), imported lazily."""

from __future__ import annotations

import importlib

# Only panels that exist are listed: no placeholders.
PANELS: dict[str, str] = {
    "vae": "studio.ui.vae_panel:VAEPanel",
    "training": "studio.ui.training_panel:TrainingPanel",
    "diffusion": "studio.ui.diffusion_panel:DiffusionPanel",
}

# Which panel shows a checkpoint of each family.
PANEL_FOR_FAMILY: dict[str, str] = {
    "vae": "vae",
    "diffusion": "diffusion",
}


# Tab titles, known without importing the panel (panels are built on first view).
PANEL_TITLES: dict[str, str] = {
    "vae": "VAE explorer",
    "training": "Training",
    "diffusion": "Diffusion playback",
}


def panel_title(name: str) -> str:
    return PANEL_TITLES.get(name, name.replace("-", " ").title())


def panel_class(name: str):
    module, cls = PANELS[name].split(":")
    return getattr(importlib.import_module(module), cls)
