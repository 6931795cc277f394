"""What a CycleGAN checkpoint says about itself, as the panel and the command line show it.

Read from the checkpoint's metadata alone (config and measured metrics): the domains' names, the
losses it trained with, what the evaluation measured, and which other checkpoint is its pair with
the semantic loss flipped. No Qt, no weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


def domain_name(value: Any, fallback: str) -> str:
    """How a domain is called on screen: "handwritten", "printed", or a folder's name."""
    text = str(value or "").strip()
    if not text:
        return fallback
    if "/" in text or "\\" in text:
        return Path(text).name or text
    return text



@dataclass(frozen=True)
class ModelFacts:
    """What the panel reads from a CycleGAN checkpoint's metadata."""

    checkpoint: str
    domain_a: str
    domain_b: str
    digits: bool
    channels: int
    image_size: int
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    semantic_weight: float = 0.0
    loss: str = "lsgan"
    step: int = 0

    label_kept: tuple[float | None, float | None] = (None, None)  # held-out share A→B, B→A, if measured
    fid_ratio: tuple[float | None, float | None] = (None, None)  # held-out FID ÷ the target's floor, if measured
    # Real digits of a printed target redrawn in other typefaces, scored the same way: (typeface, FID ratio)
    other_typefaces: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_metadata(cls, path: str, meta: dict[str, Any]) -> "ModelFacts":
        cfg, metrics = meta.get("config", {}), meta.get("metrics", {})
        digits = bool(cfg.get("digits", False)) and int(cfg.get("channels", 1)) == 1
        kept = tuple(metrics.get(f"label_kept_{d}") for d in ("AtoB", "BtoA"))
        ratios = tuple(metrics.get(f"fid_ratio_{d}") for d in ("AtoB", "BtoA"))
        prefix = f"fid_ratio_{cfg.get('domain_b')}_in_"
        typefaces = tuple(sorted(((k[len(prefix):], float(v)) for k, v in metrics.items()
                                  if k.startswith(prefix) and isinstance(v, (int, float))), key=lambda t: t[1]))
        return cls(str(path), domain_name(cfg.get("domain_a"), _run_dataset(meta, digits)),
                   domain_name(cfg.get("domain_b"), "B"), digits, int(cfg.get("channels", 1)),
                   int(cfg.get("image_size", 32)), float(cfg.get("cycle_weight", 10.0)),
                   float(cfg.get("identity_weight", 5.0)), float(cfg.get("semantic_weight", 0.0)),
                   str(cfg.get("loss", "lsgan")), int(meta.get("step", 0)),
                   tuple(float(k) if isinstance(k, (int, float)) else None for k in kept),
                   tuple(float(r) if isinstance(r, (int, float)) else None for r in ratios), typefaces)

    def describe(self) -> str:
        kind = "digits" if self.digits else ("grey" if self.channels == 1 else "colour")
        semantic = f", semantic loss {self.semantic_weight:g}" if self.semantic_weight > 0 else ""
        a_to_b, b_to_a = self.label_kept
        kept = (f"; digit kept {a_to_b:.0%} A→B, {b_to_a:.0%} B→A (held out)"
                if a_to_b is not None and b_to_a is not None else "")
        return (f"{self.domain_a} ↔ {self.domain_b}, {self.image_size}x{self.image_size} {kind}, "
                f"cycle λ {self.cycle_weight:g}, identity {self.identity_weight:g}{semantic}, step {self.step}{kept}")

    def differs_only_in_semantic_loss(self, other: "ModelFacts") -> bool:
        """The same translation task trained with the semantic loss on in one and off in the other:
        the pair the panel's semantic-loss switch flips between."""
        same_task = ((self.domain_a, self.domain_b, self.digits, self.channels, self.image_size)
                     == (other.domain_a, other.domain_b, other.digits, other.channels, other.image_size))
        return same_task and (self.semantic_weight > 0) != (other.semantic_weight > 0)


def semantic_partner(model: ModelFacts, candidates: list[tuple[str, dict[str, Any]]]) -> ModelFacts | None:
    """Among (path, metadata) of other checkpoints, the one that differs from ``model`` only in the
    semantic loss, or None. One in the same folder comes first (the shipped pair, or a user's two runs
    side by side); otherwise the first in the order given."""
    mine = Path(model.checkpoint).resolve()
    for path, meta in sorted(candidates, key=lambda c: Path(c[0]).resolve().parent != mine.parent):
        if Path(path).resolve() == mine:
            continue
        other = ModelFacts.from_metadata(path, meta)
        if model.differs_only_in_semantic_loss(other):
            return other
    return None


def semantic_comparison(model: ModelFacts, partner: ModelFacts | None) -> str:
    """One sentence: how often each of the pair keeps the digit, as measured on held-out digits."""
    if partner is None:
        return ""
    with_loss, without = (model, partner) if model.semantic_weight > 0 else (partner, model)

    def kept(m: ModelFacts) -> str:
        a, b = m.label_kept
        return f"{a:.1%} / {b:.1%}" if a is not None and b is not None else "not measured"
    return (f"Digit kept (held out, {model.domain_a}→{model.domain_b} / back): with the semantic loss "
            f"{kept(with_loss)}, without {kept(without)}.")


def fid_scale(model: ModelFacts) -> str:
    """What the held-out FID says, and the scale it is read on: other typefaces of a printed target."""
    there, back = model.fid_ratio
    if there is None or back is None:
        return ""
    text = (f"Measured on held-out digits, the translations' FID against the target domain is "
            f"{there:.3g}× its real-vs-real floor ({model.domain_a} → {model.domain_b}) and {back:.3g}× "
            f"({model.domain_b} → {model.domain_a}); 1× would match real digits.")
    if model.other_typefaces:
        low, high = (f"{model.other_typefaces[i][1]:.0f}" for i in (0, -1))
        spread = low if low == high else f"{low}–{high}"
        names = ", ".join(name for name, _ in model.other_typefaces)
        text += (f" For scale: the same {model.domain_b} digits drawn in other typefaces ({names}) score "
                 f"{spread}×. In the classifier's feature space FID tells typefaces apart, so towards "
                 f"{model.domain_b} it asks for this one font, not for print in general.")
    return text


def _run_dataset(meta: dict[str, Any], digits: bool) -> str:
    """What domain A is called when it is the run's own dataset (config domain_a ""): the MNIST digits
    (the trainers' default, IDX files) are "handwritten"; another dataset goes by its name."""
    dataset = str(meta.get("dataset") or "")
    if not dataset or "idx" in dataset.lower() or "mnist" in dataset.lower():
        return "handwritten" if digits or not dataset else "A"
    return domain_name(dataset, "A")
