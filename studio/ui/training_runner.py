"""Running one training worker for the training panel: check, start, relay, notice the end. No widgets.

The worker (studio.training.worker) trains in its own process, so the GUI
keeps its core and never blocks. Options are checked before anything is
spawned, in a superqt thread worker (the checks import torch and open the
dataset), by the same ``prepare_run`` the command line uses. A
``WorkerWatch`` polls the worker's pipe without blocking and checks that
the process is still there, so a crash or a kill is seen within a poll, and
a worker that says nothing for a while is shown as stalled. Stopping never
waits on the GUI thread: the phase is "stopping" until the worker's last
checkpoint is written. What the worker said is kept in a Qt-free
``TrainingSession``; the panel shows it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from studio.training.events import CheckpointWritten, Diverged, Paused, Progress, Resumed, Rewound
from studio.training.runs import TrainingSetupError
from studio.training.worker import WorkerHandle
from studio.ui.training_state import TrainingSession
from studio.ui.widgets.training_watch import WorkerWatch, describe_end

CLOSE_TIMEOUT_MS = 30_000  # a worker that has not saved by then is killed and the window closes


class RunController(QObject):
    phaseChanged = Signal(str)  # idle, checking, running, paused, stopping
    launched = Signal(object)  # the RunPlan a worker was started with
    refused = Signal(str)  # not started, and why
    eventsArrived = Signal(list)  # the worker's events, after the session has taken them in
    ticked = Signal()  # after each poll, for periodic redraws
    ended = Signal(object, str, bool)  # the WorkerHandle, the sentence for the user, is it an error
    closeReady = Signal()  # a run stopped for closing has saved: the window may close now
    killedForClose = Signal()  # ...or it did not save in time and was killed

    def __init__(self, parent=None, stall_after_s: float = 5.0):
        super().__init__(parent)
        self.session = TrainingSession()
        self.handle: WorkerHandle | None = None
        self._checker = None  # the superqt worker checking the options
        self.close_when_done = False
        self.watch = WorkerWatch(self, stall_after_s)
        self.watch.events.connect(self._take_events)
        self.watch.exited.connect(self._exited)
        self.watch.ticked.connect(self.ticked)

    @property
    def phase(self) -> str:
        return self.session.phase

    def set_phase(self, phase: str) -> None:
        self.session.phase = phase
        self.phaseChanged.emit(phase)

    def is_training(self) -> bool:
        return self.handle is not None and self.handle.is_alive() and not self.handle.detached

    # --- starting ------------------------------------------------------------------
    def begin(self, plan_fn, *args) -> bool:
        """Check the options (``plan_fn(*args) -> RunPlan``) off the GUI thread, then start."""
        if self.phase != "idle" or self.is_training():
            return False
        self.set_phase("checking")
        self._checker = create_worker(plan_fn, *args, _start_thread=False,
                                      _connect={"returned": self._checked, "errored": self._check_failed})
        self._checker.start()
        return True

    def refuse(self, message: str) -> None:
        self.session.end_reason = "refused"
        self.set_phase("idle")
        self.refused.emit(message)

    def _checked(self, plan) -> None:
        self._checker = None
        if self.phase == "checking":
            self._launch(plan)

    def _check_failed(self, exc: Exception) -> None:
        self._checker = None
        if self.phase == "checking":
            self.refuse(str(exc) if isinstance(exc, TrainingSetupError) else f"{type(exc).__name__}: {exc}")

    def _launch(self, plan) -> None:
        self.handle = WorkerHandle()
        try:
            self.handle.start(plan.options, plan=plan)
        except TrainingSetupError as exc:  # another writer took the folder meanwhile
            self.handle = None
            self.refuse(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - spawning failed: say so, stay usable
            self.handle = None
            self.refuse(f"the worker process could not start ({exc})")
            return
        self.session.begin(plan.options.family, plan.options.out)
        self.session.phase = "running"
        self.launched.emit(plan)
        self.set_phase("running")
        self.watch.watch(self.handle)

    # --- commands ------------------------------------------------------------------
    def pause(self) -> bool:
        return bool(self.handle and self.handle.pause())

    def resume(self) -> bool:
        return bool(self.handle and self.handle.resume())

    def stop(self) -> bool:
        """Ask the worker to save and stop; the phase is "stopping" until it has."""
        if self.handle and self.handle.stop():
            self.set_phase("stopping")
            return True
        return False

    def save_now(self) -> None:
        if self.handle:
            self.handle.save_now()

    def set_option(self, name: str, value: float) -> None:
        if self.handle:
            self.handle.set_option(name, value)

    # --- what the worker says ------------------------------------------------------
    def _take_events(self, events: list) -> None:
        s = self.session
        for ev in events:
            if isinstance(ev, Progress):
                s.last_progress = ev
            elif isinstance(ev, CheckpointWritten):
                s.last_checkpoint = ev.path
            elif isinstance(ev, Diverged):
                s.diverged = ev
            elif isinstance(ev, Rewound):
                s.diverged = None
        self.eventsArrived.emit(events)
        last_phase = next((ev for ev in reversed(events) if isinstance(ev, (Paused, Resumed, Rewound))), None)
        if last_phase is not None and self.phase in ("running", "paused"):
            self.set_phase("paused" if isinstance(last_phase, Paused) else "running")

    def _exited(self, h: WorkerHandle) -> None:
        h.join(1)
        p = self.session.last_progress
        reason, message, is_error = describe_end(h, p.step if p else 0, self.session.last_checkpoint)
        self.session.end_reason = reason
        self.set_phase("idle")
        self.ended.emit(h, message, is_error)
        h.close()
        if self.close_when_done:
            self.close_when_done = False
            self.closeReady.emit()

    # --- closing -------------------------------------------------------------------
    def stop_for_close(self) -> None:
        """Stop and save; ``closeReady`` follows once saved (a stuck worker is killed after a while)."""
        self.close_when_done = True
        if self.phase != "stopping":
            self.stop()
        QTimer.singleShot(CLOSE_TIMEOUT_MS, self._close_anyway)

    def _close_anyway(self) -> None:
        if self.close_when_done and self.handle is not None and self.handle.is_alive():
            self.killedForClose.emit()
            self.handle.kill()  # the watch sees it gone; _exited closes the window

    def detach(self) -> None:
        """Leave the worker training in the background."""
        if self.handle is not None:
            self.handle.detach()

    def shutdown(self) -> None:
        """Stop a worker that is still attached (saving) and the option check."""
        self.watch.stop()
        if self.handle is not None and not self.handle.detached and self.handle.is_alive():
            self.handle.shutdown()
        if self._checker is not None:
            self._checker.quit()
            self._checker = None
