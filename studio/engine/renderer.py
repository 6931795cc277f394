"""The renderer: runs plain request dataclasses on one background thread, channels interleaved.

Requests are submitted on a *channel* (one per view: "vae.decode",
"diffusion.sample", ...). On each channel the latest request wins: a request
that is superseded before it starts is never run, and a result whose request
has been superseded is dropped. A handler may be a generator that yields
partial results (diffusion steps, autoregressive pixels), or ``None`` between
chunks of one long computation (a 225-decode map): nothing is shown, but the
other channels get their turn.

Channels take turns, one unit of work each: a plain handler's whole call, or
one step of a generator; a channel submitted as ``background`` takes its turn
only when no other channel has work. So a long stream (DDPM-1000) on one channel delays a
quick request on another by at most one of its steps. A stream whose request
went stale (superseded, cancelled, or the renderer shut down) is closed at
its next turn, and nothing is delivered for it after ``cancel`` or
``shutdown`` returns. Exceptions become results with ``error`` set, never a
crash.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

@dataclass
class Output:
    """What a handler returns (or yields): an image plus the family's typed payload."""

    image: np.ndarray | None = None
    payload: Any = None  # a small dataclass of the family's ops (VaeEncoded, DiffusionFrame, ...)
    backend: str = ""
    device: str = ""
    ms: float | None = None  # measured by the renderer when left None
    final: bool = True
    export_pending: bool = False  # ONNX was asked for; torch ran while its export runs

    @classmethod
    def ran(cls, runner, image: np.ndarray | None, payload: Any = None, ms: float | None = None,
            final: bool = True) -> "Output":
        """An output produced by ``runner`` (a backend): its name and device are what ran."""
        return cls(image, payload, runner.name, runner.device, ms, final,
                   bool(getattr(runner, "export_pending", False)))


def run_to_end(produced: "Output | Iterator[Output | None]") -> Output | None:
    """A handler's last output, outside the renderer (scripts, tests): streams are drained."""
    if produced is None or isinstance(produced, Output):
        return produced
    last = None
    for out in produced:
        last = out if out is not None else last
    return last


@dataclass
class RenderResult:
    channel: str
    seq: int
    request: Any
    image: np.ndarray | None  # uint8, (H, W) or (H, W, 3)
    payload: Any
    ms: float
    backend: str
    device: str
    final: bool = True
    error: str | None = None
    export_pending: bool = False


def _expected_errors() -> tuple[type[BaseException], ...]:
    # Problems with the user's input: their messages already say what is wrong.
    from studio.core.checkpoint import CheckpointError
    from studio.data.datasets import DatasetError
    from studio.data.images import ImageLoadError
    from studio.engine.backends import BackendError

    return (ImageLoadError, DatasetError, BackendError, CheckpointError, ValueError)


_EXPECTED = _expected_errors()

Handler = Callable[[Any], "Output | Iterator[Output | None]"]


@dataclass
class _Task:
    """A started request: a stream advanced one step per turn."""

    seq: int
    request: Any
    stream: Iterator[Output]
    ms: float = 0.0  # compute time since its last delivered output

    def close(self) -> None:
        close = getattr(self.stream, "close", None)  # generators run their cleanup
        if close is not None:
            close()


class Renderer:
    def __init__(self, deliver: Callable[[RenderResult], None]):
        self._deliver = deliver
        self._handlers: dict[type, Handler] = {}
        self._queued: dict[str, tuple[int, Any]] = {}  # channel -> newest request not started yet
        self._running: dict[str, _Task] = {}  # channel -> its stream, while not on the worker
        self._turns: OrderedDict[str, None] = OrderedDict()  # channels with work, in turn order
        self._latest: dict[str, int] = {}
        self._background: set[str] = set()  # channels that wait while any other has work
        self._seq = 0
        # Re-entrant: a deliver callback may submit.
        self._cond = threading.Condition(threading.RLock())
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="studio-renderer", daemon=True)
        self._thread.start()

    def register(self, request_type: type, handler: Handler) -> None:
        self._handlers[request_type] = handler

    def submit(self, channel: str, request: Any, background: bool = False) -> int:
        """Queue ``request`` on ``channel``; it replaces what is queued there.

        ``background``: the channel's work (a dataset's statistics, say) runs only when no other
        channel has any, so it never delays what the user is looking at.
        """
        if type(request) not in self._handlers:
            raise TypeError(f"no handler registered for {type(request).__name__}")
        with self._cond:
            self._seq += 1
            if background:
                self._background.add(channel)
            else:
                self._background.discard(channel)
            self._queued[channel] = (self._seq, request)
            self._latest[channel] = self._seq
            self._turns.setdefault(channel, None)
            self._cond.notify()
            return self._seq

    def cancel(self, channel: str) -> None:
        """Drop what is queued on ``channel``; its running stream stops at its next step."""
        with self._cond:
            self._seq += 1
            self._queued.pop(channel, None)
            self._latest[channel] = self._seq

    def is_current(self, channel: str, seq: int) -> bool:
        # No lock: ``_latest`` and ``_closed`` are written only by submit, cancel and shutdown, on the
        # caller's (GUI) thread, and a dict read is atomic. Waiting here for the lock the render thread
        # holds while it delivers cost the GUI ~1 ms per result (and the render thread the GIL after).
        return not self._closed and self._latest.get(channel) == seq

    def idle(self) -> bool:
        with self._cond:
            return not self._turns and not self._busy

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop: every request goes stale at once (streams stop at their next step), nothing more is delivered."""
        with self._cond:
            self._closed = True
            self._queued.clear()
            self._seq += 1
            for channel in self._latest:
                self._latest[channel] = self._seq
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- the worker -------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._turns and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    channel = self._next_channel()
                    queued = self._queued.pop(channel, None)
                    task = self._running.pop(channel, None)
                    self._busy = True
                try:
                    if task is not None and (queued is not None or not self.is_current(channel, task.seq)):
                        task.close()  # superseded or cancelled: stop at this step boundary
                        task = None
                    if queued is not None:
                        task = self._start(channel, *queued)
                    if task is not None and not self._step(channel, task):
                        task = None
                finally:
                    with self._cond:
                        self._busy = False
                        if task is not None:
                            self._running[channel] = task
                            self._turns.setdefault(channel, None)  # to the back of the line
        finally:
            for task in self._running.values():
                task.close()
            self._running.clear()

    def _next_channel(self) -> str:
        """The first channel in turn order, background channels only when nothing else waits."""
        channel = next((c for c in self._turns if c not in self._background), None)
        if channel is None:
            channel = next(iter(self._turns))
        del self._turns[channel]
        return channel

    def _start(self, channel: str, seq: int, request: Any) -> _Task | None:
        """Call the handler: a plain result is delivered now, a stream becomes a task."""
        t0 = time.perf_counter()
        try:
            produced = self._handlers[type(request)](request)
        except Exception as exc:
            self._fail(channel, seq, request, exc)
            return None
        ms = (time.perf_counter() - t0) * 1000.0
        if isinstance(produced, Output):
            self._emit(channel, seq, request, produced, ms)
            return None
        return _Task(seq, request, iter(produced), ms)

    def _step(self, channel: str, task: _Task) -> bool:
        """Advance a stream by one output; False once it has ended."""
        t0 = time.perf_counter()
        try:
            out = next(task.stream)
        except StopIteration:
            return False
        except Exception as exc:
            self._fail(channel, task.seq, task.request, exc)
            return False
        task.ms += (time.perf_counter() - t0) * 1000.0
        if out is None:  # a chunk of work done, nothing to show yet
            return True
        self._emit(channel, task.seq, task.request, out, task.ms)
        task.ms = 0.0
        return True

    def _fail(self, channel: str, seq: int, request: Any, exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, _EXPECTED):  # a bug: keep where it happened
            message = f"{type(exc).__name__}: {message}\n{traceback.format_exc(limit=4)}"
        self._send(RenderResult(channel, seq, request, None, None, 0.0, "", "", True, message))

    def _emit(self, channel: str, seq: int, request: Any, out: Output, measured_ms: float) -> None:
        ms = out.ms if out.ms is not None else measured_ms
        self._send(RenderResult(channel, seq, request, out.image, out.payload, ms, out.backend, out.device,
                                out.final, None, out.export_pending))

    def _send(self, result: RenderResult) -> None:
        # Checked and delivered under the lock: once cancel() or shutdown() has returned,
        # no result of a request they made stale can still slip out.
        with self._cond:
            if self._closed or self._latest.get(result.channel) != result.seq:
                return
            try:
                self._deliver(result)
            except Exception:  # the receiver's bug must not stop every other channel's rendering
                log.exception("delivering a result of %s failed", result.channel)
