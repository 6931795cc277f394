"""SIGKILL during checkpoint writes, again and again: each time every checkpoint left loads, resume
starts from the newest valid one, the killed writer's temp files are cleaned, and the chain of
kills ends with the same weights as a run that was never killed.

The kills aim at writes: a checkpoint every step, and the kill sent the moment a temp file of a
checkpoint being written shows up in the run folder. Three kills in the suite; the long run
(``pytest -m stress -s tests/test_kill_fuzz.py``) makes twenty and prints its figures.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studio.core.checkpoint import load_checkpoint, newest_checkpoint, read_metadata
from studio.training.lock import is_locked
from studio.training.runs import options_for_resume
from test_run_folders import TINY, cli, cli_in_background, digits, wait_for  # noqa: F401 - digits: a fixture

FAST = [*TINY, "--device", "cpu", "--threads", "1", "--checkpoint-every", "1", "--keep", "3"]
ENDLESS = 1_000_000


def temp_files(run: Path) -> set[str]:
    """Every file in the run folder a write in progress makes (ours, or one a library makes for itself)."""
    known = re.compile(r"(last|step_\d+)\.safetensors|log\.jsonl|\.run\.lock|worker\.json|options\.json")
    return {p.name for p in run.iterdir() if not known.fullmatch(p.name)}


def saved_step(run: Path) -> int:
    newest = newest_checkpoint(run)
    return -1 if newest is None else read_metadata(newest)["step"]


def kill_while_writing(proc: subprocess.Popen, run: Path, after_step: int, rng: random.Random) -> str:
    """SIGKILL ``proc`` as soon as it writes a checkpoint past ``after_step``; its stdout."""
    wait_for(lambda: saved_step(run) > after_step or proc.poll() is not None, timeout=120,
             what="a checkpoint after the resume")
    assert proc.poll() is None, proc.communicate()[1]
    time.sleep(rng.uniform(0.0, 0.3))  # a few steps on, so kills land at different steps
    deadline = time.monotonic() + 10
    while not any(name.endswith(".tmp") for name in temp_files(run)) and time.monotonic() < deadline:
        pass  # spin: a checkpoint is written in a few milliseconds
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out


def check_after_kill(run: Path) -> tuple[int, bool]:
    """Every checkpoint left loads; resume, the explorer and the lock agree. (newest step, a write was cut)."""
    assert not is_locked(run)  # the killed holder's lock went with it
    for path in run.glob("*.safetensors"):
        load_checkpoint(path, with_training_state=True)  # no torn file under a final name
    newest = newest_checkpoint(run)
    assert Path(options_for_resume(run)[1]) == newest  # what resume continues from is what the explorer opens
    return read_metadata(newest)["step"], bool(temp_files(run))


def kill_chain(tmp_path: Path, data: Path, kills: int, seed: int, compare_with_unkilled: bool) -> dict:
    rng = random.Random(seed)
    run = tmp_path / "run"
    started = time.perf_counter()
    proc = cli_in_background("vae", "--data", data, "--out", run, "--steps", ENDLESS, *FAST)
    step, cut_writes, steps = 0, 0, []
    for kill in range(kills):
        out = kill_while_writing(proc, run, step, rng)
        if kill > 0:
            assert f"resumed at step {step}" in out
        step, cut = check_after_kill(run)
        steps.append(step)
        cut_writes += cut
        if kill == kills - 1:
            break
        orphans = temp_files(run)
        proc = cli_in_background("--out", run, "--resume", "--steps", ENDLESS)
        wait_for(lambda: saved_step(run) > step or proc.poll() is not None, timeout=120, what="a resumed run")
        assert not orphans & temp_files(run), "the killed writer's temp files were not cleaned"
    final = cli("--out", run, "--resume", "--steps", step + 3)
    assert final.returncode == 0, final.stderr
    assert f"resumed at step {step}" in final.stdout and not temp_files(run)
    assert read_metadata(run / "last.safetensors")["step"] == step + 3

    if compare_with_unkilled:
        assert_same_weights_as_a_run_never_killed(tmp_path / "whole", data, run / "last.safetensors")
    return {"kills": kills, "cut_writes": cut_writes, "steps": steps, "final_step": step + 3,
            "seconds": time.perf_counter() - started}


def assert_same_weights_as_a_run_never_killed(whole: Path, data: Path, killed_last: Path) -> None:
    step = read_metadata(killed_last)["step"]
    once = cli("vae", "--data", data, "--out", whole, "--steps", step, *FAST)
    assert once.returncode == 0, once.stderr
    killed, unkilled = load_checkpoint(killed_last), load_checkpoint(whole / "last.safetensors")
    assert killed.weights.keys() == unkilled.weights.keys()
    for name, weights in killed.weights.items():
        np.testing.assert_array_equal(weights, unkilled.weights[name], err_msg=name)


def test_three_kills_during_checkpoint_writes_resume_from_the_newest_valid_file(tmp_path, digits):
    figures = kill_chain(tmp_path, digits, kills=3, seed=1, compare_with_unkilled=False)
    assert figures["steps"] == sorted(figures["steps"])  # no kill lost saved progress


@pytest.mark.stress
@pytest.mark.timeout(1800)
def test_twenty_kills_during_checkpoint_writes(tmp_path, digits):
    figures = kill_chain(tmp_path, digits, kills=20, seed=2, compare_with_unkilled=True)
    print(f"\nkill fuzz: {figures['kills']} SIGKILLs aimed at checkpoint writes, {figures['cut_writes']} cut a "
          f"write (temp file left), resumed at steps {figures['steps']}, final step {figures['final_step']} "
          f"bit-identical to a run never killed, {figures['seconds']:.0f} s")
    assert figures["cut_writes"] >= 10  # most kills did land inside a write


SAVING_IN_A_LOOP = """
import sys
import numpy as np
from studio.core.checkpoint import Checkpoint, save_checkpoint
weights = {"w": np.random.default_rng(0).standard_normal(8_000_000).astype(np.float32)}  # 32 MB
while True:
    save_checkpoint(Checkpoint("vae", {"latent_dim": 2}, weights), sys.argv[1])
"""


def test_a_save_killed_midway_leaves_only_temp_files_that_resume_cleans(tmp_path):
    """safetensors' save_file wrote through a hidden .tmpXXXXXX of its own, which a kill left behind."""
    from conftest import REPO
    from studio.training.runs import clean_orphans
    from test_run_folders import ENV

    run = tmp_path / "run"
    run.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", SAVING_IN_A_LOOP, str(run / "last.safetensors")], cwd=REPO,
                              env=ENV)
    seen: set[str] = set()  # every temp file the saves made, watched for a while
    try:
        wait_for(lambda: (run / "last.safetensors").exists(), timeout=60, what="the first save")
        watch_until = time.monotonic() + 1.5
        while time.monotonic() < watch_until:
            seen |= temp_files(run)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    unknown = sorted(name for name in seen if not name.endswith(".tmp"))
    assert seen and not unknown, f"a save makes temp files that clean-up does not know: {unknown[:3]}"
    clean_orphans(run)
    assert temp_files(run) == set(), "a killed save left a file behind"
    load_checkpoint(run / "last.safetensors")
