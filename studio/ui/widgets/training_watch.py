"""Watching a training worker from the GUI thread: poll its pipe, notice its exit and its silence.

Polling never blocks (the pipe is read only when data is waiting), so the
event loop keeps its pace; a worker that dies is seen within one poll, and
one that says nothing for ``stall_after_s`` (stopped, swapping, blocked on
I/O; not dead) is reported as stalled until it speaks again.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from studio.training.worker import WorkerHandle

POLL_MS = 50


class WorkerWatch(QObject):
    events = Signal(list)  # every event that arrived, in order
    exited = Signal(object)  # the WorkerHandle, once its process is gone (after its last events)
    ticked = Signal()  # after each poll, for periodic redraws

    def __init__(self, parent=None, stall_after_s: float = 5.0):
        super().__init__(parent)
        self.stall_after_s = stall_after_s
        self.handle: WorkerHandle | None = None
        self.last_event_at = time.monotonic()
        self.events_seen = 0
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)

    def watch(self, handle: WorkerHandle) -> None:
        self.handle = handle
        self.last_event_at = time.monotonic()
        self.events_seen = 0
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @property
    def stalled_s(self) -> float:
        """Seconds without a word from a live worker, once past ``stall_after_s`` (else 0)."""
        if not self.timer.isActive():
            return 0.0
        silent = time.monotonic() - self.last_event_at
        return silent if silent >= self.stall_after_s else 0.0

    def _poll(self) -> None:
        h = self.handle
        if h is None or h.detached:
            self.timer.stop()
            return
        events = h.poll()
        if h.exitcode is not None:
            events += h.poll()  # anything said just before exiting
        if events:
            self.last_event_at = time.monotonic()
            self.events_seen += len(events)
            self.events.emit(events)
        if h.exitcode is not None:
            self.timer.stop()
            self.exited.emit(h)
        self.ticked.emit()


def describe_end(h: WorkerHandle, last_step: int, last_checkpoint: str | None) -> tuple[str, str, bool]:
    """(finished | stopped | failed | crashed, the sentence for the user, is it an error)."""
    if h.finished is not None:
        f = h.finished
        word = "Stopped" if f.stopped_early else "Finished"
        return word.lower(), f"{word} at step {f.step}; checkpoint {f.path}", False
    if h.failed is not None:
        step = h.failed.step if h.failed.step is not None else last_step
        return "failed", (f"Training failed at step {step}: {h.failed.message} "
                          f"(worker {h.exit_description()}; details in the log)"), True
    ckpt = f"; last checkpoint {last_checkpoint}" if last_checkpoint else ""
    return "crashed", (f"The training worker died: {h.exit_description()}. Last message: "
                       f"{h.last_message()}{ckpt}. Resume continues from the checkpoint."), True
