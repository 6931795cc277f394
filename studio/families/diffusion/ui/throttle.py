"""Run a redraw at most every N milliseconds, always ending on the newest request."""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import QObject, QTimer


class Throttle(QObject):
    """``request()`` runs ``action`` now if it last ran ``interval_ms`` ago, else once when that time is up."""

    def __init__(self, action: Callable[[], None], interval_ms: int, parent=None):
        super().__init__(parent)
        self.action = action
        self.interval_ms = interval_ms
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._run)

    def request(self) -> None:
        wait_ms = self.interval_ms - (time.perf_counter() - self._last) * 1000.0
        if wait_ms <= 0:
            self._timer.stop()
            self._run()
        elif not self._timer.isActive():
            self._timer.start(int(wait_ms) + 1)

    def flush(self) -> None:
        """Run now, whatever the interval (a frame the user stopped on must be shown at once)."""
        self._timer.stop()
        self._run()

    def cancel(self) -> None:
        """Forget a pending run (the caller has just done it another way)."""
        self._timer.stop()

    def pending(self) -> bool:
        return self._timer.isActive()

    def _run(self) -> None:
        self._last = time.perf_counter()
        self.action()
