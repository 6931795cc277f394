"""Trainer families by name, imported lazily so the CLI and worker stay light."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the trainer base would import torch
    from studio.training.trainer import Trainer

TRAINERS = {
    "vae": "studio.training.vae_trainer:VAETrainer",
    "diffusion": "studio.training.diffusion_trainer:DiffusionTrainer",
}


def trainer_class(family: str) -> "type[Trainer]":
    if family not in TRAINERS:
        raise ValueError(f"unknown model family '{family}' (known: {', '.join(sorted(TRAINERS))})")
    module, name = TRAINERS[family].split(":")
    return getattr(importlib.import_module(module), name)
