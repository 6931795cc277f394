"""What a running worker says, shown on the training view: progress, curves, preview, log and status.

``RunFeed`` takes the worker's events (after ``RunController`` has kept their
facts in the session) and puts them on screen: points are queued on the loss
curves, which are redrawn with the progress line at most every ``REDRAW_S``;
checkpoints, option changes, metrics and failures go to the log, and the
status line says what the user must know (a pause, a refusal, the end).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal

from studio.training.events import (
    CheckpointWritten,
    CommandRefused,
    Diverged,
    Failed,
    Finished,
    Metrics,
    OptionChanged,
    Paused,
    Preview,
    Progress,
    Resumed,
    Rewound,
    Started,
)
from studio.training.runs import read_log
from studio.training.worker import describe_event
from studio.ui.training_state import TrainingSession, live_value, preview_strip

REDRAW_S = 0.25


class RunFeed(QObject):
    status = Signal(str, bool)  # a sentence for the status line, is it an error
    checkpointWritten = Signal(str, str)  # family, path

    def __init__(self, view, session: TrainingSession, watch, parent=None):
        super().__init__(parent)
        self.view, self.session, self.watch = view, session, watch
        self._last_redraw = 0.0

    def note(self, text: str) -> None:
        self.view.log.note(text)

    def launched(self, plan, pid: int) -> None:
        """A worker started: fresh (or resumed) curves, the bar's range, the live options' values."""
        v, o = self.view, plan.options
        v.controls.set_live_values({name: o.model.get(name, o.lr if name.startswith("lr") else None)
                                    for name in v.controls.live})
        v.progress.setRange(0, o.steps)
        v.progress.setValue(plan.start_step)
        v.progress.setFormat("%p%")
        if plan.resume:
            v.curves.set_history(read_log(o.out))
        else:
            v.curves.clear()
        what = f"resuming at step {plan.start_step}" if plan.resume else "starting"
        v.progress_label.setText(f"{what}: {plan.dataset_size} images {plan.dataset_shape} from {plan.dataset_name}")
        self.status.emit(f"Worker started (pid {pid}), {what}; output {o.out}", False)
        self.note(f"worker pid {pid}: {o.family} on {plan.dataset_name}, {what}, out {o.out}")
        for path, why in plan.skipped:
            self.note(f"skipped {path}: {why}")

    def show_events(self, events: list) -> None:
        for ev in events:
            self._show(ev)

    def redraw(self) -> None:
        """After each poll: the curves and the progress line, at most every REDRAW_S."""
        if time.perf_counter() - self._last_redraw >= REDRAW_S:
            self._last_redraw = time.perf_counter()
            self.view.curves.redraw()
            self.show_progress()

    def show_progress(self) -> None:
        s, v = self.session, self.view
        p = s.last_progress
        if p is None or not s.active:
            return
        v.progress.setMaximum(p.total_steps)
        v.progress.setValue(p.step)
        v.progress.setFormat(s.progress_format())
        v.progress_label.setText(s.progress_line(self.watch.stalled_s))
        v.controls.follow_live_values({name: live_value(name, p.lrs) for name in v.controls.live})

    def ended(self, h, message: str, is_error: bool) -> None:
        """The worker is gone: the whole curve, the final step, and why it ended (no ETA)."""
        v = self.view
        v.curves.redraw()
        if h.finished is not None:
            v.progress.setValue(h.finished.step)
        self.status.emit(message, is_error)
        if self.session.end_reason == "crashed":
            self.note(message)
        v.progress.setFormat("%p%")
        line = self.session.progress_line()
        if line is not None:
            v.progress_label.setText(line)

    def _show(self, ev) -> None:
        v = self.view
        if isinstance(ev, Progress):
            v.curves.append(ev.step, ev.losses)
        elif isinstance(ev, Preview):
            strip = preview_strip(ev.image)
            v.preview.set_wrap(strip[1] if strip else 0)  # re-wrapped to fill the box, at 2x or more
            v.preview.set_image(strip[0] if strip else ev.image)
        elif isinstance(ev, CheckpointWritten):
            self.note(f"checkpoint at step {ev.step}: {ev.path}")
            if not v.follow_btn.isEnabled():  # the run's first checkpoint
                v.follow_btn.setEnabled(True)
                self.note("a checkpoint is ready: Follow in explorer shows this run as it trains")
            self.checkpointWritten.emit(self.session.family, ev.path)
        elif isinstance(ev, (Metrics, OptionChanged, Finished, CommandRefused)):
            self.note(describe_event(ev))
            if isinstance(ev, CommandRefused):
                self.status.emit(f"{ev.command}: {ev.reason}", True)
        elif isinstance(ev, Started):
            self.note(f"training on {ev.device} with {ev.threads} thread(s) from step {ev.step}")
            if ev.history.get("step"):  # a resumed run: its whole loss history
                v.curves.set_history(ev.history)
        elif isinstance(ev, Paused):
            if ev.reason:
                self.status.emit(f"Paused: {ev.reason}. Lower the learning rate and press Resume to go on "
                                 "from there, or Stop.", True)
            else:
                self.status.emit(f"Paused at step {ev.step}", False)
        elif isinstance(ev, Resumed):
            self.status.emit(f"Resumed at step {ev.step}", False)
        elif isinstance(ev, Diverged):
            self.note(f"diverged: {ev.message}")
        elif isinstance(ev, Rewound):
            v.curves.set_history(ev.history)
            self.status.emit(f"Went back to step {ev.step} and trains on", False)
            self.note(f"went back to step {ev.step} after the divergence")
        elif isinstance(ev, Failed):
            self.note(f"failed at step {ev.step}: {ev.message}\n{ev.traceback}")
