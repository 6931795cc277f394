"""CycleGAN: drop any picture in and see it translated A → B or B → A, beside the round trip.

The widgets bind to one ``CyclePanelState`` (studio.families.cyclegan.state); requests go to the
renderer (studio.families.cyclegan.ops): ``CycleTranslate`` for what is dropped or pasted,
``CycleTranslateFolder`` for a whole folder, batch by batch, cancellable.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from studio.core.checkpoint import CheckpointError, read_metadata
from studio.data.images import save_png
from studio.engine.renderer import RenderResult
from studio.families.cyclegan import ops
from studio.families.cyclegan.facts import semantic_comparison, semantic_partner
from studio.families.cyclegan.state import MAX_PICTURES, CyclePanelState
from studio.families.cyclegan.ui import drops, samples
from studio.families.cyclegan.ui.controls import ControlsRow
from studio.families.cyclegan.ui.explain import explain
from studio.families.cyclegan.ui.folder_box import FolderBox, FolderTranslation
from studio.families.cyclegan.ui.views import PictureList, TripletViews
from studio.ui.panel import RenderPanel
from studio.ui.widgets.checkpoint_picker import CheckpointPicker

NO_CHECKPOINT = "No CycleGAN checkpoint: File > Open checkpoint (or train one in the Training panel)."
DROP_HERE = "Drop pictures here (files, a folder, an image from a browser) or paste one (Ctrl+V)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp *.gif *.tif *.tiff);;All files (*)"


class CycleGanPanel(drops.PictureDrops, RenderPanel):
    name = "cyclegan"
    title = "CycleGAN"
    families = ("cyclegan",)
    accepts_images = True

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        ops.register(self.bridge, self.bridge.pool)
        self.state = CyclePanelState()
        self._samples_taken = {domain: 0 for domain in samples.DIGIT_DOMAINS}
        self._explain_stale = False
        self._build()
        self.open_initial_checkpoint(self.picker)

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        self.picker = CheckpointPicker("cyclegan")
        self.picker.chosen.connect(self.open_checkpoint)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker)
        top.addWidget(self.info, 1)

        self.controls = ControlsRow()
        c = self.controls
        self.toggle, self.fit, self.overlap = c.toggle, c.fit, c.overlap
        self.sample_button, self.open_button = c.sample_button, c.open_button
        self.save_button, self.save_strip_button = c.save_button, c.save_strip_button
        self.toggle.changed.connect(self.set_direction)
        c.fitChanged.connect(self.set_fit)
        c.overlapChanged.connect(self._overlap_changed)
        c.sampleRequested.connect(self.sample_digit)
        c.openRequested.connect(self.choose_pictures)
        c.saveRequested.connect(self.save_dialog)
        c.semanticToggled.connect(self.switch_semantic_loss)

        self.views = TripletViews()
        self.views.clear(DROP_HERE)
        self.views.translation.painted.connect(self._painted)
        self.pictures = PictureList()
        self.pictures.picked.connect(self.select_picture)
        self.folder_box = FolderBox()
        self.folder = FolderTranslation(self, self.folder_box)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("Pictures of the last drop"))
        side_layout.addWidget(self.pictures, 1)
        side_layout.addWidget(self.folder_box)
        self.columns = QSplitter(Qt.Orientation.Horizontal)
        self.columns.setObjectName("columns")
        self.columns.addWidget(self.views)
        self.columns.addWidget(side)
        self.columns.setStretchFactor(0, 3)
        self.columns.setStretchFactor(1, 1)

        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(top)
        outer.addWidget(self.controls)
        outer.addWidget(self.columns, 1)
        self.explain.set_title("Explain: cycle consistency (F1 folds this)")
        self._show_explain()
        self._enable()
        self.context.checkpointUpdated.connect(self._checkpoint_updated)

    def menu_actions(self) -> list[QAction]:
        items = (("&Swap direction", "Ctrl+T", lambda: self.set_direction(self.state.swapped())),
                 ("Sample &digit", "Ctrl+R", self.sample_digit),
                 ("&Open pictures…", "Ctrl+Shift+O", self.choose_pictures),
                 ("&Save translation…", "Ctrl+S", lambda: self.save_dialog("translation")),
                 ("Save s&trip…", "Ctrl+Shift+S", lambda: self.save_dialog("strip")),
                 ("Translate a &folder…", "Ctrl+Shift+F", self.folder.choose_source),
                 ("&Cancel folder translation", "Esc", self.folder.cancel))
        actions = []
        for text, keys, slot in items:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            actions.append(action)
        return actions

    def _enable(self) -> None:
        has_model = self.checkpoint is not None
        self.controls.enable(has_model, has_model and samples.available(self.state.domains()[0]),
                             self.state.current() is not None)

    # --- checkpoints ---------------------------------------------------------------
    def open_initial_checkpoint(self, picker) -> None:
        initial = self.context.checkpoints.get("cyclegan") or picker.first()
        if initial:
            self.open_checkpoint(initial)
        else:
            self.views.clear(NO_CHECKPOINT)
            self.show_error(NO_CHECKPOINT)

    def open_checkpoint(self, path: str, keep_picture: bool = False) -> None:
        """Open a CycleGAN checkpoint; ``keep_picture`` translates the picture on screen again, even
        the panel's own sample digit (the semantic-loss switch compares two models on one picture)."""
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.on_error("open", str(exc))
            return
        self.state.open(str(Path(path)), meta)
        self.checkpoint = self.state.checkpoint
        self.info.setText(self.state.model.describe())
        self.toggle.set_labels(self.state.direction_label("AtoB"), self.state.direction_label("BtoA"))
        self.views.clear("translating…")
        self.views.set_titles(self.state.view_titles())
        self.pictures.show_state(self.state)
        self._find_semantic_partner()
        self._enable()
        if self.state.wanted()[0] and (keep_picture or not self.state.wanted()[2]):
            self.translate()  # the user's pictures, through the new model
        else:
            self.sample_digit()
        self._show_explain()

    def _find_semantic_partner(self) -> None:
        """Look among the picker's checkpoints for this task trained with the semantic loss flipped."""
        candidates = []
        for index in range(self.picker.count()):
            path = self.picker.itemData(index)
            try:
                candidates.append((path, read_metadata(path)))
            except CheckpointError:
                continue  # an unreadable file in the list is no partner; opening it says why
        self.state.partner = semantic_partner(self.state.model, candidates)
        self._show_semantic()

    def _show_semantic(self) -> None:
        model, partner = self.state.model, self.state.partner
        self.controls.show_semantic(model.semantic_weight > 0, partner is not None,
                                    semantic_comparison(model, partner))

    def switch_semantic_loss(self, _wanted_on: bool) -> None:
        """The semantic-loss switch: the same picture through the model trained with (or without) it.
        The box is enabled only with a partner, whose loss is the other way round from the model's."""
        if self.state.partner is None:
            self._show_semantic()  # undo the click's tick
            return
        self.open_checkpoint(self.state.partner.checkpoint, keep_picture=True)

    def _checkpoint_updated(self, family: str, path: str) -> None:
        if family == "cyclegan" and self.checkpoint:
            mine, theirs = Path(self.checkpoint).resolve(), Path(path).resolve()
            if theirs == mine or theirs.parent == mine:  # a followed run folder counts as its newest file
                self.refresh()

    def target(self) -> ops.Target:
        return ops.Target(self.checkpoint, self.context.backend, self.context.device)

    # --- translating ---------------------------------------------------------------
    def refresh(self) -> None:
        self.translate()

    def translate(self) -> None:
        """Translate the newest pictures asked for, as the settings say."""
        if not self.checkpoint:
            return
        request = self.state.request(self.target())
        if request is not None:
            self.submit("translate", request)

    def translate_sources(self, sources: list, names: tuple, sample: bool = False) -> None:
        if not self.checkpoint:
            self.on_error("translate", NO_CHECKPOINT)
            return
        self.state.ask(sources, names, sample)
        self.translate()

    def images_dropped(self, sources: list[str | bytes]) -> None:
        """Files or picture data dropped or pasted: translate them (the first MAX_PICTURES)."""
        if not self.checkpoint:
            self.on_error("translate", NO_CHECKPOINT)
            return
        if len(sources) > MAX_PICTURES:
            self.show_info(f"{len(sources)} pictures: translating the first {MAX_PICTURES} "
                           "(Translate a folder does any number)")
            sources = sources[:MAX_PICTURES]
        self.translate_sources(sources, self.state.names_for(sources, self._unnamed))

    def sample_digit(self) -> None:
        """A held-out digit of the input domain (or, if that domain has none here, of the other)."""
        if not self.checkpoint:
            return
        for direction in (self.state.direction, self.state.swapped()):
            domain = self.state.domains(direction)[0]
            picture = samples.sample_digit(domain, self._samples_taken.get(domain, 0))
            if picture is not None:
                self._samples_taken[domain] += 1
                if direction != self.state.direction:
                    self.state.set_direction(direction)
                    self.toggle.set_direction(direction)
                self.translate_sources([picture[0]], (picture[1],), sample=True)
                return
        self.views.clear(DROP_HERE)

    def set_direction(self, direction: str) -> None:
        self.toggle.set_direction(direction)
        if not self.state.set_direction(direction):
            return
        self.views.set_titles(self.state.view_titles())
        self._enable()
        if self.state.wanted()[2]:
            self.sample_digit()  # the sample follows the input domain: a digit of the new one
        else:
            self.translate()

    def set_fit(self, fit: str) -> None:
        if self.state.set_fit(fit):
            self.translate()

    def _overlap_changed(self, value: int) -> None:
        self.state.overlap = int(value)
        if self.state.fit == "tile":
            self.translate()

    def select_picture(self, index: int) -> None:
        self.state.select(index)
        self._show_pictures()

    # --- pictures from a dialog (drops and pastes: drops.PictureDrops) ------------------------
    def choose_pictures(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Pictures to translate", "", IMAGE_FILTER)
        if paths:
            self._unnamed = "dropped image"
            self.images_dropped(paths)

    # --- saving ----------------------------------------------------------------------
    def save_dialog(self, what: str) -> None:
        if self.state.current() is None:
            self.on_error("save", "Nothing to save yet: drop a picture first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save PNG", self.state.save_name(what), "PNG images (*.png)")
        if path:
            self.save(what, path)

    def save(self, what: str, path: str) -> Path | None:
        """Write the translation (or the strip) on screen as PNG; errors go to the status line."""
        image = self.state.current()
        if image is None:
            self.on_error("save", "Nothing to save yet: drop a picture first.")
            return None
        pixels = image.translation if what == "translation" else self.state.strip()
        try:
            written = save_png(pixels, path)
        except (OSError, ValueError) as exc:
            self.on_error("save", f"{path}: cannot save ({getattr(exc, 'strerror', None) or exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    # --- results ---------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "translate":
            if result.request.target.checkpoint != self.checkpoint:
                return  # the model changed while this was rendering
            self.state.show(result.payload, result.request)
            self._show_pictures()
        elif view == "folder":  # a folder job goes on with the model it started with
            self.folder.progressed(result.payload)

    def show_render_status(self, view: str, result: RenderResult) -> None:
        if view == "translate":
            pending = " (exporting to ONNX, torch meanwhile…)" if result.export_pending else ""
            n = len(self.state.result.images)
            ran = (f"{self.state.direction_label()}: {n} picture{'s' if n > 1 else ''}, {result.backend} on "
                   f"{result.device}, {result.ms:.1f} ms ({self.state.timing_text()}){pending}")
            failures = self.state.failures_text()
            if failures:
                self.show_error(f"{failures} · {ran}")
            else:
                self.show_info(ran)

    def on_error(self, view: str, message: str) -> None:
        lines = message.strip().splitlines() or ["failed"]
        if view == "translate":
            self.state.refused()
            if self.state.current() is None:  # nothing translated to keep showing: say why there too
                self.views.clear(lines[0])
        elif view == "folder":
            self.folder.failed()
        self.show_error(lines[0])  # one line; a bug's traceback stays in the tooltip
        self.status.setToolTip(message if len(lines) > 1 else "")

    def _show_pictures(self) -> None:
        self.views.show_state(self.state)
        self.pictures.show_state(self.state)
        self._enable()
        # The Explain pane's words follow once the pictures are painted: re-wrapping its rich text
        # would otherwise delay the picture the user is waiting for.
        self._explain_stale = True

    def _show_explain(self) -> None:
        text, equations = explain(self.state)
        self.explain.set_text(text)
        self.explain.set_equations(equations)

    def _painted(self, _frame: int) -> None:
        if self._explain_stale:  # queued before the first-image signal: a screenshot shows these words
            self._explain_stale = False
            QTimer.singleShot(0, self, self._show_explain)
        if self.state.current() is not None:
            self.mark_first_image()
