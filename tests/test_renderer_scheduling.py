"""The renderer interleaves channels, and cancel/shutdown stop a running stream at its next step."""

from __future__ import annotations

import threading
import time

import numpy as np

from studio.engine.renderer import Output, Renderer


class Stream:
    def __init__(self, steps: int, delay: float = 0.005):
        self.steps, self.delay = steps, delay


class Quick:
    def __init__(self, value: int):
        self.value = value


class Progress:
    """What a stream handler has done, seen from the test thread."""

    def __init__(self, name: str = "", log: list | None = None):
        self.steps = 0
        self.closed = threading.Event()
        self.name, self.log = name, log

    def handler(self, req: Stream):
        try:
            for k in range(req.steps):
                time.sleep(req.delay)
                self.steps = k + 1
                if self.log is not None:
                    self.log.append(self.name)
                yield Output(None, k, final=False)
            yield Output(np.zeros((2, 2), np.uint8), "done")
        finally:
            self.closed.set()


def wait_for(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


def test_a_quick_request_on_another_channel_finishes_while_a_long_stream_runs():
    progress = Progress()
    seen = {}
    quick_done, stream_done = threading.Event(), threading.Event()

    def deliver(res):
        if res.channel == "vae.decode":
            seen["steps"], seen["stream_done"] = progress.steps, stream_done.is_set()
            seen["payload"] = res.payload
            quick_done.set()
        elif res.final:
            stream_done.set()

    r = Renderer(deliver)
    r.register(Stream, progress.handler)
    r.register(Quick, lambda req: Output(np.zeros((1, 1), np.uint8), req.value))
    try:
        r.submit("diffusion.sample", Stream(1000))  # about 5 s
        assert wait_for(lambda: progress.steps >= 3)
        r.submit("vae.decode", Quick(7))
        steps_after_submit = progress.steps  # read after: a stall of this thread cannot loosen the bound
        assert quick_done.wait(5)
        assert seen["payload"] == 7 and not seen["stream_done"]
        # It waited for the step in progress at most, not for the stream.
        assert seen["steps"] <= steps_after_submit + 2 < 1000
        assert wait_for(lambda: progress.steps > seen["steps"])  # and the stream goes on
    finally:
        r.shutdown()


def test_two_streams_take_turns():
    order: list[str] = []
    a, b = Progress("a", order), Progress("b", order)
    r = Renderer(lambda res: None)

    class StreamB(Stream):
        pass

    r.register(Stream, a.handler)
    r.register(StreamB, b.handler)
    try:
        r.submit("one", Stream(400, 0.002))
        assert wait_for(lambda: a.steps >= 2)
        r.submit("two", StreamB(400, 0.002))
        assert wait_for(lambda: b.steps >= 20)
        since_b = order[order.index("b"):][:40]
        assert since_b[:2] == ["b", "a"] and all(x != y for x, y in zip(since_b, since_b[1:]))  # step for step
    finally:
        r.shutdown()


def test_a_newer_request_on_a_streaming_channel_closes_the_old_stream():
    first, second = Progress(), Progress()
    handlers = iter([first.handler, second.handler])
    results = []
    r = Renderer(results.append)
    r.register(Stream, lambda req: next(handlers)(req))
    try:
        r.submit("d", Stream(1000))
        assert wait_for(lambda: first.steps >= 2)
        seq = r.submit("d", Stream(3, 0.0))
        assert first.closed.wait(5)
        assert wait_for(lambda: any(res.final for res in results))
        assert first.steps < 1000
        after = [res for res in results if res.seq == seq]
        assert [res.payload for res in after] == [0, 1, 2, "done"]
        assert all(res.seq == seq for res in results[results.index(after[0]):])  # nothing stale after
    finally:
        r.shutdown()


def test_cancel_closes_the_stream_and_nothing_arrives_after_it_returns():
    progress = Progress()
    late = []
    cancelled = threading.Event()

    def deliver(res):
        if cancelled.is_set():
            late.append(res)

    r = Renderer(deliver)
    r.register(Stream, progress.handler)
    try:
        r.submit("d", Stream(1000))
        assert wait_for(lambda: progress.steps >= 3)
        r.cancel("d")
        cancelled.set()
        assert progress.closed.wait(5)  # the generator's cleanup ran at its next step
        assert wait_for(r.idle)
        assert progress.steps < 1000 and late == []
    finally:
        r.shutdown()


def test_shutdown_during_a_long_stream_stops_it_and_delivers_nothing_afterwards():
    progress = Progress()
    late = []
    shutting = threading.Event()

    def deliver(res):
        if shutting.is_set():
            late.append(res)

    r = Renderer(deliver)
    r.register(Stream, progress.handler)
    r.submit("diffusion.sample", Stream(1000))  # about 5 s
    assert wait_for(lambda: progress.steps >= 3)
    shutting.set()
    r.shutdown(timeout=5)
    assert not r._thread.is_alive()  # the worker has ended, not been left running
    assert progress.closed.is_set() and progress.steps < 1000
    time.sleep(0.05)
    assert late == []


def test_a_failing_receiver_does_not_stop_rendering():
    got = []

    def deliver(res):
        if res.payload == 1:
            raise RuntimeError("a bug in a view")
        got.append(res.payload)

    r = Renderer(deliver)
    r.register(Quick, lambda req: Output(None, req.value))
    try:
        r.submit("a", Quick(1))
        assert wait_for(r.idle)
        r.submit("a", Quick(2))
        assert wait_for(lambda: got == [2])
    finally:
        r.shutdown()


class Chunked:
    """A long computation in chunks that show nothing until the end (a 225-decode map)."""

    def __init__(self, chunks: int, delay: float = 0.01):
        self.chunks, self.delay = chunks, delay


def test_chunks_that_yield_nothing_are_not_delivered_and_let_another_channel_in():
    delivered, order = [], []
    done = threading.Event()

    def chunked(req: Chunked):
        for k in range(req.chunks):
            if k:
                yield None  # the other channels' turn; nothing to show
            time.sleep(req.delay)
            order.append("chunk")
        yield Output(np.zeros((2, 2), np.uint8), "map")

    def quick(req: Quick):
        order.append("quick")
        return Output(None, req.value)

    def deliver(res):
        delivered.append((res.channel, res.payload))
        if res.channel == "vae.manifold":
            done.set()

    r = Renderer(deliver)
    r.register(Chunked, chunked)
    r.register(Quick, quick)
    r.submit("vae.manifold", Chunked(5))
    assert wait_for(lambda: "chunk" in order)
    r.submit("vae.decode", Quick(7))
    assert done.wait(10)
    r.shutdown()
    # The quick request ran between two chunks, not after the whole map; the chunks showed nothing.
    assert order.index("quick") < len(order) - 1 and order.count("chunk") == 5
    assert [c for c, _ in delivered] == ["vae.decode", "vae.manifold"]
    assert dict(delivered) == {"vae.decode": 7, "vae.manifold": "map"}


def test_a_background_channel_waits_while_another_channel_has_work():
    order = []
    finished = threading.Event()

    def background(req: Chunked):
        for k in range(req.chunks):
            yield None
            order.append("usage")
        yield Output(None, "usage")

    def stream(req: Stream):
        for k in range(req.steps):
            time.sleep(req.delay)
            order.append("sample")
            yield Output(None, k, final=False)
        yield Output(None, "sampled")

    def deliver(res):
        if res.payload == "usage":
            finished.set()

    r = Renderer(deliver)
    r.register(Chunked, background)
    r.register(Stream, stream)
    # Without the background flag the two would take turns; with it, the stream runs to its end first.
    r.submit("diffusion.sample", Stream(6))
    r.submit("vae.usage", Chunked(3), background=True)
    assert finished.wait(10)
    r.shutdown()
    first_usage = order.index("usage")
    assert order[first_usage:] == ["usage"] * 3 and order.count("sample") == 6, order
