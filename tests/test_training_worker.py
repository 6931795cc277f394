"""The training worker process, without Qt: real short runs in a spawned process."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from studio.training.events import CheckpointWritten, Finished, OptionChanged, Paused, Progress, Started
from studio.training.runs import INFO_NAME, TrainingSetupError, options_for_resume, prepare_run, read_log
from studio.training.worker import WorkerHandle


def opts(out, **kw):
    from studio.training.trainer import TrainOptions

    base = dict(family="vae", out=str(out), steps=30, batch_size=32, checkpoint_every=10,
                preview_every=10, model={"latent_dim": 2})
    base.update(kw)
    return TrainOptions(**base)


def pump(handle: WorkerHandle, until, timeout: float = 60.0) -> list:
    """Poll the worker until ``until(events)`` is true; returns every event seen."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(handle.poll())
        if until(seen):
            return seen
        if handle.exitcode is not None:
            seen.extend(handle.poll())
            if until(seen):
                return seen
            raise AssertionError(f"worker exited ({handle.exit_description()}) early; "
                                 f"last: {handle.last_message()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out; last: {handle.last_message()}")


def steps_of(events) -> list[int]:
    return [e.step for e in events if isinstance(e, Progress)]


@pytest.fixture
def handles():
    made: list[WorkerHandle] = []
    yield made
    for h in made:
        h.kill()
        h.close()


def test_resume_continues_exactly_in_process(tmp_path):
    """Base class: 20 straight steps == 10 steps, checkpoint, new trainer, 10 more."""
    import torch

    from studio.data.datasets import open_dataset
    from studio.families.vae.trainer import VAETrainer

    torch.set_num_threads(1)
    ds = open_dataset(None)
    a = VAETrainer(opts(tmp_path / "a", steps=20, schedule="cosine", preview_every=0, log_every=1), ds)
    straight = [e.losses["loss"] for e in a.run() if isinstance(e, Progress)]
    b = VAETrainer(opts(tmp_path / "b", steps=20, schedule="cosine", preview_every=0, log_every=1), ds)
    for e in b.run(until=14):  # "killed" at step 14: the log runs past the step-10 checkpoint
        pass
    assert max(read_log(tmp_path / "b")["step"]) == 14
    c = VAETrainer(opts(tmp_path / "b", steps=20, schedule="cosine", preview_every=0, log_every=1), ds)
    c.resume_from(tmp_path / "b" / "step_0000010.safetensors")
    assert c.step == 10
    assert c.history["step"] == [float(s) for s in range(1, 11)]
    resumed = [e.losses["loss"] for e in c.run() if isinstance(e, Progress)]
    np.testing.assert_allclose(resumed, straight[10:], rtol=1e-6)
    np.testing.assert_allclose(c.history["loss"], straight, rtol=1e-6)
    log = read_log(tmp_path / "b")
    assert log["step"] == [float(s) for s in range(1, 21)]  # no repeats, no jump back
    np.testing.assert_allclose(log["loss"], straight, rtol=1e-5)


def test_worker_trains_pauses_resumes_and_writes_a_loadable_checkpoint(tmp_path, handles):
    from studio.engine.runtime import ModelRuntime
    from studio.core.threads import compute_threads

    h = WorkerHandle()
    handles.append(h)
    h.start(opts(tmp_path, steps=400))
    seen = pump(h, lambda ev: any(isinstance(e, Started) for e in ev))
    started = next(e for e in seen if isinstance(e, Started))
    assert started.qt_loaded is False  # the worker never imports Qt
    assert started.threads == compute_threads(None)
    assert started.pid == h.pid != os.getpid()

    seen += pump(h, lambda ev: any(isinstance(e, CheckpointWritten) for e in ev))
    assert h.pause()
    seen += pump(h, lambda ev: any(isinstance(e, Paused) for e in ev))
    paused_at = next(e for e in seen if isinstance(e, Paused)).step
    time.sleep(0.6)
    during = h.poll()
    assert max(steps_of(seen + during)) == paused_at  # no step while paused
    assert h.set_lr(5e-4) and h.resume()
    seen += during + pump(h, lambda ev: any(isinstance(e, Progress) and e.step > paused_at + 5 for e in ev))
    lr_changes = [e for e in seen if isinstance(e, OptionChanged)]
    assert lr_changes and (lr_changes[0].name, lr_changes[0].value) == ("lr", 5e-4)
    assert [e.lr for e in seen if isinstance(e, Progress)][-1] == pytest.approx(5e-4)
    assert h.save_now()
    seen += pump(h, lambda ev: sum(isinstance(e, CheckpointWritten) and e.step > paused_at
                                   for e in ev) >= 1)
    assert h.stop()
    seen += pump(h, lambda ev: any(isinstance(e, Finished) for e in ev))
    assert h.join(10) and h.exitcode == 0
    fin = h.finished
    assert fin.stopped_early and fin.step < 400
    assert steps_of(seen) == list(range(1, fin.step + 1))  # every step reported, in order
    runtime = ModelRuntime(tmp_path)  # the newest checkpoint of the run folder
    assert runtime.family == "vae" and runtime.checkpoint.step == fin.step
    out, _ = runtime.run("decode", {"z": np.zeros((1, 2), np.float32)}, backend="torch")
    assert next(iter(out.values())).shape[-2:] == (28, 28)
    assert not (tmp_path / INFO_NAME).exists()


def test_sigkill_is_noticed_and_the_last_checkpoint_resumes(tmp_path, handles):
    from studio.core.checkpoint import load_checkpoint

    h = WorkerHandle()
    handles.append(h)
    h.start(opts(tmp_path, steps=2000, checkpoint_every=10, preview_every=0, log_every=1))
    pump(h, lambda ev: sum(isinstance(e, CheckpointWritten) for e in ev) >= 2)
    os.kill(h.pid, signal.SIGKILL)
    t0 = time.monotonic()
    while h.exitcode is None and time.monotonic() - t0 < 5:
        h.poll()
        time.sleep(0.02)
    assert time.monotonic() - t0 < 1.0
    h.poll()  # end-of-file on the pipe: must not hang
    assert h.crashed() and h.exitcode == -signal.SIGKILL
    assert "SIGKILL" in h.exit_description()
    assert "step" in h.last_message()

    ckpt = load_checkpoint(tmp_path / "last.safetensors", with_training_state=True)
    assert ckpt.step >= 20 and ckpt.step % 10 == 0
    options, last = options_for_resume(tmp_path, steps=ckpt.step + 15)
    assert options.steps == ckpt.step + 15
    h2 = WorkerHandle()
    handles.append(h2)
    plan = h2.start(options, resume=last)
    assert plan.start_step == ckpt.step
    seen = pump(h2, lambda ev: any(isinstance(e, Finished) for e in ev))
    started = next(e for e in seen if isinstance(e, Started))
    assert started.step == ckpt.step
    assert len(started.history["loss"]) == ckpt.step  # loss history came along
    assert steps_of(seen) == list(range(ckpt.step + 1, ckpt.step + 16))
    log = read_log(tmp_path)
    assert log["step"] == [float(s) for s in range(1, ckpt.step + 16)]


def test_bad_datasets_are_refused_before_anything_is_spawned(tmp_path):
    from PIL import Image

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainingSetupError, match="no images"):
        prepare_run(opts(tmp_path / "o1", data=str(empty)))

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("L", (28, 28)).save(mixed / "a.png")
    Image.new("L", (32, 32)).save(mixed / "b.png")
    with pytest.raises(TrainingSetupError, match="mixed sizes"):
        prepare_run(opts(tmp_path / "o2", data=str(mixed)))

    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, images=np.random.default_rng(0).random((8, 3, 28, 28)).astype(np.float32))
    with pytest.raises(TrainingSetupError, match="channel"):
        prepare_run(opts(tmp_path / "o3", data=str(rgb), model={"latent_dim": 2, "channels": 1}))

    with pytest.raises(TrainingSetupError, match="learning rate"):
        prepare_run(opts(tmp_path / "o4", lr=-1.0))
    with pytest.raises(TrainingSetupError, match="needs 30x30"):
        prepare_run(opts(tmp_path / "o5", model={"latent_dim": 2, "image_size": 30}))
    with pytest.raises(TrainingSetupError, match="vae settings do not work"):
        prepare_run(opts(tmp_path / "o7", model={"latent_dim": -1}))
    h = WorkerHandle()
    with pytest.raises(TrainingSetupError):
        h.start(opts(tmp_path / "o6", data=str(empty)))
    assert not h.started


def test_an_error_in_the_worker_comes_back_with_its_traceback(tmp_path, handles):
    import dataclasses

    good = prepare_run(opts(tmp_path / "run"))
    broken = dataclasses.replace(good, options=dataclasses.replace(good.options, data=str(tmp_path / "gone")))
    h = WorkerHandle()
    handles.append(h)
    h.start(broken.options, plan=broken)  # validation skipped: the dataset "vanished" since
    pump(h, lambda ev: h.failed is not None, timeout=30)
    assert h.join(10) and h.exitcode == 1 and h.crashed()
    assert "no such file or folder" in h.failed.message
    assert "Traceback" in h.failed.traceback and "open_dataset" in h.failed.traceback


def test_detached_worker_trains_on_and_leaves_nothing_behind(tmp_path, handles):
    from studio.core.checkpoint import read_metadata

    h = WorkerHandle()
    handles.append(h)
    h.start(opts(tmp_path, steps=120, checkpoint_every=50, preview_every=0))
    pump(h, lambda ev: any(isinstance(e, Progress) for e in ev))
    pid = h.pid
    assert json.loads((tmp_path / INFO_NAME).read_text())["pid"] == pid
    h.detach()
    assert h.poll() == []  # no longer listening
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # gone once it exited and was reaped (no zombie)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the detached worker did not end")
    assert read_metadata(tmp_path / "last.safetensors")["step"] == 120  # it trained to the end
    assert not (tmp_path / INFO_NAME).exists()


def test_background_worker_stops_and_saves_on_request_or_sigterm(tmp_path, handles):
    from studio.core.checkpoint import read_metadata
    from studio.training.runs import request_stop, running_pid

    h = WorkerHandle()
    handles.append(h)
    h.start(opts(tmp_path / "a", steps=100_000, checkpoint_every=0, preview_every=0))
    pump(h, lambda ev: any(isinstance(e, Progress) for e in ev))
    assert running_pid(tmp_path / "a") == h.pid
    h.detach()
    request_stop(tmp_path / "a")  # the run list's "Stop background run"
    assert _ended(h.pid, timeout=15), "the background worker ignored the stop request"
    step = read_metadata(tmp_path / "a" / "last.safetensors")["step"]
    assert 0 < step < 100_000
    assert running_pid(tmp_path / "a") is None

    h2 = WorkerHandle()  # attached: SIGTERM (e.g. a session logout) also stops and saves
    handles.append(h2)
    h2.start(opts(tmp_path / "b", steps=100_000, checkpoint_every=0, preview_every=0))
    pump(h2, lambda ev: any(isinstance(e, Progress) for e in ev))
    os.kill(h2.pid, signal.SIGTERM)
    pump(h2, lambda ev: any(isinstance(e, Finished) for e in ev), timeout=15)
    assert h2.join(10) and h2.exitcode == 0 and h2.finished.stopped_early
    assert read_metadata(tmp_path / "b" / "last.safetensors")["step"] == h2.finished.step


@pytest.mark.parametrize("detach", [True, False])
def test_child_tells_a_detach_from_a_dead_parent(detach):
    """The parent detaches by sending "detach" and closing its ends; the child may hit the
    broken event pipe before it reads that command, and must still keep training."""
    import multiprocessing as mp

    from studio.training.events import Detach
    from studio.training.worker_child import _Child

    evt_read, evt_write = mp.Pipe(duplex=False)
    cmd_read, cmd_write = mp.Pipe(duplex=False)
    child = _Child(cmd_read, evt_write)
    if detach:
        cmd_write.send(Detach())
    cmd_write.close()
    evt_read.close()
    child.emit(Paused(0))  # broken pipe first
    assert child.lost and child.headless
    child.between_steps(trainer=None)
    assert child.detached is detach
    assert child.stop_reason == ("" if detach else "the app exited")


def test_worker_stops_and_saves_when_its_app_dies(tmp_path):
    """A parent that exits without a word: the worker saves a checkpoint and exits."""
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "import PySide6.QtCore  # like main.py's app: Qt in the parent, never in the worker\n"
        "from studio.training.worker import WorkerHandle\n"
        "from studio.training.trainer import TrainOptions\n"
        "if __name__ == '__main__':\n"
        "    h = WorkerHandle()\n"
        f"    h.start(TrainOptions(family='vae', out={str(tmp_path / 'run')!r}, steps=100000, batch_size=32,\n"
        "                         checkpoint_every=0, preview_every=0, model={'latent_dim': 2}))\n"
        "    seen = []\n"
        "    while not any(type(e).__name__ == 'Progress' for e in seen): seen += h.poll(); time.sleep(0.02)\n"
        "    started = [e for e in seen if type(e).__name__ == 'Started'][0]\n"
        "    print(h.pid, started.qt_loaded, flush=True)\n"
        "    os._exit(0)\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=60, cwd=root)
    pid, qt_loaded = res.stdout.split()[:2]
    pid = int(pid)
    assert qt_loaded == "False"  # the worker did not re-import the parent's Qt-importing main
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (tmp_path / "run" / INFO_NAME).exists():
        time.sleep(0.1)
    assert not (tmp_path / "run" / INFO_NAME).exists(), "the orphaned worker kept training"
    assert (tmp_path / "run" / "last.safetensors").exists()
    assert _ended(pid, timeout=10), "the orphaned worker did not exit"


def _ended(pid: int, timeout: float) -> bool:
    """True once ``pid`` is gone (or a zombie waiting for whoever adopted it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            state = "R"
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
