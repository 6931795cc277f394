"""The training panel: start a run in a worker process and watch it live.

The worker (studio.training.worker) trains in its own process, so the GUI
keeps its core and never blocks: a QTimer polls the worker's pipe without
blocking every 50 ms and checks whether the process is still there, so a
crash or a kill is shown within a second. Options are checked here before
anything is spawned (in a background thread, since the first check imports
torch): a run never fails half an hour in because of an empty folder.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.training.events import CheckpointWritten, Failed, Finished, Preview, Progress, Status
from studio.training.runs import (
    TrainingSetupError,
    family_names,
    plan_new,
    plan_resume,
    read_log,
    request_stop,
    running_pid,
)
from studio.training.worker import WorkerHandle
from studio.ui.panel import Panel
from studio.ui.widgets.image_view import ImageView
from studio.core.paths import runs_dir
from studio.ui.widgets.training_form import TrainingForm
from studio.ui.widgets.training_controls import TrainingControls, ask_close_choice
from studio.ui.widgets.training_plots import LossCurves, fmt_eta
from studio.ui.widgets.training_runs import RunList, saved_options

POLL_MS = 50
REDRAW_S = 0.25


class TrainingPanel(Panel):
    name = "training"
    title = "Training"
    families = ()
    stateChanged = Signal(str)  # idle, checking, running, paused
    runEnded = Signal(str)  # finished, stopped, crashed, failed, refused
    checkpointWritten = Signal(str)

    def __init__(self, context, parent=None, runs_root: str | Path | None = None):
        super().__init__(context, parent)
        self.runs_root = Path(runs_root) if runs_root else runs_dir()
        self.handle: WorkerHandle | None = None
        self.state = "idle"
        self.family = ""
        self.run_dir: str | None = None
        self.last_checkpoint: str | None = None
        self.last_progress: Progress | None = None
        self.events_seen = 0
        self.end_reason = ""
        self._followed = False
        self._planning: Future | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_redraw = 0.0
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._tick)
        self.runs.refresh()
        self._set_state("idle")

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        self.form = TrainingForm(family_names(), self.runs_root)
        self.follow = QCheckBox("Follow in explorer")
        self.follow.setToolTip("show each new checkpoint in the matching explorer panel as it is written")
        self.controls = TrainingControls()
        c = self.controls
        self.start_btn, self.resume_run_btn = c.start_btn, c.resume_run_btn
        self.pause_btn, self.resume_btn, self.stop_btn = c.pause_btn, c.resume_btn, c.stop_btn
        self.save_btn, self.live_lr, self.lr_btn = c.save_btn, c.live_lr, c.lr_btn
        self.start_btn.clicked.connect(self.start)
        self.resume_run_btn.clicked.connect(lambda: self.resume_run())
        self.pause_btn.clicked.connect(self.pause)
        self.resume_btn.clicked.connect(self.resume)
        self.stop_btn.clicked.connect(self.stop)
        self.save_btn.clicked.connect(self.save_now)
        self.lr_btn.clicked.connect(lambda: self.set_lr(self.live_lr.value()))

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.form)
        lv.addWidget(self.follow)
        lv.addWidget(self.controls)
        lv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label = QLabel("Idle: choose a dataset and press Start.")
        # Changing text must not re-lay-out the panel four times a second.
        self.progress_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.curves = LossCurves()
        self.preview = ImageView(min_size=160)
        self.preview.set_placeholder("samples appear here during training")
        self.runs = RunList(self.runs_root)
        self.runs.runSelected.connect(self.show_run)
        self.runs.openRequested.connect(self._open_run)
        self.runs.resumeRequested.connect(self.resume_run)
        self.runs.stopRequested.connect(self._stop_background)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(1000)
        self.log.setPlaceholderText("checkpoints, state changes and errors")

        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(self.preview)
        bottom.addWidget(self.runs)
        bottom.addWidget(self.log)
        bottom.setSizes([260, 300, 300])
        right_split = QSplitter(Qt.Vertical)
        right_split.addWidget(self.curves)
        right_split.addWidget(bottom)
        right_split.setSizes([420, 260])
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.progress)
        rv.addWidget(self.progress_label)
        rv.addWidget(right_split, 1)

        split = QSplitter(Qt.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # Idle state (or a run's curves) is what this panel shows first.
        QTimer.singleShot(0, self.mark_first_image)

    # --- state ---------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        running = state in ("running", "paused")
        busy = running or state == "checking"
        self.form.set_running(busy)
        self.controls.set_state(state)
        self.runs.resume_btn.setEnabled(not busy)
        self.stateChanged.emit(state)

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
        if Path(values["out"], "last.safetensors").exists():
            old = values["out"]
            values["out"] = self.form.new_output_folder()
            self._note(f"{old} holds a run already (use Resume run to continue it); starting in {values['out']}")
        self._begin(plan_new, values)

    def resume_run(self, run_dir: str | None = None) -> None:
        """Continue a run from its last checkpoint (optimiser, schedule, RNG and curves)."""
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
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="studio-train-check")
        self._planning = self._executor.submit(fn, *args)
        self.timer.start()

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
        except Exception as exc:  # noqa: BLE001 - spawning failed: say so, stay usable
            self.handle = None
            self._refuse(f"the worker process could not start ({exc})")
            return
        o = plan.options
        self.family, self.run_dir = o.family, o.out
        self.last_checkpoint, self.last_progress, self._followed = None, None, False
        self.events_seen = 0
        self.end_reason = ""
        self.form.set_values({"out": o.out, "family": o.family} if self.form.family.currentText() != o.family
                             else {"out": o.out})
        self.live_lr.setValue(o.lr)
        self.progress.setRange(0, o.steps)
        self.progress.setValue(plan.start_step)
        if plan.resume:
            self.curves.set_history(read_log(o.out))
        else:
            self.curves.clear()
        what = f"resuming at step {plan.start_step}" if plan.resume else "starting"
        self.progress_label.setText(f"{what}: {plan.dataset_size} images {plan.dataset_shape} "
                                    f"from {plan.dataset_name}")
        self.show_info(f"Worker started (pid {self.handle.pid}), {what}; output {o.out}")
        self._note(f"worker pid {self.handle.pid}: {o.family} on {plan.dataset_name}, {what}, out {o.out}")
        self._set_state("running")

    def pause(self) -> None:
        if self.handle and self.handle.pause():
            self.pause_btn.setEnabled(False)

    def resume(self) -> None:
        if self.handle and self.handle.resume():
            self.resume_btn.setEnabled(False)

    def stop(self) -> None:
        if self.handle and self.handle.stop():
            self.stop_btn.setEnabled(False)
            self.pause_btn.setEnabled(False)
            self.show_info("Stopping: finishing the step and saving a checkpoint…")

    def save_now(self) -> None:
        if self.handle:
            self.handle.save_now()

    def set_lr(self, lr: float) -> None:
        if self.handle:
            self.handle.set_lr(lr)

    # --- the poll loop -------------------------------------------------------------
    def _tick(self) -> None:
        if self._planning is not None and self._planning.done():
            fut, self._planning = self._planning, None
            try:
                plan = fut.result()
            except TrainingSetupError as exc:
                self._refuse(str(exc))
            except Exception as exc:  # noqa: BLE001
                self._refuse(f"{type(exc).__name__}: {exc}")
            else:
                self._launch(plan)
        h = self.handle
        if h is not None and not h.detached:
            events = h.poll()
            self.events_seen += len(events)
            for ev in events:
                self._dispatch(ev)
            if h.exitcode is not None and self.state in ("running", "paused"):
                events = h.poll()  # anything said just before exiting
                for ev in events:
                    self._dispatch(ev)
                self._ended(h)
        now = time.perf_counter()
        if now - self._last_redraw >= REDRAW_S:
            self._last_redraw = now
            self.curves.redraw()
            self._show_progress()
        if self._planning is None and (h is None or h.exitcode is not None or h.detached):
            self.timer.stop()
            self.curves.redraw()

    def _dispatch(self, ev) -> None:
        if isinstance(ev, Progress):
            self.last_progress = ev
            self.curves.append(ev.step, ev.losses)
        elif isinstance(ev, Preview):
            self.preview.set_image(ev.image)
        elif isinstance(ev, CheckpointWritten):
            self.last_checkpoint = ev.path
            self._note(f"checkpoint at step {ev.step}: {ev.path}")
            self.context.checkpointUpdated.emit(self.family, ev.path)
            if self.follow.isChecked() and not self._followed:
                self._followed = True  # switch once; later ones reload quietly
                self.context.checkpointOpened.emit(self.family, ev.path)
            self.checkpointWritten.emit(ev.path)
        elif isinstance(ev, Status):
            if ev.state == "started":
                d = ev.detail
                self._note(f"training on {d.get('device')} with {d.get('threads')} thread(s) from step {d.get('step')}")
                if d.get("history", {}).get("step"):  # a resumed run: its whole loss history
                    self.curves.set_history(d["history"])
            elif ev.state == "paused":
                self._set_state("paused")
                self.show_info(f"Paused at step {ev.detail.get('step')}")
            elif ev.state == "resumed":
                self._set_state("running")
                self.show_info(f"Resumed at step {ev.detail.get('step')}")
            elif ev.state == "lr":
                self._note(f"learning rate set to {ev.detail['lr']:g} at step {ev.detail.get('step')}")
        elif isinstance(ev, Finished):
            self._note(("stopped" if ev.stopped_early else "finished") + f" at step {ev.step}: {ev.path}")
        elif isinstance(ev, Failed):
            self._note(f"failed at step {ev.step}: {ev.message}\n{ev.traceback}")

    def _show_progress(self) -> None:
        p = self.last_progress
        if p is None or self.state not in ("running", "paused"):
            return
        self.progress.setMaximum(p.total_steps)
        self.progress.setValue(p.step)
        self.progress.setFormat(f"%p%  ETA {fmt_eta(p.eta_s)}" if p.step < p.total_steps else "%p%")
        losses = "  ".join(f"{k} {v:.4g}" for k, v in p.losses.items())
        self.progress_label.setText(
            f"step {p.step}/{p.total_steps}  epoch {p.epoch:.2f}  {losses}  "
            f"{p.examples_per_s:.0f} img/s  lr {p.lr:.3g}  ETA {fmt_eta(p.eta_s)}"
            + ("  (paused)" if self.state == "paused" else ""))

    def _ended(self, h: WorkerHandle) -> None:
        h.join(1)
        self._show_progress()
        self.curves.redraw()
        if h.finished is not None:
            f = h.finished
            self.end_reason = "stopped" if f.stopped_early else "finished"
            self.progress.setValue(f.step)
            self.show_info(f"{'Stopped' if f.stopped_early else 'Finished'} at step {f.step}; "
                           f"checkpoint {f.path}")
            self.progress_label.setText(self.progress_label.text().split("  ETA")[0] + "  done")
        elif h.failed is not None:
            self.end_reason = "failed"
            self.show_error(f"Training failed at step {h.failed.step}: {h.failed.message} "
                            f"(worker {h.exit_description()}; traceback in the log)")
        else:
            self.end_reason = "crashed"
            ckpt = f"; last checkpoint {self.last_checkpoint}" if self.last_checkpoint else ""
            msg = (f"The training worker died: {h.exit_description()}. "
                   f"Last message: {h.last_message()}{ckpt}. Resume run continues from the checkpoint.")
            self.show_error(msg)
            self._note(msg)
        h.close()
        self._set_state("idle")
        self.runs.refresh()
        if self.run_dir:
            self.runs.list.blockSignals(True)  # keep the live curves (every step), not the log's
            self.runs.select(self.run_dir)
            self.runs.list.blockSignals(False)
        self.runEnded.emit(self.end_reason)

    # --- runs ----------------------------------------------------------------------
    def show_run(self, run_dir: str) -> None:
        """Show an earlier run's curves (from log.jsonl) and make it the output folder."""
        if self.state != "idle":
            return
        saved = saved_options(run_dir)
        if saved:  # so "Resume run" continues it with its own settings
            self.form.set_values({k: v for k, v in saved.items() if k != "out"})
        self.form.out.setText(run_dir)
        self.curves.set_history(read_log(run_dir))
        self.progress_label.setText(f"{Path(run_dir).name}: {self.curves.point_count()} logged steps")

    def _open_run(self, run_dir: str) -> None:
        from studio.core.checkpoint import CheckpointError, read_metadata

        try:
            family = read_metadata(run_dir)["family"]
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        self.context.checkpointOpened.emit(family, run_dir)

    def _stop_background(self, run_dir: str) -> None:
        pid = running_pid(run_dir)
        if pid is None:
            self.show_info(f"{Path(run_dir).name}: no worker is training there")
            return
        if self.handle is not None and self.handle.pid == pid and not self.handle.detached:
            self.stop()
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
        if not self.is_training():
            self.shutdown()
            return True
        choice = self.ask_close()
        if choice == "cancel":
            return False
        if choice == "background":
            self._note(f"keeps training in the background (pid {self.handle.pid})")
            self.handle.detach()
        else:
            self.show_info("Stopping and saving…")
            self.handle.shutdown()
        self.shutdown()
        return True

    def shutdown(self) -> None:
        """Stop a worker that is still attached (saving) and the helper thread."""
        self.timer.stop()
        if self.handle is not None and not self.handle.detached and self.handle.is_alive():
            self.handle.shutdown()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._planning = None
