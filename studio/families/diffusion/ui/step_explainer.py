"""Keeps the diffusion panel's Explain pane on the step shown, with that step's numbers.

What it says is in ``explain_content`` (Qt-free). When it says it follows
what the user does without getting in the way of the pictures:

- while a sample records, its title says so and the rest waits (the numbers
  of steps flying past at 20 a second could not be read, and drawing them
  would take time from the model);
- while playback moves, its text follows at most every ``PLAYING_INTERVAL_MS``
  and its formulas every ``PLAYING_FORMULAS_MS`` (superqt's ``qthrottled``:
  always ending on the newest step; a formula with new numbers costs its
  helper process ~10 ms, which a 2-core machine takes from the playback);
- on a step the user stopped at, it follows once the picture is painted.

Formulas are drawn by the shared ``ExplainPane`` in its helper process, so a
new number never blocks the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from superqt.utils import qthrottled

from studio.core.schedules import NoiseSchedule
from studio.families.diffusion.state import DiffusionState
from studio.families.diffusion.ui import explain_content as content

PLAYING_INTERVAL_MS = 250
PLAYING_FORMULAS_MS = 1000


class StepExplainer(QObject):
    def __init__(self, pane, state: DiffusionState, parent=None):
        super().__init__(parent)
        self.pane = pane
        self.state = state
        self.schedule: NoiseSchedule | None = None
        self.landmarks: content.ScheduleLandmarks | None = None
        self._after_paint = False
        self._follow = qthrottled(lambda: self.explain_now(formulas=False), PLAYING_INTERVAL_MS, parent=self)
        self._follow_formulas = qthrottled(self.explain_now, PLAYING_FORMULAS_MS, parent=self)

    def set_schedule(self, schedule: NoiseSchedule) -> None:
        self.schedule = schedule
        self.landmarks = content.ScheduleLandmarks.of(schedule)

    def sampling(self, sampler: str, steps: int) -> None:
        """A sample started: the title says so; the text and formulas change when it ends (re-laying
        them out, and drawing formulas, would take time from the model the user is waiting for)."""
        self._cancel()
        self._after_paint = False
        self.pane.set_title(f"Explain: sampling with {sampler.upper()}, {steps} steps… (then the step shown)")

    def frame_shown(self) -> None:
        """The panel shows another step (its picture is not painted yet)."""
        frame = self.state.frame()
        if frame is None or (self.state.recording and not frame.final):
            return
        if self.state.playing:
            self._follow()
            self._follow_formulas()
        else:
            self._cancel()
            self._after_paint = True

    def stopped(self) -> None:
        """Playback stopped: explain where it stopped, now."""
        self._cancel()
        self.explain_now()

    def _cancel(self) -> None:
        self._follow.cancel()
        self._follow_formulas.cancel()

    def painted(self) -> None:
        """The step's picture is on screen: its explanation may follow."""
        if self._after_paint:
            self._after_paint = False
            QTimer.singleShot(0, self, self.explain_now)  # not inside the paint event

    def explain_now(self, formulas: bool = True) -> None:
        frame, settings = self.state.frame(), self.state.recorded_with
        if frame is None or settings is None or self.schedule is None:
            return
        numbers = content.step_numbers(self.schedule, settings.sampler, settings.eta, settings.variance,
                                       frame.t, frame.t_prev, settings.clipped_eps)
        html, equations = content.explanation(numbers, self.landmarks)
        where = "the finished sample, t = 0" if frame.final else f"step {frame.k + 1} of {frame.n}, t = {frame.t}"
        self.pane.set_title(f"Explain: {settings.sampler.upper()}, {where}")
        self.pane.set_text(html)
        if formulas:
            self.pane.set_equations(equations)
