"""The training panel: start a run in a worker process and watch it live.

``RunController`` (studio.ui.training_runner) checks the options, runs the
worker and keeps what it says in a Qt-free ``TrainingSession``; this panel
binds that to the widgets of ``TrainingView``: the form, the controls and
the family's live options, the progress bar and its line, the loss curves
(redrawn at most four times a second), the preview, the run table and the log.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout

from studio.core.family import families, get_family
from studio.core.paths import runs_dir
from studio.training.runs import clean_orphans, family_names, holds_run, plan_new, plan_resume, read_log, request_stop
from studio.training.worker import WorkerHandle
from studio.ui.panel import Panel
from studio.ui.training_runner import CLOSE_TIMEOUT_MS, RunController
from studio.ui.training_feed import RunFeed
from studio.ui.training_state import describe_run, saved_options
from studio.ui.widgets.training_controls import ask_close_choice
from studio.ui.widgets.training_view import TrainingView


class TrainingPanel(Panel):
    name = "training"
    title = "Training"
    families = ()
    stateChanged = Signal(str)  # idle, checking, running, paused, stopping
    runEnded = Signal(str)  # finished, stopped, crashed, failed, refused
    checkpointWritten = Signal(str)
    stall_after_s = 5.0  # "no progress for N s" once the worker is silent this long

    def __init__(self, context, parent=None, runs_root: str | Path | None = None):
        super().__init__(context, parent)
        self.runs_root = Path(runs_root) if runs_root else runs_dir()
        self.runner = RunController(self, self.stall_after_s)
        self.session = self.runner.session
        self.watch = self.runner.watch
        self._build()
        self.feed = feed = RunFeed(self.view, self.session, self.watch, self)
        feed.status.connect(lambda text, error: (self.show_error if error else self.show_info)(text))
        feed.checkpointWritten.connect(self._checkpoint_written)
        r = self.runner
        r.phaseChanged.connect(self._phase_changed)
        r.launched.connect(self._launched)
        r.refused.connect(self._refused)
        r.eventsArrived.connect(feed.show_events)
        r.ticked.connect(feed.redraw)
        r.ended.connect(self._ended)
        r.closeReady.connect(lambda: QTimer.singleShot(0, self.window().close))
        r.killedForClose.connect(lambda: self._note(
            f"the worker did not stop within {CLOSE_TIMEOUT_MS // 1000} s; killed it"))
        self.runs.refresh()
        self._family_changed(self.form.family.currentText())
        self._phase_changed("idle")
        self._show_initial_run()

    # What tests and the benchmark read: the session's facts under their old names.
    state = property(lambda self: self.session.phase)
    handle = property(lambda self: self.runner.handle)
    family = property(lambda self: self.session.family)
    run_dir = property(lambda self: self.session.run_dir)
    last_checkpoint = property(lambda self: self.session.last_checkpoint)
    last_progress = property(lambda self: self.session.last_progress)
    diverged = property(lambda self: self.session.diverged)
    end_reason = property(lambda self: self.session.end_reason)
    events_seen = property(lambda self: self.watch.events_seen)

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        self.view = v = TrainingView(family_names(), self.runs_root)
        self.form, self.controls, self.follow_btn = v.form, v.controls, v.follow_btn
        self.progress, self.progress_label, self.curves = v.progress, v.progress_label, v.curves
        self.preview, self.runs, self.log = v.preview, v.runs, v.log
        c = self.controls
        self.start_btn, self.resume_btn, self.pause_btn = c.start_btn, c.resume_btn, c.pause_btn
        self.stop_btn, self.save_btn = c.stop_btn, c.save_btn
        self.form.familyChanged.connect(self._family_changed)
        self.form.out.textChanged.connect(self._update_resumable)
        self.follow_btn.clicked.connect(self.follow_in_explorer)
        self.start_btn.clicked.connect(self.start)
        self.resume_btn.clicked.connect(self._resume_clicked)
        self.pause_btn.clicked.connect(self.pause)
        self.stop_btn.clicked.connect(self.stop)
        self.save_btn.clicked.connect(self.runner.save_now)
        c.liveOptionSet.connect(self.set_option)
        self.runs.runSelected.connect(self.show_run)
        self.runs.explorerRequested.connect(self.context.checkpointOpened.emit)
        self.runs.stopRequested.connect(self._stop_background)
        self.runs.message.connect(lambda text, error: (self.show_error if error else self.show_info)(text))
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(v)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # Idle state (or a run's curves) is what this panel shows first.
        QTimer.singleShot(0, self.mark_first_image)

    # --- state ---------------------------------------------------------------------
    def _phase_changed(self, phase: str) -> None:
        self.form.set_running(phase != "idle")
        self.controls.set_state(phase)
        out = self.form.out.text().strip()
        self.follow_btn.setEnabled(self.session.can_follow(bool(out) and holds_run(out)))
        if phase == "stopping":
            self.feed.show_progress()  # "stopping: saving a checkpoint…" at once, no ETA
        self.stateChanged.emit(phase)

    def _family_changed(self, family: str) -> None:
        if family in families():
            spec = get_family(family)
            self.controls.set_live_options(spec.live_options)
            # What this family's loss curves mean, from its descriptor.
            self.explain.set_title(f"Explain: training a {spec.title}")
            self.explain.set_text(spec.training_notes or spec.summary)
            self.explain.set_equations(list(spec.training_equations))
        self._update_resumable()

    def _update_resumable(self, *_) -> None:
        # Checked for real on click (the folder may have changed since): a folder without a
        # run gets a one-line refusal.
        self.controls.set_resumable(bool(self.form.out.text().strip()))

    def is_training(self) -> bool:
        return self.runner.is_training()

    def _note(self, text: str) -> None:
        self.log.note(text)

    def _checkpoint_written(self, family: str, path: str) -> None:
        self.context.checkpointUpdated.emit(family, path)  # explorers showing this run reload
        self.runs.update_run(str(Path(path).parent))  # its row: the step, and "training" while it does
        self.checkpointWritten.emit(path)

    # --- actions -------------------------------------------------------------------
    def start(self) -> None:
        """Start a new run with the form's options (checked before the worker starts)."""
        try:
            values = self.form.values()
        except ValueError as exc:
            self.runner.refuse(str(exc))
            return
        if not values["out"]:
            values["out"] = self.form.new_output_folder()
        if holds_run(values["out"]):
            old = values["out"]
            values["out"] = self.form.new_output_folder()
            self._note(f"{old} holds a run already (Resume continues it); starting in {values['out']}")
        self._begin(plan_new, values)

    def _resume_clicked(self) -> None:
        if self.state == "paused":
            self.resume()
        else:
            self.resume_run()

    def resume_run(self, run_dir: str | None = None) -> None:
        """Continue a run from its newest valid checkpoint (optimisers, schedules, RNG and curves)."""
        run_dir = run_dir or self.form.out.text().strip()
        if not run_dir:
            self.runner.refuse("choose the run to resume (output folder or the run table)")
            return
        self.form.out.setText(run_dir)
        self._begin(plan_resume, run_dir, self.form.steps.value())

    def _begin(self, fn, *args) -> None:
        self.runner.watch.stall_after_s = self.stall_after_s
        if self.runner.begin(fn, *args):
            self.show_info("Checking the dataset and options…")

    def _refused(self, message: str) -> None:
        self.show_error(f"Not started: {message}")
        self._note(f"not started: {message}")
        self.runEnded.emit("refused")

    def _launched(self, plan) -> None:
        if self.form.family.currentText() != plan.options.family:
            self.form.set_values({"family": plan.options.family})
        self.form.set_values({"out": plan.options.out})
        self.feed.launched(plan, self.handle.pid)

    def pause(self) -> None:
        if self.runner.pause():
            self.pause_btn.setEnabled(False)

    def resume(self) -> None:
        if self.runner.resume():
            self.resume_btn.setEnabled(False)

    def stop(self) -> None:
        """Ask the worker to save and stop; the panel stays responsive meanwhile."""
        if self.runner.stop():
            self.show_info("Stopping: finishing the step and saving a checkpoint…")

    def save_now(self) -> None:
        self.runner.save_now()

    def set_option(self, name: str, value: float) -> None:
        self.runner.set_option(name, value)

    def follow_in_explorer(self) -> None:
        """Show this run in its explorer panel (which then follows each new checkpoint)."""
        run_dir = self.run_dir or self.form.out.text().strip()
        if run_dir:
            self.runs.open_in_explorer(run_dir)

    def _ended(self, h: WorkerHandle, message: str, is_error: bool) -> None:
        self.feed.ended(h, message, is_error)
        self._update_resumable()
        self.runs.refresh()
        if self.run_dir:
            self.runs.select(self.run_dir, quiet=True)  # keep the live curves (every step), not the log's
        self.runEnded.emit(self.end_reason)

    # --- runs ----------------------------------------------------------------------
    def show_run(self, run_dir: str) -> None:
        """Show an earlier run's curves (from log.jsonl) and make it the output folder."""
        if self.state != "idle":
            return
        removed = clean_orphans(run_dir)
        if removed:
            self._note(f"{Path(run_dir).name}: removed {len(removed)} temp file(s) left by a killed run")
        saved = saved_options(run_dir)
        if saved:  # so Resume continues it with its own settings
            self.form.set_values({k: v for k, v in saved.items() if k != "out"})
        self.form.out.setText(run_dir)
        self.curves.set_history(read_log(run_dir))
        row = self.runs.row(run_dir) or describe_run(run_dir)
        self.progress.setRange(0, row.total or 1)
        self.progress.setValue(min(row.step or 0, row.total or 0))
        self.progress.setFormat("%p%")
        self.progress_label.setText(f"{row.name}: {row.state_text()} at step {row.step_text()}, "
                                    f"{self.curves.point_count()} logged points")
        self._phase_changed("idle")

    def _show_initial_run(self) -> None:
        """``main.py --checkpoint RUN_DIR``: that run's curves, selected in the table."""
        for path in self.context.checkpoints.values():
            if Path(path).is_dir() and holds_run(path):
                self.runs.select(str(path), quiet=True)
                self.show_run(str(path))
                return

    def _stop_background(self, run_dir: str, pid: int) -> None:
        if self.handle is not None and self.handle.pid == pid and not self.handle.detached:
            self.stop()  # our own worker: the usual stop
            return
        request_stop(run_dir)
        self.show_info(f"Asked the worker (pid {pid}) to stop and save; it does within a second or so")

    def open_checkpoint(self, path: str) -> None:
        """A run folder or a checkpoint in one: show that run's curves."""
        p = Path(path)
        self.show_run(str(p if p.is_dir() else p.parent))

    # --- closing -------------------------------------------------------------------
    def ask_close(self) -> str:
        """'stop', 'background' or 'cancel' (a question box; tests replace this)."""
        return ask_close_choice(self)

    def confirm_close(self) -> bool:
        """May the window close now? While a run stops and saves it may not: it closes itself after."""
        if self.runner.close_when_done:
            return False  # already stopping; the window closes when the checkpoint is written
        if not self.is_training():
            self.shutdown()
            return True
        choice = self.ask_close()
        if choice == "cancel":
            return False
        if choice == "background":
            self._note(f"keeps training in the background (pid {self.handle.pid})")
            self.runner.detach()
            self.shutdown()
            return True
        self.runner.stop_for_close()
        self.show_info("Stopping: saving a checkpoint; the window closes when it is written…")
        return False

    def shutdown(self) -> None:
        """Stop a worker that is still attached (saving) and the option check."""
        self.runner.shutdown()
