"""The GAN explorer's files: latents and edits saved and loaded as JSON, the interpolation as a GIF.

A mixin of ``GanExplorerPanel``: it reads and sets the panel's controls, and keeps the file
handling (and its error messages) out of the panel's own file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from studio.families.stylegan import ops


class LatentFilesMixin:
    def session(self) -> ops.Session:
        psi, cutoff = self.truncation()
        return ops.Session(self.checkpoint or "", self.family, self.current_code(), self.code_a, self.code_b,
                           psi, cutoff, self.edits(), self.steps.value())

    def save_latents(self, path: str) -> Path | None:
        if not self.checkpoint:
            self.show_error("Open a checkpoint first.")
            return None
        try:
            written = ops.save_session(self.session(), path)
        except OSError as exc:
            self.show_error(f"{path}: cannot save ({exc.strerror or exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def load_latents(self, path: str) -> bool:
        try:
            session = ops.load_session(path)
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        if session.family not in self.families:
            self.show_error(f"{path}: latents of a '{session.family}' model")
            return False
        if session.checkpoint and Path(session.checkpoint).exists() and session.checkpoint != self.checkpoint:
            self.open_checkpoint(session.checkpoint)
        if session.family != self.family:
            self.show_error(f"{path}: latents of a {session.family} model, but a {self.family} is open")
            return False
        code = session.current
        if code.z is not None and len(code.z) != self.z_dim:
            self.show_error(f"{path}: z has {len(code.z)} values, this model takes {self.z_dim}")
            return False
        self._setting = True
        try:
            self.seed.setValue(code.seed)
            self.psi.setValue(session.psi)
            if session.cutoff is not None:
                self.cutoff.setValue(session.cutoff)
            for s in self.pca_sliders:
                s.setValue(0.0)
            for e in session.edits:
                if e.component < len(self.pca_sliders):
                    self.pca_sliders[e.component].setValue(e.amount)
                    self.edit_layers.set_range(e.layers)
            self.steps.setValue(session.steps)
        finally:
            self._setting = False
        self._seed_changed(code.seed)
        if code.ws is not None:
            self.projected, self.projected_name = code, self.store.add(code, self.checkpoint)
        elif code.z is not None:
            self._setting = True
            try:
                self.sliders.set_values(code.z)
            finally:
                self._setting = False
            self.z, self.z_edited = np.asarray(code.z, np.float32), True
        self.code_a, self.code_b = session.a, session.b
        self.refresh()
        self.show_info(f"loaded {path}")
        return True

    def export_gif(self, path: str) -> Path | None:
        if not self.strip_frames:
            self.show_error("Set A and B first: there is no interpolation to export.")
            return None
        try:
            written = ops.export_gif(self.strip_frames, path)
        except OSError as exc:
            self.show_error(f"{path}: cannot save ({exc.strerror or exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save latents", "gan_latents.json", "JSON (*.json)")
        if path:
            self.save_latents(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load latents", "", "JSON (*.json)")
        if path:
            self.load_latents(path)

    def _gif_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export GIF", "gan_interpolation.gif", "GIF images (*.gif)")
        if path:
            self.export_gif(path)
