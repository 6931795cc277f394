"""The panels the app has, by short name (``--panel NAME``), imported lazily.

Family panels come from the family descriptors; the panels that serve every
family (training, evaluation) are listed here. Only panels that exist are listed.
"""

from __future__ import annotations

import importlib

from studio.core.family import family_panels, families

# Panels that belong to no single family: (class, tab title).
GENERAL_PANELS: dict[str, tuple[str, str]] = {
    "training": ("studio.ui.training_panel:TrainingPanel", "Training"),
    "evaluation": ("studio.ui.evaluation_panel:EvaluationPanel", "Evaluation"),
}


def panel_names() -> list[str]:
    """Family panels in registry order, then the general ones."""
    return list(family_panels()) + list(GENERAL_PANELS)


def panel_for_family(family: str) -> str | None:
    """The panel that shows checkpoints of ``family`` (None if no panel does)."""
    spec = families().get(family)
    return spec.panel_name if spec is not None and spec.panel and spec.panel_name else None


def panel_title(name: str) -> str:
    ref = family_panels().get(name)
    if ref is not None:
        return ref.title
    if name in GENERAL_PANELS:
        return GENERAL_PANELS[name][1]
    return name.replace("-", " ").title()


def panel_class(name: str):
    ref = family_panels().get(name)
    if ref is not None:
        return ref.load()
    if name not in GENERAL_PANELS:
        raise KeyError(f"no panel called '{name}' (known: {', '.join(panel_names())})")
    module, _, attr = GENERAL_PANELS[name][0].partition(":")
    return getattr(importlib.import_module(module), attr)
