"""What the CycleGAN panel knows, without Qt: the model, the direction, the pictures and the folder job.

The panel's widgets bind to one ``CyclePanelState``: a gesture changes it through a
method here and the panel redraws from it. What the pictures are called, what each
number means in words, which requests are sent and what a folder job may start
with are decided here, so they are tested with plain pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.families.cyclegan.facts import ModelFacts
from studio.families.cyclegan.ops import (
    DEFAULT_OVERLAP, FITS, CycleResult, CycleTranslate, CycleTranslateFolder, FolderProgress, Target,
    TranslatedImage,
)

DIRECTIONS = ("AtoB", "BtoA")
MAX_PICTURES = 64  # a bigger drop is a job for folder translation: it would stall the panel
GAP = 2  # pixels between the pictures of a saved strip (as the renderer's strip)


def failure_line(name: str, reason: str) -> str:
    """"NAME: why" for a picture that failed, whether the loader's reason starts with NAME, its full path, or neither."""
    reason = " ".join(str(reason).split())
    if reason.startswith(name):
        return reason
    head, sep, rest = reason.partition(": ")
    if sep and Path(head).name == Path(name).name:
        return f"{name}: {rest}"
    return f"{name}: {reason}"


@dataclass
class FolderJob:
    """Translating a whole folder: where from, where to, and how far it got."""

    source: str = ""
    output: str = ""
    save_reconstruction: bool = False
    running: bool = False
    cancelled: bool = False
    progress: FolderProgress | None = None

    def problem(self) -> str | None:
        """Why the job cannot start now (one line), or None."""
        if not self.source:
            return "Choose the folder to translate first."
        if not Path(self.source).is_dir():
            return f"{self.source}: no such folder"
        if not self.output:
            return "Choose the output folder first."
        if Path(self.output).resolve() == Path(self.source).resolve():
            return "The output folder must differ from the input folder (its pictures would be mixed in)."
        return None

    def start(self) -> None:
        self.running, self.cancelled, self.progress = True, False, None

    def update(self, progress: FolderProgress) -> None:
        self.progress = progress
        if progress.finished:
            self.running = False

    def cancel(self) -> None:
        if self.running:
            self.running, self.cancelled = False, True

    def fail(self) -> None:
        self.running = False

    def written(self) -> int:
        p = self.progress
        return 0 if p is None else p.done - len(p.failed)

    def summary(self) -> str:
        p = self.progress
        if p is None:
            return "translating…" if self.running else ("cancelled before the first batch" if self.cancelled else "")
        failed = f", {len(p.failed)} failed" if p.failed else ""
        rate = f", {p.images_per_s:.0f} images/s" if p.images_per_s else ""
        if self.running:
            return f"{p.done} of {p.total}{failed}{rate}"
        if self.cancelled:
            return f"cancelled after {p.done} of {p.total}: {self.written()} written{failed}"
        return f"done: {self.written()} of {p.total} written to {self.output}{failed}{rate}"

    def failures(self) -> list[str]:
        """One line per failed file: its path inside the input folder, and why."""
        if self.progress is None:
            return []
        return [failure_line(self._relative(name), reason) for name, reason in self.progress.failed]

    def _relative(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.source).as_posix()
        except ValueError:
            return path


@dataclass
class CyclePanelState:
    model: ModelFacts | None = None
    direction: str = "AtoB"
    fit: str = "pad"
    overlap: int = DEFAULT_OVERLAP
    sources: tuple[str | bytes, ...] = ()  # the pictures on screen: paths or encoded bytes
    names: tuple[str, ...] = ()
    result: CycleResult | None = None
    selected: int = 0
    sample: bool = False  # the pictures on screen are the panel's own sample digit, not the user's
    # Pictures asked for and not shown yet: (sources, names, sample). A direction switched meanwhile
    # translates these, not the older ones on screen; a failed request goes back to those.
    pending: tuple[tuple, tuple, bool] | None = None
    folder: FolderJob = field(default_factory=FolderJob)
    partner: ModelFacts | None = None  # the same task with the semantic loss flipped, if one is at hand

    # --- the model ------------------------------------------------------------------
    def open(self, path: str, meta: dict[str, Any]) -> None:
        """A new checkpoint: its pictures are stale (the same sources translate again)."""
        self.model = ModelFacts.from_metadata(path, meta)
        self.partner = None
        self.result = None
        self.selected = 0

    @property
    def checkpoint(self) -> str | None:
        return self.model.checkpoint if self.model else None

    def domains(self, direction: str | None = None) -> tuple[str, str]:
        """(from, to) domain names of ``direction`` (default: the current one)."""
        a, b = (self.model.domain_a, self.model.domain_b) if self.model else ("A", "B")
        return (a, b) if (direction or self.direction) == "AtoB" else (b, a)

    def direction_label(self, direction: str | None = None) -> str:
        source, target = self.domains(direction)
        return f"{source} → {target}"

    def generators(self, direction: str | None = None) -> tuple[str, str]:
        """(there, back): the generators that translate and that make the round trip."""
        return ("G_AB", "G_BA") if (direction or self.direction) == "AtoB" else ("G_BA", "G_AB")

    # --- settings ---------------------------------------------------------------------
    def set_direction(self, direction: str) -> bool:
        """True if it changed."""
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction '{direction}' (AtoB or BtoA)")
        changed = direction != self.direction
        self.direction = direction
        return changed

    def swapped(self) -> str:
        return "BtoA" if self.direction == "AtoB" else "AtoB"

    def set_fit(self, fit: str) -> bool:
        if fit not in FITS:
            raise ValueError(f"unknown fit '{fit}' (choose {', '.join(FITS)})")
        changed = fit != self.fit
        self.fit = fit
        return changed

    # --- the pictures -----------------------------------------------------------------
    @staticmethod
    def names_for(sources: list[str | bytes], unnamed: str = "dropped image") -> tuple[str, ...]:
        """A file's name, or ``unnamed`` (numbered when there are several) for picture data."""
        count = sum(1 for s in sources if isinstance(s, (bytes, bytearray)))
        names, k = [], 0
        for source in sources:
            if isinstance(source, (bytes, bytearray)):
                k += 1
                names.append(unnamed if count == 1 else f"{unnamed} {k}")
            else:
                names.append(Path(source).name or str(source))
        return tuple(names)

    def ask(self, sources, names, sample: bool = False) -> None:
        """The user (or the sample button) wants these pictures translated."""
        self.pending = (tuple(sources), tuple(names), sample)

    def wanted(self) -> tuple[tuple, tuple, bool]:
        """(sources, names, sample) of the newest pictures asked for."""
        return self.pending if self.pending is not None else (self.sources, self.names, self.sample)

    def request(self, target: Target) -> CycleTranslate | None:
        """The request for the newest pictures asked for, as the settings say (None: no pictures or model)."""
        sources, names, _ = self.wanted()
        if not sources or self.model is None:
            return None
        return CycleTranslate(target, sources, self.direction, self.fit, self.overlap, names)

    def show(self, result: CycleResult, request: CycleTranslate) -> None:
        """A translation arrived: its pictures are the ones on screen now."""
        same = request.sources == self.sources
        sample = self.pending[2] if self.pending is not None and self.pending[0] == request.sources else self.sample
        self.sources, self.names, self.sample = request.sources, request.names, sample
        self.pending = None
        self.result = result
        if not same or self.selected >= len(result.images):
            self.selected = 0

    def refused(self) -> None:
        """The newest request failed (no picture loaded): the pictures on screen stay."""
        self.pending = None

    def select(self, index: int) -> None:
        if self.result is not None and 0 <= index < len(self.result.images):
            self.selected = index

    def current(self) -> TranslatedImage | None:
        if self.result is None or not self.result.images:
            return None
        return self.result.images[min(self.selected, len(self.result.images) - 1)]

    # --- words ------------------------------------------------------------------------
    def view_titles(self) -> tuple[str, str, str]:
        source, target = self.domains()
        there, back = self.generators()
        return (f"input: {source}", f"translation: {target}  ({there})",
                f"round trip: {source} again  ({back})")

    def reading_texts(self) -> tuple[str, str, str]:
        """The classifier's reading under each picture ("" when the model reads no digits)."""
        image = self.current()
        if image is None or image.readings is None:
            return "", "", ""
        r = image.readings
        return tuple(f"classifier reads {x.label} ({x.confidence:.0%})"  # type: ignore[return-value]
                     for x in (r.input, r.translation, r.reconstruction))

    def metrics_text(self) -> str:
        image = self.current()
        if image is None:
            return ""
        return (f"cycle L1 {image.cycle_l1:.3f} · translation L1 {image.translation_l1:.3f} "
                f"(mean |difference| from the input, 0..1): {self.cycle_verdict()}")

    def cycle_verdict(self) -> str:
        """Whether the round trip came back: closer to the input than the translation went, or not."""
        image = self.current()
        if image is None:
            return ""
        if image.cycle_l1 < image.translation_l1:
            return "the round trip came back closer to the input than the translation went"
        return "the round trip is no closer to the input than the translation: the cycle is not kept here"

    def fitting_text(self) -> str:
        image = self.current()
        return f"fitted: {image.fitting.description}" if image is not None else ""

    def failures_text(self) -> str:
        """One line about the pictures that did not translate ("" when all did)."""
        if self.result is None or not self.result.failed:
            return ""
        first = failure_line(*self.result.failed[0])
        more = f" (and {len(self.result.failed) - 1} more)" if len(self.result.failed) > 1 else ""
        done = len(self.result.images)
        return f"{done} translated, {len(self.result.failed)} could not be: {first}{more}"

    def item_label(self, index: int) -> str:
        """One line for the picture list: name, the digits read along the round trip, cycle L1."""
        image = self.result.images[index]
        read = ""
        if image.readings is not None:
            r = image.readings
            read = f"  {r.input.label}→{r.translation.label}→{r.reconstruction.label}"
        return f"{image.name}{read}  cycle {image.cycle_l1:.3f}"

    def timing_text(self) -> str:
        if self.result is None:
            return ""
        classifier = f", classifier {self.result.classifier_ms:.1f} ms" if self.result.classifier_ms else ""
        return f"generators {self.result.model_ms:.1f} ms{classifier}"

    # --- saving -----------------------------------------------------------------------
    def strip(self) -> np.ndarray | None:
        """input | translation | round trip of the picture on screen, 2-pixel gaps (as the renderer's strip)."""
        image = self.current()
        if image is None:
            return None
        gap = np.zeros((image.input.shape[0], GAP) + image.input.shape[2:], np.uint8)
        return np.concatenate([image.input, gap, image.translation, gap, image.reconstruction], axis=1)

    def save_name(self, what: str) -> str:
        image = self.current()
        stem = Path(image.name).stem if image is not None else "picture"
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "picture"
        return f"{stem}_{self.direction}{'_strip' if what == 'strip' else ''}.png"

    # --- folders ----------------------------------------------------------------------
    def folder_request(self, target: Target) -> CycleTranslateFolder:
        job = self.folder
        return CycleTranslateFolder(target, (job.source,), job.output, self.direction, self.fit, self.overlap,
                                    save_reconstruction=job.save_reconstruction)
