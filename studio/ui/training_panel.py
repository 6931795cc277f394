"""The training panel: start a run in a worker process and watch it live.

The worker (studio.training.worker) trains in its own process, so the GUI
keeps its core and never blocks: a QTimer polls the worker's pipe without
blocking and checks whether the process is still there, so a crash or a kill
is shown within a second, and a worker that says nothing for a while (stopped,
swapping, blocked on I/O) is shown as stalled. Options are checked before
anything is spawned, in a superqt thread worker (the checks import torch and
open the dataset), by the same ``prepare_run`` the command line uses.
Stopping never waits on the GUI thread: the panel says "saving…" until the
worker's last checkpoint is written.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout
from superqt.utils import create_worker

from studio.core.family import families, get_family
from studio.core.paths import runs_dir
from studio.training.events import (
    CheckpointWritten,
    CommandRefused,
    Diverged,
    Failed,
    Finished,
    Metrics,
    OptionChanged,
    Paused,
    Preview,
    Progress,
    Resumed,
    Rewound,
    Started,
)
from studio.training.runs import (
    TrainingSetupError,
    clean_orphans,
    family_names,
    holds_run,
    plan_new,
    plan_resume,
    read_log,
    request_stop,
)
from studio.training.worker import WorkerHandle, describe_event
from studio.ui.panel import Panel
from studio.ui.widgets.training_controls import ask_close_choice
from studio.ui.widgets.training_plots import eta_text, progress_text
from studio.ui.widgets.training_runs import saved_options
from studio.ui.widgets.training_view import TrainingView
from studio.ui.widgets.training_watch import WorkerWatch, describe_end

REDRAW_S = 0.25
CLOSE_TIMEOUT_MS = 30_000  # a worker that has not saved by then is killed and the window closes


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
        self.handle: WorkerHandle | None = None
        self.state = "idle"
        self.family = ""
        self.run_dir: str | None = None
        self.last_checkpoint: str | None = None
        self.last_progress: Progress | None = None
        self.diverged: Diverged | None = None
        self.end_reason = ""
        self._checker = None  # the superqt worker checking the options
        self._close_when_done = False
        self._last_redraw = 0.0
        self._build()
        self.watch = WorkerWatch(self, self.stall_after_s)
        self.watch.events.connect(self._on_events)
        self.watch.exited.connect(self._ended)
        self.watch.ticked.connect(self._redraw)
        self.runs.refresh()
        self._family_changed(self.form.family.currentText())
        self._set_state("idle")

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
        self.save_btn.clicked.connect(self.save_now)
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
    def _set_state(self, state: str) -> None:
        self.state = state
        self.form.set_running(state != "idle")
        self.controls.set_state(state)
        out = self.form.out.text().strip()
        self.follow_btn.setEnabled(bool(self.run_dir and self.last_checkpoint) or
                                   (state == "idle" and bool(out) and holds_run(out)))
        self.stateChanged.emit(state)

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
        return self.handle is not None and self.handle.is_alive() and not self.handle.detached

    def _note(self, text: str) -> None:
        self.log.appendPlainText(time.strftime("%H:%M:%S ") + text)

    # --- actions -------------------------------------------------------------------
    def start(self) -> None:
        """Start a new run with the form's options (checked before the worker starts)."""
        try:
            values = self.form.values()
        except ValueError as exc:
            self._refuse(str(exc))
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
            self._refuse("choose the run to resume (output folder or the run list)")
            return
        self.form.out.setText(run_dir)
        self._begin(plan_resume, run_dir, self.form.steps.value())

    def _begin(self, fn, *args) -> None:
        if self.state != "idle" or self.is_training():
            return
        self.show_info("Checking the dataset and options…")
        self._set_state("checking")
        self._checker = create_worker(fn, *args, _start_thread=False,
                                      _connect={"returned": self._checked, "errored": self._check_failed})
        self._checker.start()

    def _checked(self, plan) -> None:
        self._checker = None
        if self.state == "checking":
            self._launch(plan)

    def _check_failed(self, exc: Exception) -> None:
        self._checker = None
        if self.state != "checking":
            return
        self._refuse(str(exc) if isinstance(exc, TrainingSetupError) else f"{type(exc).__name__}: {exc}")

    def _refuse(self, message: str) -> None:
        self.show_error(f"Not started: {message}")
        self._note(f"not started: {message}")
        self.end_reason = "refused"
        self._set_state("idle")
        self.runEnded.emit("refused")

    def _launch(self, plan) -> None:
        self.handle = WorkerHandle()
        try:
            self.handle.start(plan.options, plan=plan)
        except TrainingSetupError as exc:  # another writer took the folder meanwhile
            self.handle = None
            self._refuse(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - spawning failed: say so, stay usable
            self.handle = None
            self._refuse(f"the worker process could not start ({exc})")
            return
        o = plan.options
        self.family, self.run_dir = o.family, o.out
        self.last_checkpoint, self.last_progress, self.diverged = None, None, None
        self.end_reason = ""
        self.form.set_values({"out": o.out, "family": o.family} if self.form.family.currentText() != o.family
                             else {"out": o.out})
        self.controls.set_live_values({name: o.model.get(name, o.lr if name.startswith("lr") else None)
                                       for name in self.controls.live})
        self.progress.setRange(0, o.steps)
        self.progress.setValue(plan.start_step)
        self.progress.setFormat("%p%")
        if plan.resume:
            self.curves.set_history(read_log(o.out))
        else:
            self.curves.clear()
        what = f"resuming at step {plan.start_step}" if plan.resume else "starting"
        self.progress_label.setText(f"{what}: {plan.dataset_size} images {plan.dataset_shape} "
                                    f"from {plan.dataset_name}")
        self.show_info(f"Worker started (pid {self.handle.pid}), {what}; output {o.out}")
        self._note(f"worker pid {self.handle.pid}: {o.family} on {plan.dataset_name}, {what}, out {o.out}")
        for path, why in plan.skipped:
            self._note(f"skipped {path}: {why}")
        self._set_state("running")
        self.watch.stall_after_s = self.stall_after_s
        self.watch.watch(self.handle)

    def pause(self) -> None:
        if self.handle and self.handle.pause():
            self.pause_btn.setEnabled(False)

    def resume(self) -> None:
        if self.handle and self.handle.resume():
            self.resume_btn.setEnabled(False)

    def stop(self) -> None:
        """Ask the worker to save and stop; the panel stays responsive meanwhile."""
        if self.handle and self.handle.stop():
            self._set_state("stopping")
            self.show_info("Stopping: finishing the step and saving a checkpoint…")
            self._show_progress()

    def save_now(self) -> None:
        if self.handle:
            self.handle.save_now()

    def set_option(self, name: str, value: float) -> None:
        if self.handle:
            self.handle.set_option(name, value)

    def follow_in_explorer(self) -> None:
        """Show this run in its explorer panel (which then follows each new checkpoint)."""
        run_dir = self.run_dir or self.form.out.text().strip()
        if run_dir:
            self.runs.open_in_explorer(run_dir)

    # --- the poll loop -------------------------------------------------------------
    @property
    def events_seen(self) -> int:
        return self.watch.events_seen

    def _on_events(self, events: list) -> None:
        for ev in events:
            self._dispatch(ev)

    def _redraw(self) -> None:
        if time.perf_counter() - self._last_redraw >= REDRAW_S:
            self._last_redraw = time.perf_counter()
            self.curves.redraw()
            self._show_progress()

    def _dispatch(self, ev) -> None:
        if isinstance(ev, Progress):
            self.last_progress = ev
            self.curves.append(ev.step, ev.losses)
        elif isinstance(ev, Preview):
            self.preview.set_image(ev.image)
        elif isinstance(ev, CheckpointWritten):
            first = self.last_checkpoint is None
            self.last_checkpoint = ev.path
            self._note(f"checkpoint at step {ev.step}: {ev.path}")
            self.context.checkpointUpdated.emit(self.family, ev.path)  # explorers showing this run reload
            self.checkpointWritten.emit(ev.path)
            if first:
                self.follow_btn.setEnabled(True)
                self._note("a checkpoint is ready: Follow in explorer shows this run as it trains")
        elif isinstance(ev, (Metrics, OptionChanged, Finished)):
            self._note(describe_event(ev))
        elif isinstance(ev, Started):
            self._note(f"training on {ev.device} with {ev.threads} thread(s) from step {ev.step}")
            if ev.history.get("step"):  # a resumed run: its whole loss history
                self.curves.set_history(ev.history)
        elif isinstance(ev, Paused):
            self._set_state("paused")
            if ev.reason:
                self.show_error(f"Paused: {ev.reason}. Lower the learning rate and press Resume to go on "
                                "from there, or Stop.")
            else:
                self.show_info(f"Paused at step {ev.step}")
        elif isinstance(ev, Resumed):
            self._set_state("running")
            self.show_info(f"Resumed at step {ev.step}")
        elif isinstance(ev, Diverged):
            self.diverged = ev
            self._note(f"diverged: {ev.message}")
        elif isinstance(ev, Rewound):
            self.diverged = None
            self.curves.set_history(ev.history)
            self._set_state("running")
            self.show_info(f"Went back to step {ev.step} and trains on")
            self._note(f"went back to step {ev.step} after the divergence")
        elif isinstance(ev, CommandRefused):
            self._note(describe_event(ev))
            self.show_error(f"{ev.command}: {ev.reason}")
        elif isinstance(ev, Failed):
            self._note(f"failed at step {ev.step}: {ev.message}\n{ev.traceback}")

    def _show_progress(self) -> None:
        p = self.last_progress
        if p is None or self.state not in ("running", "paused", "stopping"):
            return
        self.progress.setMaximum(p.total_steps)
        self.progress.setValue(p.step)
        self.progress.setFormat(f"%p%  ETA {eta_text(p)}" if self.state == "running" else "%p%")
        stalled = self.watch.stalled_s if self.state in ("running", "stopping") else 0.0
        self.progress_label.setText(progress_text(p, self.state, stalled))

    def _ended(self, h: WorkerHandle) -> None:
        h.join(1)
        self.curves.redraw()
        p = self.last_progress
        self.end_reason, message, is_error = describe_end(h, p.step if p else 0, self.last_checkpoint)
        if h.finished is not None:
            self.progress.setValue(h.finished.step)
        (self.show_error if is_error else self.show_info)(message)
        if self.end_reason == "crashed":
            self._note(message)
        self.progress.setFormat("%p%")
        if p is not None:
            self.progress_label.setText(progress_text(p, self.end_reason))
        h.close()
        self._set_state("idle")
        self._update_resumable()
        self.runs.refresh()
        if self.run_dir:
            self.runs.list.blockSignals(True)  # keep the live curves (every step), not the log's
            self.runs.select(self.run_dir)
            self.runs.list.blockSignals(False)
        self.runEnded.emit(self.end_reason)
        if self._close_when_done:
            self._close_when_done = False
            QTimer.singleShot(0, self.window().close)

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
        self.progress_label.setText(f"{Path(run_dir).name}: {self.curves.point_count()} logged steps")
        self._set_state("idle")

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
        if self._close_when_done:
            return False  # already stopping; the window closes when the checkpoint is written
        if not self.is_training():
            self.shutdown()
            return True
        choice = self.ask_close()
        if choice == "cancel":
            return False
        if choice == "background":
            self._note(f"keeps training in the background (pid {self.handle.pid})")
            self.handle.detach()
            self.shutdown()
            return True
        self._close_when_done = True
        if self.state != "stopping":
            self.stop()
        self.show_info("Stopping: saving a checkpoint; the window closes when it is written…")
        QTimer.singleShot(CLOSE_TIMEOUT_MS, self._close_anyway)
        return False

    def _close_anyway(self) -> None:
        if self._close_when_done and self.handle is not None and self.handle.is_alive():
            self._note(f"the worker did not stop within {CLOSE_TIMEOUT_MS // 1000} s; killed it")
            self.handle.kill()  # the watch sees it gone; _ended closes the window

    def shutdown(self) -> None:
        """Stop a worker that is still attached (saving) and the option check."""
        self.watch.stop()
        if self.handle is not None and not self.handle.detached and self.handle.is_alive():
            self.handle.shutdown()
        if self._checker is not None:
            self._checker.quit()
            self._checker = None
