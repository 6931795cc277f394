"""The renderer: runs plain request dataclasses on one background thread.

Requests are submitted on a *channel* (one per view: "vae.decode",
"vae.manifold", ...). On each channel the latest request wins: a request
that is superseded before it starts is never run, and a result whose request
has been superseded is dropped. A handler may be a generator that yields
partial results (diffusion steps, autoregressive pixels); it is cancelled at
the next yield once it is stale. Exceptions become results with ``error``
set, never a crash.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np


@dataclass
class Output:
    """What a handler returns (or yields): an image plus anything else the view needs."""

    image: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    device: str = ""
    ms: float | None = None  # measured by the renderer when left None
    final: bool = True


@dataclass
class RenderResult:
    channel: str
    seq: int
    request: Any
    image: np.ndarray | None  # uint8, (H, W) or (H, W, 3)
    data: dict[str, Any]
    ms: float
    backend: str
    device: str
    final: bool = True
    error: str | None = None


def _expected_errors() -> tuple[type[BaseException], ...]:
    # Problems with the user's input: their messages already say what is wrong.
    from studio.data.datasets import DatasetError
    from studio.data.images import ImageLoadError
    from studio.engine.backends import BackendError
    from studio.core.checkpoint import CheckpointError

    return (ImageLoadError, DatasetError, BackendError, CheckpointError, ValueError)


_EXPECTED = _expected_errors()

Handler = Callable[[Any], "Output | Iterator[Output]"]


class Renderer:
    def __init__(self, deliver: Callable[[RenderResult], None]):
        self._deliver = deliver
        self._handlers: dict[type, Handler] = {}
        self._pending: dict[str, tuple[int, Any]] = {}
        self._latest: dict[str, int] = {}
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="studio-renderer", daemon=True)
        self._thread.start()

    def register(self, request_type: type, handler: Handler) -> None:
        self._handlers[request_type] = handler

    def submit(self, channel: str, request: Any) -> int:
        if type(request) not in self._handlers:
            raise TypeError(f"no handler registered for {type(request).__name__}")
        with self._cond:
            self._seq += 1
            self._pending.pop(channel, None)  # re-insert so channels run in arrival order
            self._pending[channel] = (self._seq, request)
            self._latest[channel] = self._seq
            self._cond.notify()
            return self._seq

    def cancel(self, channel: str) -> None:
        """Drop what is queued on ``channel`` and stop its running generator at the next step."""
        with self._cond:
            self._seq += 1
            self._pending.pop(channel, None)
            self._latest[channel] = self._seq

    def is_current(self, channel: str, seq: int) -> bool:
        with self._cond:
            return self._latest.get(channel) == seq

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._busy

    def shutdown(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                channel = next(iter(self._pending))
                seq, request = self._pending.pop(channel)
                self._busy = True
            try:
                self._run(channel, seq, request)
            finally:
                with self._cond:
                    self._busy = False

    def _run(self, channel: str, seq: int, request: Any) -> None:
        handler = self._handlers[type(request)]
        t0 = time.perf_counter()
        try:
            produced = handler(request)
            if isinstance(produced, Output):
                self._emit(channel, seq, request, produced, t0)
                return
            for partial in produced:
                if not self.is_current(channel, seq):
                    produced.close()  # cancelled: stop at this step boundary
                    return
                self._emit(channel, seq, request, partial, t0)
                t0 = time.perf_counter()
        except Exception as exc:  # any failure becomes a message in the panel
            message = str(exc) or type(exc).__name__
            if not isinstance(exc, _EXPECTED):  # a bug: keep where it happened
                message = f"{type(exc).__name__}: {message}\n{traceback.format_exc(limit=4)}"
            result = RenderResult(channel, seq, request, None, {}, 0.0, "", "", True, message)
            if self.is_current(channel, seq):
                self._deliver(result)

    def _emit(self, channel: str, seq: int, request: Any, out: Output, t0: float) -> None:
        ms = out.ms if out.ms is not None else (time.perf_counter() - t0) * 1000.0
        if not self.is_current(channel, seq):
            return
        self._deliver(RenderResult(channel, seq, request, out.image, out.data, ms,
                                   out.backend, out.device, out.final))
