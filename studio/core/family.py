"""The family registry: one descriptor per model family, found by folder.

Every family is a package ``studio/families/<name>/`` whose ``__init__`` holds
``FAMILY = FamilySpec(...)``. The descriptor names everything about the
family (model builder, interactive graphs, trainer, panel, defaults, CLI
options, input preprocessing) as ``"module:attribute"`` strings, so reading it
imports neither torch nor Qt; each part is imported when it is first used.
Adding a family means adding one folder: nothing else keeps a list.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

FAMILIES_PACKAGE = "studio.families"


@dataclass(frozen=True)
class CliOption:
    """A family-specific flag of ``python -m studio.train`` (``--latent-dim`` -> model key ``latent_dim``)."""

    flag: str
    key: str
    type: type = float
    help: str = ""


@dataclass(frozen=True)
class FamilySpec:
    name: str  # checkpoint metadata "family" and ``python -m studio.train NAME``
    title: str  # what the user reads
    model: str  # "module:builder", builder(config dict) -> nn.Module
    graphs: str  # "module:fn", fn(model) -> {graph name: GraphSpec}
    trainer: str | None = None  # "module:TrainerClass"
    # Sampling for evaluation, "module:function": fn(runtime, n, seed=0, backend="onnx",
    # device="auto", progress=None, **sampler options) -> (float32 images (N, C, H, W) in
    # [0, 1], milliseconds per image). ``progress(done, total)`` is called after every
    # batch or step and may raise to cancel. None: the family generates nothing.
    sampler: str | None = None
    # Held-out likelihood, "module:function": fn(runtime, images, seed=0) -> dict with
    # "bound", "nats" and "bits_per_dim". None: the family has no likelihood.
    likelihood: str | None = None
    panel: str | None = None  # "module:PanelClass" (Qt), shown as --panel panel_name
    panel_name: str | None = None
    panel_title: str = ""
    # More panels of the family, each (panel name, "module:PanelClass", tab title).
    extra_panels: tuple[tuple[str, str, str], ...] = ()
    # Training-form starting points (steps, batch_size, lr, model options as text).
    form_defaults: dict[str, Any] = field(default_factory=dict)
    cli_options: tuple[CliOption, ...] = ()
    # Hyperparameters that can change mid-run from the training panel.
    live_options: tuple[str, ...] = ("lr",)
    # How a user's image becomes model input: "digit" (grey, light ink on dark, as MNIST)
    # or "rgb". Only digit models guess the ink polarity.
    preprocessing: str = "rgb"
    summary: str = ""
    # What the training panel's loss curves mean for this family (HTML), and the loss as equations
    # (matplotlib mathtext), shown in its Explain pane.
    training_notes: str = ""
    training_equations: tuple[str, ...] = ()
    # Place in the lecture's order (autoencoders, autoregressive, GANs, ..., diffusion):
    # families, tabs and form choices are listed by it.
    order: int = 100

    def load(self, part: str):
        """Import the object a descriptor field names (``model``, ``trainer``, ``panel`` ...)."""
        ref = getattr(self, part)
        if not ref:
            raise LookupError(f"the '{self.name}' family has no {part}")
        return load_ref(ref)

    def panels(self) -> list["PanelRef"]:
        """Every panel the family names, its main panel first."""
        found = []
        if self.panel and self.panel_name:
            found.append(PanelRef(self.panel_name, self.panel, self.panel_title or self.title, self.name))
        found += [PanelRef(name, ref, title, self.name) for name, ref, title in self.extra_panels]
        return found

    def build_model(self, config: dict[str, Any]):
        return self.load("model")(dict(config))

    def graph_specs(self, model) -> dict:
        return self.load("graphs")(model)


def load_ref(ref: str):
    """Import ``"module:attribute"``."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class PanelRef:
    """A panel named by a family descriptor: ``--panel name``, its class and tab title."""

    name: str
    ref: str  # "module:PanelClass"
    title: str
    family: str  # the descriptor that names it

    def load(self):
        return load_ref(self.ref)


class UnknownFamily(KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; this is a sentence
        return str(self.args[0])


_cache: dict[str, FamilySpec] | None = None


def families() -> dict[str, FamilySpec]:
    """Every family, by name, discovered from the folders in ``studio/families``."""
    global _cache
    if _cache is None:
        package = importlib.import_module(FAMILIES_PACKAGE)
        found = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.ispkg:
                continue
            spec = getattr(importlib.import_module(f"{FAMILIES_PACKAGE}.{info.name}"), "FAMILY", None)
            if isinstance(spec, FamilySpec):
                found[spec.name] = spec
        _cache = dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))
    return _cache


def get_family(name: str) -> FamilySpec:
    known = families()
    if not isinstance(name, str) or name not in known:
        raise UnknownFamily(f"unknown model family {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


def trainable_families() -> list[str]:
    return [n for n, f in families().items() if f.trainer]


def generator_families() -> list[str]:
    """Families that can sample images for evaluation."""
    return [n for n, f in families().items() if f.sampler]


def panel_families() -> dict[str, FamilySpec]:
    """Families with a panel, by panel name (a panel two families share goes to the first)."""
    return {name: families()[ref.family] for name, ref in family_panels().items()}


def family_panels() -> dict[str, PanelRef]:
    """Every family panel (main and extra), by panel name, in registry order.

    Two families may name the same panel (one explorer for DCGAN and StyleGAN);
    the first in registry order lists it.
    """
    found: dict[str, PanelRef] = {}
    for spec in families().values():
        for ref in spec.panels():
            found.setdefault(ref.name, ref)
    return found
