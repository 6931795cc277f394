"""Run folders under stress: kills mid-write, temp files, two writers, stale locks, a folder that
turns unwritable and a loss that turns NaN; through the worker and the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from studio.core.checkpoint import load_checkpoint, newest_checkpoint, read_metadata
from studio.training.events import CheckpointWritten, Diverged, Finished, Paused, Progress, Rewound
from studio.training.lock import RunLock, is_locked
from studio.training.runs import (
    TrainingSetupError,
    clean_orphans,
    options_for_resume,
    prepare_run,
    running_pid,
)
from studio.training.worker import WorkerHandle
from test_training_worker import opts, pump

ENV = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
TINY = ["--set", "width=8", "--set", "hidden=32", "--batch-size", "16"]


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio.train", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def cli_in_background(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio.train", *map(str, args)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout=60.0, what="condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def make_unwritable(run_dir: Path) -> Path:
    """Put a plain file where the run folder was (as root, permission bits would not stop writes)."""
    away = run_dir.with_name(run_dir.name + ".away")
    run_dir.rename(away)
    run_dir.write_text("not a folder")
    return away


def make_writable(run_dir: Path, away: Path) -> None:
    run_dir.unlink()
    away.rename(run_dir)


@pytest.fixture
def digits(tmp_path, mnist_small):
    path = tmp_path / "digits.npz"
    np.savez(path, images=(mnist_small.images[:256, 0] * 255).astype(np.uint8), labels=mnist_small.labels[:256])
    return path


@pytest.fixture
def handles():
    made: list[WorkerHandle] = []
    yield made
    for h in made:
        h.kill()
        h.close()


def test_resume_explorer_and_run_list_agree_after_a_kill_mid_write(tmp_path, digits):
    from studio.ui.training_state import describe_run

    run = tmp_path / "run"
    assert cli("vae", "--data", digits, "--out", run, "--steps", 10, "--checkpoint-every", 5, "--keep", 5,
               *TINY).returncode == 0
    last_at_10 = (run / "last.safetensors").read_bytes()
    assert cli("--out", run, "--resume", "--steps", 15).returncode == 0
    # A kill while last.safetensors was being rewritten at step 15: step_15 is complete,
    # last still holds step 10 (older), and the writer's temp file is left behind.
    (run / "last.safetensors").write_bytes(last_at_10)
    older = (run / "step_0000015.safetensors").stat().st_mtime - 5
    os.utime(run / "last.safetensors", (older, older))
    orphan = run / "last.safetensors.k1ll3d.tmp"
    orphan.write_bytes((run / "step_0000015.safetensors").read_bytes()[:5000])

    assert newest_checkpoint(run).name == "step_0000015.safetensors"  # what the explorer opens
    assert Path(options_for_resume(run)[1]).name == "step_0000015.safetensors"  # what resume uses
    assert describe_run(run).step == 15  # what the run table shows
    out = cli("--out", run, "--resume", "--steps", 18)
    assert out.returncode == 0, out.stderr
    assert "resumed at step 15" in out.stdout
    assert not orphan.exists()  # temp files of killed writers are cleaned on resume
    assert read_metadata(run / "last.safetensors")["step"] == 18


def test_temp_files_are_cleaned_only_when_nobody_writes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.safetensors.abc.tmp").write_bytes(b"x" * 1000)
    (run / "log.jsonl.tmp").write_text("{}")
    lock = RunLock(run).acquire()
    assert clean_orphans(run) == []  # a live writer may be writing those
    assert (run / "log.jsonl.tmp").exists()
    lock.release()
    assert clean_orphans(run) == ["last.safetensors.abc.tmp", "log.jsonl.tmp"]
    assert not list(run.glob("*.tmp"))


def test_a_second_writer_is_refused_naming_the_pid(tmp_path, digits, handles):
    run = tmp_path / "run"
    early_plan = prepare_run(opts(run, data=str(digits), steps=100_000, checkpoint_every=0, preview_every=0))
    h1 = WorkerHandle()
    handles.append(h1)
    h1.start(early_plan.options, plan=early_plan)
    h2 = WorkerHandle()  # started right after: the first worker is still importing torch
    with pytest.raises(TrainingSetupError, match=f"pid {h1.pid}"):
        h2.start(opts(run, data=str(digits)))
    with pytest.raises(TrainingSetupError, match=f"pid {h1.pid}"):
        h2.start(early_plan.options, plan=early_plan)  # checked before h1 took the folder
    assert not h2.started
    assert running_pid(run) == h1.pid
    # A command-line run beside the app's worker is refused too, in one line.
    out = cli("vae", "--data", digits, "--out", run, *TINY)
    assert out.returncode == 2 and f"pid {h1.pid}" in out.stderr and "Traceback" not in out.stderr
    pump(h1, lambda ev: any(isinstance(e, Progress) for e in ev))
    assert h1.stop()
    pump(h1, lambda ev: any(isinstance(e, Finished) for e in ev))
    assert h1.join(10) and not is_locked(run) and running_pid(run) is None


def test_two_command_lines_one_folder_and_a_killed_holder_never_blocks(tmp_path, digits):
    run = tmp_path / "run"
    first = cli_in_background("vae", "--data", digits, "--out", run, "--steps", 100_000,
                              "--checkpoint-every", 10, *TINY)
    try:
        wait_for(lambda: (run / "step_0000010.safetensors").exists(), what="the first checkpoint")
        second = cli("--out", run, "--resume", "--steps", 200_000)
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGKILL)  # the holder dies without a word: its lock goes with it
        first.wait(10)
    assert not is_locked(run)
    saved = read_metadata(newest_checkpoint(run))["step"]
    again = cli("--out", run, "--resume", "--steps", saved + 5)
    assert again.returncode == 0, again.stderr
    assert f"resumed at step {saved}" in again.stdout


def test_a_run_folder_that_turns_unwritable_fails_in_one_line_and_resumes_later(tmp_path, digits):
    run = tmp_path / "run"
    proc = cli_in_background("vae", "--data", digits, "--out", run, "--steps", 100_000,
                             "--checkpoint-every", 10, *TINY)
    try:
        wait_for(lambda: (run / "step_0000010.safetensors").exists(), what="the first checkpoint")
        away = make_unwritable(run)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert str(run) in lines[0] and "cannot write" in lines[0]
    step = int(lines[0].split("at step ")[1].split()[0])
    assert step >= 10  # the real step, not -1
    make_writable(run, away)
    saved = read_metadata(newest_checkpoint(run))["step"]
    assert 10 <= saved <= step
    resumed = cli("--out", run, "--resume", "--steps", saved + 5)
    assert resumed.returncode == 0, resumed.stderr
    assert read_metadata(run / "last.safetensors")["step"] == saved + 5


def test_the_worker_reports_the_real_step_when_the_folder_turns_unwritable(tmp_path, handles):
    run = tmp_path / "run"
    h = WorkerHandle()
    handles.append(h)
    h.start(opts(run, steps=100_000, checkpoint_every=10, preview_every=0))
    pump(h, lambda ev: any(isinstance(e, CheckpointWritten) for e in ev))
    away = make_unwritable(run)
    pump(h, lambda ev: h.failed is not None, timeout=60)
    assert h.join(10) and h.exitcode == 1
    assert h.failed.step is not None and h.failed.step >= 10
    assert str(run) in h.failed.message and "cannot write" in h.failed.message
    assert "\n" not in h.failed.message  # one line; the traceback goes to the log only
    make_writable(run, away)
    options, last = options_for_resume(run, steps=h.failed.step + 5)
    h2 = WorkerHandle()
    handles.append(h2)
    assert h2.start(options, resume=last).start_step >= 10
    pump(h2, lambda ev: any(isinstance(e, Finished) for e in ev))


def test_a_nan_loss_pauses_the_worker_and_resume_goes_back_to_good_weights(tmp_path, handles):
    run = tmp_path / "run"
    h = WorkerHandle()
    handles.append(h)
    h.start(opts(run, steps=25, lr=1e30, checkpoint_every=10, preview_every=0))
    seen = pump(h, lambda ev: any(isinstance(e, Paused) and e.reason for e in ev))
    diverged = next(e for e in seen if isinstance(e, Diverged))
    paused = next(e for e in seen if isinstance(e, Paused))
    assert "not finite" in paused.reason and "no checkpoint was written yet" in paused.reason
    assert not list(run.glob("*.safetensors"))  # no NaN checkpoint
    assert h.is_alive() and h.paused
    assert h.set_lr(1e-3) and h.resume()
    seen += pump(h, lambda ev: any(isinstance(e, Finished) for e in ev))
    rewound = next(e for e in seen if isinstance(e, Rewound))
    assert rewound.step == 0 and diverged.step >= 1
    after = [e for e in seen[seen.index(rewound):] if isinstance(e, Progress)]
    assert [e.step for e in after] == list(range(1, 26)) and after[-1].lr == pytest.approx(1e-3)
    ckpt = load_checkpoint(run / "last.safetensors")
    assert ckpt.step == 25 and all(np.isfinite(w).all() for w in ckpt.weights.values())


def test_a_nan_loss_ends_the_command_line_without_a_checkpoint(tmp_path, digits):
    run = tmp_path / "run"
    out = cli("vae", "--data", digits, "--out", run, "--steps", 20, "--lr", "1e30", "--checkpoint-every", 5, *TINY)
    assert out.returncode == 1 and "not finite" in out.stderr and "Traceback" not in out.stderr
    assert not list(run.glob("*.safetensors"))


def test_under_torchrun_only_rank_0_writes_and_locks(tmp_path, digits):
    run = tmp_path / "run"
    lock = RunLock(run).acquire()  # rank 0 holds the folder
    try:
        env = dict(ENV, RANK="1", WORLD_SIZE="2", LOCAL_RANK="1")
        out = subprocess.run([sys.executable, "-m", "studio.train", "vae", "--data", str(digits), "--out", str(run),
                              "--steps", "6", "--checkpoint-every", "3", "--device", "cpu", *TINY],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        lock.release()
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and not list(run.glob("*.safetensors")) and not (run / "log.jsonl").exists()
