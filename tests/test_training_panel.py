"""The training panel, driven through its real widgets (offscreen), with a real worker."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPoint, Qt, QTimer  # noqa: E402

from studio.core.checkpoint import load_checkpoint, read_metadata  # noqa: E402
from studio.ui.context import AppContext  # noqa: E402
from studio.ui.training_panel import TrainingPanel  # noqa: E402

SMALL = dict(steps=30, batch_size=32, checkpoint_every=10, preview_every=10, model="latent_dim=2")


@pytest.fixture
def panel(qtbot, tmp_path):
    ctx = AppContext()
    p = TrainingPanel(ctx, runs_root=tmp_path / "runs")
    qtbot.addWidget(p)
    p.resize(1100, 720)
    p.show()
    yield p
    p.shutdown()
    if p.handle is not None:
        p.handle.kill()


def configure(panel: TrainingPanel, out: Path, **kw) -> None:
    panel.form.set_values({**SMALL, "out": str(out), **kw})


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.LeftButton)


def cell(panel, row: int, column: str) -> str:
    """What the run table shows in ``row`` (as sorted on screen) under ``column``."""
    from studio.ui.widgets.training_runs import COLUMNS

    return panel.runs.proxy.index(row, COLUMNS.index(column)).data()


def wait_state(qtbot, panel, state, timeout=40_000):
    qtbot.waitUntil(lambda: panel.state == state, timeout=timeout)


def test_panel_is_registered_and_marks_its_first_image(qtbot, panel):
    from studio.ui.panels import panel_class, panel_names

    assert panel_class("training") is TrainingPanel and "training" in panel_names()
    qtbot.waitUntil(panel.has_first_image, timeout=2000)
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled()


def test_short_run_live_curves_previews_and_explorer_loads_it(qtbot, panel, tmp_path):
    out = tmp_path / "runs" / "short"
    configure(panel, out)
    updated = []
    panel.context.checkpointUpdated.connect(lambda fam, path: updated.append((fam, path)))
    opened = []
    panel.context.checkpointOpened.connect(lambda fam, path: opened.append((fam, path)))
    assert not panel.follow_btn.isEnabled()  # nothing to follow yet
    with qtbot.waitSignal(panel.runEnded, timeout=60_000) as ended:
        click(qtbot, panel.start_btn)
        qtbot.waitUntil(lambda: panel.state == "running", timeout=20_000)
        assert not panel.start_btn.isEnabled() and panel.stop_btn.isEnabled()
    assert ended.args == ["finished"], panel.status.text()
    x, y = panel.curves.data("loss")
    assert list(x) == list(range(1, 31)) and np.all(np.isfinite(y))
    assert panel.progress.value() == 30 == panel.progress.maximum()
    assert panel.preview.image() is not None and panel.preview.image().dtype == np.uint8
    assert panel.preview.rows() > 2 and panel.preview.scale() >= 2  # re-wrapped to fit: at 2x or more
    assert [s for _, s in [(f, read_metadata(p)["step"]) for f, p in updated]][-1] == 30
    assert updated[0][0] == "vae" and opened == []  # explorers reload quietly; no tab is forced
    assert panel.runs.current() == str(out)  # the run list shows the new run
    assert "Finished at step 30" in panel.status.text()
    assert "ETA" not in panel.progress_label.text() and "ETA" not in panel.progress.format()
    assert panel.progress_label.text().endswith("done")
    assert panel.start_btn.isEnabled()
    click(qtbot, panel.follow_btn)  # offered: the user decides
    assert opened == [("vae", str(out))]

    # The explorer side: the runtime and, where present, the VAE panel open the run.
    from studio.engine.runtime import ModelRuntime

    rt = ModelRuntime(out)
    assert rt.checkpoint.step == 30 and rt.family == "vae"
    from studio.ui import app

    assert app._check_checkpoint(str(out)) == "vae"  # what `main.py --checkpoint RUN_DIR` checks
    try:
        from studio.families.vae.ui.panel import VAEPanel  # noqa: F401 - written alongside this panel
    except ImportError:
        return
    from studio.ui.main_window import MainWindow

    ctx = AppContext()
    ctx.checkpoints["vae"] = str(out)  # what app.main does for `--checkpoint RUN_DIR`
    win = MainWindow(ctx, ["vae", "training"], initial="vae")
    qtbot.addWidget(win)
    win.show()
    vae = win.panel("vae")
    assert out in (Path(vae.checkpoint), Path(vae.checkpoint).parent) and vae.latent_dim == 2
    qtbot.waitUntil(vae.has_first_image, timeout=30_000)  # it really rendered the new model
    assert "#e05050" not in vae.status.styleSheet(), vae.status.text()
    # "Follow in explorer": a written checkpoint switches to the matching panel.
    win.select_panel("training")
    assert win.current_name() == "training"
    ctx.checkpointOpened.emit("vae", str(out / "last.safetensors"))
    assert win.current_name() == "vae"
    win.close()


def test_pause_resume_and_stop_saves(qtbot, panel, tmp_path):
    out = tmp_path / "runs" / "pausing"
    configure(panel, out, steps=3000, checkpoint_every=0, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_progress is not None and panel.last_progress.step >= 5,
                    timeout=30_000)
    click(qtbot, panel.pause_btn)
    wait_state(qtbot, panel, "paused", 5000)
    assert panel.resume_btn.isEnabled() and not panel.pause_btn.isEnabled()
    qtbot.wait(300)
    at = panel.last_progress.step
    qtbot.wait(600)
    assert panel.last_progress.step == at  # nothing trains while paused
    click(qtbot, panel.resume_btn)
    wait_state(qtbot, panel, "running", 5000)
    qtbot.waitUntil(lambda: panel.last_progress.step > at + 5, timeout=10_000)
    with qtbot.waitSignal(panel.runEnded, timeout=20_000) as ended:
        click(qtbot, panel.stop_btn)
        # At once, before the worker has saved: the panel says what is happening, no ETA.
        assert panel.state == "stopping" and "saving" in panel.progress_label.text()
        assert "ETA" not in panel.progress_label.text() and "ETA" not in panel.progress.format()
    assert ended.args == ["stopped"]
    stopped_at = panel.handle.finished.step
    assert "ETA" not in panel.progress_label.text() and "ETA" not in panel.progress.format()
    assert f"step {stopped_at}/3000" in panel.progress_label.text() and "stopped" in panel.progress_label.text()
    assert at + 5 < stopped_at < 3000
    ckpt = load_checkpoint(out / "last.safetensors", with_training_state=True)
    assert ckpt.step == stopped_at
    assert len(ckpt.training_state["history/loss"]) == stopped_at
    assert panel.handle.exitcode == 0

    # The run list reopens the run: its logged curve and its settings (for Resume run).
    panel.form.steps.setValue(77)
    panel.curves.clear()
    panel.runs.clear_selection()
    panel.runs.refresh()
    row = panel.runs.view_row_of(str(out))
    assert row == 0 and cell(panel, row, "step") == f"{stopped_at:,} / 3,000"
    assert cell(panel, row, "state") == "stopped"  # Resume continues it
    rect = panel.runs.view.visualRect(panel.runs.proxy.index(row, 0))
    qtbot.mouseClick(panel.runs.view.viewport(), Qt.LeftButton, pos=rect.center())
    assert panel.form.steps.value() == 3000 and panel.form.out.text() == str(out)
    x, _ = panel.curves.data("loss")
    assert list(x) == [float(s) for s in range(10, stopped_at + 1, 10)]  # log.jsonl, every 10 steps


def test_sigkill_is_reported_and_resume_continues_the_curves(qtbot, panel, tmp_path):
    out = tmp_path / "runs" / "killed"
    configure(panel, out, steps=3000, checkpoint_every=10, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_checkpoint is not None and panel.last_progress.step >= 25,
                    timeout=30_000)
    saved = read_metadata(out / "last.safetensors")["step"]
    with qtbot.waitSignal(panel.runEnded, timeout=5000) as ended:
        os.kill(panel.handle.pid, signal.SIGKILL)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 1.0
    assert ended.args == ["crashed"]
    text = panel.status.text()
    assert "SIGKILL" in text and "exit code -9" in text and "Last message: step" in text
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled()
    ckpt = load_checkpoint(out, with_training_state=True)  # intact
    assert ckpt.step >= saved and ckpt.step % 10 == 0

    # Resume from the GUI: the step count and the loss curve continue.
    panel.form.steps.setValue(ckpt.step + 12)
    with qtbot.waitSignal(panel.runEnded, timeout=60_000) as ended:
        click(qtbot, panel.resume_btn)  # idle, with a run in the output folder: continue it
    assert ended.args == ["finished"], panel.status.text()
    assert read_metadata(out / "last.safetensors")["step"] == ckpt.step + 12
    x, _ = panel.curves.data("loss")
    logged = [s for s in x if s <= ckpt.step]
    assert x[-1] == ckpt.step + 12 and len(logged) >= ckpt.step // 10  # history + new steps
    assert list(x[-12:]) == list(range(ckpt.step + 1, ckpt.step + 13))
    assert np.all(np.diff(x) > 0)  # no jump back


def test_bad_dataset_is_reported_before_start(qtbot, panel, tmp_path):
    empty = tmp_path / "no_images"
    empty.mkdir()
    configure(panel, tmp_path / "runs" / "bad", data=str(empty))
    with qtbot.waitSignal(panel.runEnded, timeout=30_000) as ended:
        click(qtbot, panel.start_btn)
    assert ended.args == ["refused"]
    assert panel.handle is None  # no worker was started
    assert "holds no images" in panel.status.text()
    assert panel.start_btn.isEnabled()

    (tmp_path / "rgb").mkdir()
    from PIL import Image

    Image.new("RGB", (28, 28), (255, 0, 0)).save(tmp_path / "rgb" / "a.png")
    configure(panel, tmp_path / "runs" / "bad2", data=str(tmp_path / "rgb"),
              model="latent_dim=2, channels=1")
    with qtbot.waitSignal(panel.runEnded, timeout=30_000) as ended:
        click(qtbot, panel.start_btn)
    assert ended.args == ["refused"] and panel.handle is None
    assert "channel" in panel.status.text()


def test_stop_and_save_on_close_keeps_the_gui_responsive(qtbot, panel, tmp_path, monkeypatch):
    out = tmp_path / "runs" / "closing"
    configure(panel, out, steps=3000, checkpoint_every=0, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_progress is not None, timeout=30_000)
    monkeypatch.setattr(panel, "ask_close", lambda: "cancel")
    assert panel.confirm_close() is False and panel.is_training()
    monkeypatch.setattr(panel, "ask_close", lambda: "stop")
    ticks = []
    beat = QTimer()
    beat.timeout.connect(lambda: ticks.append(time.monotonic()))
    beat.start(20)
    with qtbot.waitSignal(panel.runEnded, timeout=30_000) as ended:
        # The close waits for the checkpoint without blocking: the event loop keeps running.
        assert panel.confirm_close() is False
        assert panel.state == "stopping" and "saving" in panel.status.text().lower()
        assert panel.confirm_close() is False  # a second close while saving: still waiting
    beat.stop()
    assert ended.args == ["stopped"] and len(ticks) >= 3
    assert not panel.handle.is_alive() and panel.handle.finished.stopped_early
    assert read_metadata(out / "last.safetensors")["step"] == panel.handle.finished.step
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=5000)  # then the window closes itself
    assert panel.confirm_close() is True


def test_closing_can_keep_training_in_the_background(qtbot, panel, tmp_path, monkeypatch):
    from studio.training.runs import running_pid

    out = tmp_path / "runs" / "background"
    configure(panel, out, steps=150, checkpoint_every=0, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_progress is not None, timeout=30_000)
    pid = panel.handle.pid
    monkeypatch.setattr(panel, "ask_close", lambda: "background")
    assert panel.confirm_close() is True
    assert panel.handle.detached and running_pid(out) == pid  # still training, on its own
    qtbot.waitUntil(lambda: running_pid(out) is None, timeout=60_000)
    assert read_metadata(out / "last.safetensors")["step"] == 150  # it finished the run
    qtbot.waitUntil(lambda: not Path(f"/proc/{pid}").exists(), timeout=5000)  # and was reaped


def test_follow_in_explorer_is_offered_not_forced(qtbot, tmp_path, monkeypatch):
    from studio.ui.main_window import MainWindow

    monkeypatch.setenv("GENERATIVE_STUDIO_HOME", str(tmp_path / "home"))
    ctx = AppContext()
    win = MainWindow(ctx, ["vae", "training"], initial="training")
    qtbot.addWidget(win)
    win.show()
    panel = win.panel("training")
    out = tmp_path / "home" / "runs" / "followed"
    configure(panel, out, steps=40, checkpoint_every=5, preview_every=0)
    try:
        with qtbot.waitSignal(panel.checkpointWritten, timeout=60_000):
            click(qtbot, panel.start_btn)
        qtbot.waitUntil(lambda: panel.last_progress is not None and panel.last_progress.step >= 15,
                        timeout=30_000)
        assert win.current_name() == "training"  # the loss curves stay in front
        assert panel.follow_btn.isEnabled()
        click(qtbot, panel.follow_btn)
        assert win.current_name() == "vae"
        assert Path(win.panel("vae").checkpoint) == out  # the explorer follows the run folder
        qtbot.waitUntil(lambda: panel.state == "idle", timeout=60_000)
    finally:
        panel.shutdown()
        win.close()


def test_a_stalled_worker_is_shown_and_clears(qtbot, panel, tmp_path):
    panel.stall_after_s = 1.0
    configure(panel, tmp_path / "runs" / "stalled", steps=100_000, checkpoint_every=0, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_progress is not None, timeout=30_000)
    pid = panel.handle.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        qtbot.waitUntil(lambda: "no progress for" in panel.progress_label.text(), timeout=10_000)
        assert panel.state == "running" and panel.handle.is_alive()  # stalled is not dead
    finally:
        os.kill(pid, signal.SIGCONT)
    qtbot.waitUntil(lambda: "no progress for" not in panel.progress_label.text(), timeout=10_000)
    with qtbot.waitSignal(panel.runEnded, timeout=30_000):
        click(qtbot, panel.stop_btn)


def test_an_unwritable_run_folder_shows_the_real_step_and_resumes_later(qtbot, panel, tmp_path):
    out = tmp_path / "runs" / "readonly"
    configure(panel, out, steps=100_000, checkpoint_every=10, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_checkpoint is not None, timeout=30_000)
    away = out.with_name("readonly.away")  # as root, permission bits would not stop the writes
    out.rename(away)
    out.write_text("not a folder")
    with qtbot.waitSignal(panel.runEnded, timeout=60_000) as ended:
        pass
    assert ended.args == ["failed"]
    text = panel.status.text()
    assert "at step -1" not in text and "Traceback" not in text
    step = int(text.split("failed at step ")[1].split(":")[0])
    assert step >= 10 and str(out) in text and "cannot write" in text
    out.unlink()
    away.rename(out)
    panel.form.steps.setValue(step + 5)
    assert panel.resume_btn.isEnabled()
    with qtbot.waitSignal(panel.runEnded, timeout=60_000) as ended:
        click(qtbot, panel.resume_btn)
    assert ended.args == ["finished"], panel.status.text()
    assert read_metadata(out / "last.safetensors")["step"] == step + 5


def test_one_resume_button_and_live_options_follow_the_family(qtbot, panel, tmp_path):
    from PySide6.QtWidgets import QPushButton

    resume_buttons = [b for b in panel.findChildren(QPushButton) if "resume" in b.text().lower()]
    assert resume_buttons == [panel.resume_btn]
    assert list(panel.controls.live) == ["lr", "beta"]  # the VAE descriptor's live options
    panel.form.family.setCurrentText("diffusion")
    assert list(panel.controls.live) == ["lr"]
    panel.form.family.setCurrentText("vae")
    out = tmp_path / "runs" / "live"
    configure(panel, out, steps=100_000, checkpoint_every=0, preview_every=0)
    with qtbot.waitSignal(panel.runEnded, timeout=30_000) as ended:
        click(qtbot, panel.resume_btn)  # no run in that folder yet
    assert ended.args == ["refused"] and "no checkpoint to resume from" in panel.status.text()
    panel.form.lr.setValue(0.002)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_progress is not None, timeout=30_000)
    lr, beta = panel.controls.live["lr"], panel.controls.live["beta"]
    assert lr.shown_value() == "0.002000" and beta.shown_value() == "1.000"  # what the run uses
    assert lr.button.isEnabled() and beta.spin.isEnabled()
    beta.spin.setValue(4.0)
    click(qtbot, beta.button)
    qtbot.waitUntil(lambda: "beta set to 4" in panel.log.toPlainText(), timeout=10_000)
    with qtbot.waitSignal(panel.runEnded, timeout=30_000):
        click(qtbot, panel.stop_btn)
    assert read_metadata(out / "last.safetensors")["config"]["beta"] == 4.0  # resumes with it
    assert panel.resume_btn.isEnabled()
    assert [row.shown_value() for row in panel.controls.live.values()] == ["no run: start or resume one"] * 2


def test_opening_a_run_cleans_temp_files_of_killed_writers(qtbot, panel, tmp_path):
    run = tmp_path / "runs" / "old"
    configure(panel, run, steps=10, checkpoint_every=0, preview_every=0)
    with qtbot.waitSignal(panel.runEnded, timeout=60_000):
        click(qtbot, panel.start_btn)
    orphan = run / "last.safetensors.x9.tmp"
    orphan.write_bytes(b"\0" * 4096)
    panel.runs.refresh()
    panel.runs.clear_selection()
    panel.runs.select(str(run))
    assert not orphan.exists() and "removed 1 temp file" in panel.log.toPlainText()


def test_explain_pane_says_what_the_curves_of_the_chosen_family_mean(qtbot, panel):
    from studio.core.family import get_family

    panel.form.family.setCurrentText("vae")
    assert "recon" in panel.explain.text.text() and get_family("vae").training_equations[0] in panel.explain.equations()
    panel.form.family.setCurrentText("dcgan")
    assert "d_loss" in panel.explain.text.text() and "recon" not in panel.explain.text.text()
    assert panel.explain.equations() == list(get_family("dcgan").training_equations)


def test_the_run_table_has_headers_and_shows_a_short_run(qtbot, panel, tmp_path):
    from PySide6.QtWidgets import QApplication

    from studio.ui.widgets.training_runs import COLUMNS

    headers = [panel.runs.proxy.headerData(i, Qt.Horizontal) for i in range(len(COLUMNS))]
    assert headers == ["Name", "Family", "Step", "Loss", "State"]
    assert panel.runs.row_count() == 0
    out = tmp_path / "runs" / "tabled"
    configure(panel, out, steps=20, checkpoint_every=10, preview_every=0)
    click(qtbot, panel.start_btn)
    qtbot.waitUntil(lambda: panel.last_checkpoint is not None, timeout=30_000)
    row = panel.runs.view_row_of(str(out))  # added at its first checkpoint, with the worker's pid
    assert row >= 0 and cell(panel, row, "state") == f"training (pid {panel.handle.pid})"
    with qtbot.waitSignal(panel.runEnded, timeout=60_000) as ended:
        pass
    assert ended.args == ["finished"]
    row = panel.runs.view_row_of(str(out))  # the panel refreshed the table at the end
    assert [cell(panel, row, c) for c in ("name", "family", "step", "state")] == ["tabled", "vae", "20 / 20", "finished"]
    last_loss = float(panel.curves.data("loss")[1][-1])
    assert cell(panel, row, "loss") == f"{last_loss:.4g}"
    assert panel.runs.proxy.index(row, 0).data(Qt.ToolTipRole) == str(out)  # the full path
    assert panel.runs.current() == str(out)

    # A second folder (a run killed before its first checkpoint): sorting by step is numeric.
    other = tmp_path / "runs" / "a-killed-run"
    other.mkdir()
    (other / "log.jsonl").write_text('{"step": 5, "loss": 300.0, "time": 0}\n')
    panel.runs.refresh()
    header = panel.runs.view.horizontalHeader()

    def click_step_header():
        x = header.sectionViewportPosition(COLUMNS.index("step")) + 5  # moves as the sort arrow appears
        qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(x, header.height() // 2))

    click_step_header()
    steps = [cell(panel, r, "step") for r in range(panel.runs.row_count())]
    assert header.sortIndicatorSection() == COLUMNS.index("step")
    order = header.sortIndicatorOrder()
    assert steps == (["5", "20 / 20"] if order == Qt.AscendingOrder else ["20 / 20", "5"])
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # a second click, not a double click
    click_step_header()
    assert [cell(panel, r, "step") for r in range(panel.runs.row_count())] == steps[::-1]
    assert cell(panel, panel.runs.view_row_of(str(other)), "state") == "no checkpoint"
    assert panel.runs.current() == str(out)  # sorting and refreshing keep the selection


def test_live_options_say_no_run_while_idle(qtbot, panel):
    assert list(panel.controls.live) == ["lr", "beta"]
    for row in panel.controls.live.values():
        assert row.shown_value() == "no run: start or resume one"  # not "Live LR 0.000000"
        assert not row.spin.isVisible() and not row.spin.isEnabled() and not row.button.isEnabled()
        assert row.idle.isVisible()
    assert "change a run while it trains" in panel.controls.live_title.text()
    panel.form.family.setCurrentText("dcgan")
    assert list(panel.controls.live) == ["lr"] and panel.controls.live["lr"].shown_value().startswith("no run")


def test_the_log_elides_paths_in_the_middle_and_keeps_them_whole(qtbot):
    from PySide6.QtGui import QGuiApplication

    from studio.ui.widgets.training_log import RunLog

    log = RunLog()
    qtbot.addWidget(log)
    log.resize(600, 200)
    log.show()
    path = "/home/student/.local/share/generative-studio/runs/vae-20260101-120000/step_0000500.safetensors"
    log.note(f"checkpoint at step 500: {path}")
    log.note("worker pid 12: vae on mnist, starting")
    shown = log.shown_text(0)
    # The middle folders give way; the run's folder and file stay.
    assert shown.endswith("checkpoint at step 500: /home/…/vae-20260101-120000/step_0000500.safetensors")
    assert log.fontMetrics().horizontalAdvance(shown) <= log.viewport().width()
    assert log.shown_text(1).endswith("worker pid 12: vae on mnist, starting")  # no path: whole
    assert path in log.toPlainText() and log.item(0).toolTip().endswith(path)
    log.resize(300, 200)  # too narrow even for that: Qt's middle elision of the path
    qtbot.waitUntil(lambda: log.shown_text(0) != shown)
    assert "checkpoint at step 500: /home" in log.shown_text(0) and "…" in log.shown_text(0)
    log.resize(1400, 200)
    qtbot.waitUntil(lambda: log.shown_text(0).endswith(path))  # room again: the whole path
    log.setCurrentRow(0)
    qtbot.keyClick(log, Qt.Key_C, Qt.ControlModifier)
    assert QGuiApplication.clipboard().text().endswith(path)
