"""The panels the app has, by short name (``--panel NAME``), imported lazily.

Family panels come from the family descriptors; the panels that serve every
family (training, evaluation) are listed here. Only panels that exist are listed.
"""

from __future__ import annotations

import importlib

from studio.core.family import FamilySpec, panel_families

# Panels that belong to no single family: (class, tab title).
GENERAL_PANELS: dict[str, tuple[str, str]] = {
    "training": ("studio.ui.training_panel:TrainingPanel", "Training"),
    "evaluation": ("studio.ui.evaluation_panel:EvaluationPanel", "Evaluation"),
}


def panel_names() -> list[str]:
    """Family panels in registry order, then the general ones."""
    return list(panel_families()) + list(GENERAL_PANELS)


def panel_for_family(family: str) -> str | None:
    """The panel that shows checkpoints of ``family`` (None if no panel does)."""
    return next((name for name, spec in panel_families().items() if spec.name == family), None)


def panel_title(name: str) -> str:
    spec: FamilySpec | None = panel_families().get(name)
    if spec is not None:
        return spec.panel_title or spec.title
    if name in GENERAL_PANELS:
        return GENERAL_PANELS[name][1]
    return name.replace("-", " ").title()


def panel_class(name: str):
    spec = panel_families().get(name)
    if spec is not None:
        return spec.load("panel")
    if name not in GENERAL_PANELS:
        raise KeyError(f"no panel called '{name}' (known: {', '.join(panel_names())})")
    module, _, attr = GENERAL_PANELS[name][0].partition(":")
    return getattr(importlib.import_module(module), attr)
