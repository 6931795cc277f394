"""The training panel's Qt-free state: the session's rules and run folders as table rows."""

from __future__ import annotations

import numpy as np

from studio.core.checkpoint import Checkpoint, save_checkpoint
from studio.training.events import Progress
from studio.ui.training_state import RunRow, TrainingSession, describe_run, find_runs, live_value


def progress(step=40, total=100, eta_s=65.0):
    return Progress(step, total, 0.5, {"loss": 151.25, "kl": 4.5}, 900.0, eta_s, {"model": 1e-3})


def test_the_eta_shows_only_while_running():
    s = TrainingSession()
    assert s.progress_line() is None and s.progress_format() == "%p%"  # nothing yet
    s.begin("vae", "/runs/a")
    s.phase, s.last_progress = "running", progress()
    assert s.progress_format() == "%p%  ETA 1:05" and s.progress_line().endswith("ETA 1:05")
    assert s.progress_line().startswith("step 40/100  epoch 0.50  loss 151.2  kl 4.5  900 img/s  lr 0.001")
    s.phase = "stopping"  # right after Stop: what happens now, no ETA
    assert s.progress_format() == "%p%" and s.progress_line().endswith("stopping: saving a checkpoint…")
    assert "no progress for 7 s" in s.progress_line(stalled_s=7.0)
    s.phase, s.end_reason = "idle", "stopped"
    assert s.progress_line().endswith("stopped, checkpoint saved") and "ETA" not in s.progress_line()
    s.end_reason = "finished"
    assert s.progress_line().endswith("done")
    assert "no progress" not in s.progress_line(stalled_s=7.0)  # a finished run does not stall


def test_follow_needs_a_checkpoint_or_an_idle_run_folder():
    s = TrainingSession()
    assert not s.can_follow(False) and s.can_follow(True)  # idle, the output folder holds a run
    s.begin("vae", "/runs/a")
    s.phase = "running"
    assert not s.can_follow(True)  # the new run has no checkpoint yet
    s.last_checkpoint = "/runs/a/step_10.safetensors"
    assert s.can_follow(False)
    s.begin("vae", "/runs/b")  # a new run forgets the old one's facts
    assert s.last_checkpoint is None and s.last_progress is None and s.end_reason == ""


def test_live_values_come_from_the_learning_rates_in_use():
    lrs = {"gen": 2e-4, "disc": 1e-4}
    assert live_value("lr", lrs) == 2e-4 and live_value("lr.disc", lrs) == 1e-4
    assert live_value("beta", lrs) is None and live_value("lr", {}) is None


def _checkpoint(folder, step, total, family="vae"):
    folder.mkdir(parents=True, exist_ok=True)
    weights = {"w": np.zeros(3, np.float32)}
    save_checkpoint(Checkpoint(family, {}, weights, "mnist", step, extra={"options": {"steps": total}}),
                    folder / f"step_{step:07d}.safetensors")


def test_run_folders_as_rows(tmp_path):
    _checkpoint(tmp_path / "done", 300, 300)
    (tmp_path / "done" / "log.jsonl").write_text('{"step": 300, "loss": 151.234, "recon": 140, "time": 1}\n')
    _checkpoint(tmp_path / "halfway", 1200, 3000, family="dcgan")
    (tmp_path / "halfway" / "log.jsonl").write_text('{"step": 1200, "d_loss": 0.6931, "g_loss": 1.2, "time": 1}\n'
                                                    '{"step": 12')  # a torn last line
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "log.jsonl").write_text('{"step": 7, "loss": 300.0, "time": 1}\n')
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "last.safetensors").write_bytes(b"not a checkpoint")
    (tmp_path / "not-a-run").mkdir()

    rows = {r.name: r for r in map(describe_run, find_runs(tmp_path))}
    assert set(rows) == {"done", "halfway", "killed", "broken"}
    done = rows["done"]
    assert (done.family, done.step_text(), done.loss_text(), done.state_text()) == ("vae", "300 / 300", "151.2",
                                                                                      "finished")
    halfway = rows["halfway"]
    assert (halfway.step_text(), halfway.state) == ("1,200 / 3,000", "stopped")
    assert halfway.loss_text() == "d_loss 0.6931"  # no single "loss": the first, named
    assert (rows["killed"].step, rows["killed"].state, rows["killed"].family) == (7, "no checkpoint", "")
    broken = rows["broken"]
    assert (broken.state, broken.step_text(), broken.loss_text()) == ("unreadable", "–", "–")
    assert RunRow("/r/x", "x", "vae", 5, None, None, "training", 42).state_text() == "training (pid 42)"


def test_a_preview_grid_becomes_a_strip_of_its_tiles():
    from studio.core.imaging import image_grid
    from studio.ui.training_state import preview_strip

    images = np.random.default_rng(0).random((16, 1, 28, 28)).astype(np.float32)
    grid = image_grid(images, cols=8)  # as the trainers make their previews: 2 rows of 8
    strip, tile = preview_strip(grid)
    assert tile == 28 and strip.shape == (30, 16 * 29 + 1)
    np.testing.assert_array_equal(strip, image_grid(images, cols=16))  # the same tiles in one row
    rgb = image_grid(np.random.default_rng(1).random((16, 3, 32, 32)).astype(np.float32), cols=8)
    assert preview_strip(rgb)[1] == 32 and preview_strip(rgb)[0].shape == (34, 16 * 33 + 1, 3)
    assert preview_strip(np.zeros((50, 70), np.uint8)) is None  # not a grid of 8 square tiles
