"""The evaluation panel: pick generators, compute every metric, compare them with the floor.

The evaluation (studio.evaluation.comparison) runs in a superqt generator
worker on a pool thread; each event it yields (progress, the floor, one model
done, the report) updates the widgets as it arrives, so the first model's
figures show while the next one samples. Cancel stops at the next batch, or
the next denoising step inside one. The GUI thread only draws.
"""

from __future__ import annotations

from PySide6.QtCore import QThreadPool, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from studio.core.checkpoint import CheckpointError
from studio.evaluation.comparison import (
    EvaluationControl,
    EvaluationPlan,
    Finished,
    ModelEvaluated,
    Progress,
    RealDigits,
    run_evaluation,
)
from studio.evaluation.sampling import EvaluationCancelled
from studio.evaluation.tables import write_csv, write_json
from studio.ui.panel import Panel
from studio.ui.widgets.evaluation_charts import ClassFractionChart, FidCurvePlot, MetricBars
from studio.ui.widgets.evaluation_models import CheckpointChecklist, SamplerOptions
from studio.ui.widgets.evaluation_results import ResultsTable, SampleGallery

POLL_MS = 200


class EvaluationFailed(Exception):
    """A failure inside the evaluation, carried out of the worker thread."""


def _guarded(plan: EvaluationPlan, control: EvaluationControl):
    # superqt reads a RuntimeError from a generator as "the worker was deleted" and then
    # never reports the end of the run; carry it out as an ordinary error instead.
    try:
        yield from run_evaluation(plan, control)
    except RuntimeError as exc:
        raise EvaluationFailed(f"{type(exc).__name__}: {exc}") from exc


def _real_digit_grid(count: int = 64):
    from studio.core.imaging import image_grid
    from studio.data.datasets import open_dataset
    from studio.evaluation.features import HOLDOUT

    return image_grid(open_dataset(None).images[-HOLDOUT:][:count])


class EvaluationPanel(Panel):
    name = "evaluation"
    title = "Evaluation"
    families = ()
    evaluationEnded = Signal(str)  # finished, cancelled, failed

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        self.state = "idle"  # idle, running, cancelling
        self.report: dict | None = None
        self.partial: dict = {"floor": None, "models": {}}
        self.control: EvaluationControl | None = None
        self.worker = None
        self._outcome = ""
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self._show_real_digits()

    # ---- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.checklist = CheckpointChecklist()
        self.add_button = QPushButton("Add checkpoint…")
        self.add_button.clicked.connect(self._add_dialog)
        models = QGroupBox("Models")
        ml = QVBoxLayout(models)
        ml.addWidget(self.checklist)
        ml.addWidget(self.add_button)

        self.n_box = QSpinBox()
        self.n_box.setRange(10, 50_000)
        self.n_box.setSingleStep(100)
        self.n_box.setValue(1000)
        self.n_box.setToolTip("Samples per model. FID depends on N: compare models only at equal N.")
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.time_backends = QCheckBox("time both backends")
        self.time_backends.setChecked(True)
        samples = QGroupBox("Samples")
        sl = QFormLayout(samples)
        sl.addRow("N", self.n_box)
        sl.addRow("seed", self.seed_box)
        sl.addRow(self.time_backends)

        self.sampler_options = SamplerOptions()
        diffusion = QGroupBox("Diffusion samplers")
        QVBoxLayout(diffusion).addWidget(self.sampler_options)

        self.compute_button = QPushButton("Compute")
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.csv_button = QPushButton("Export CSV…")
        self.json_button = QPushButton("Export JSON…")
        for button, kind in ((self.csv_button, "csv"), (self.json_button, "json")):
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, k=kind: self._export_dialog(k))

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        for w in (models, samples, diffusion):
            ll.addWidget(w)
        ll.addWidget(self._row(self.compute_button, self.cancel_button))
        ll.addWidget(self.progress)
        ll.addWidget(self.progress_label)
        ll.addWidget(self._row(self.csv_button, self.json_button))
        ll.addStretch(1)
        left.setMaximumWidth(340)

        self.table = ResultsTable()
        self.warnings = QPlainTextEdit()
        self.warnings.setReadOnly(True)
        self.warnings.setPlaceholderText("Warnings about sample size and conditioning appear here.")
        table_tab = QSplitter(Qt.Orientation.Vertical)
        table_tab.addWidget(self.table)
        table_tab.addWidget(self.warnings)
        table_tab.setSizes([400, 140])
        self.bars = MetricBars()
        self.classes = ClassFractionChart()
        charts = QSplitter()
        charts.addWidget(self.bars)
        charts.addWidget(self.classes)
        self.gallery = SampleGallery()
        self.fid_curves = FidCurvePlot()
        self.tabs = QTabWidget()
        self.tabs.addTab(table_tab, "Table")
        self.tabs.addTab(charts, "Charts")
        self.tabs.addTab(self.gallery, "Samples")
        self.tabs.addTab(self.fid_curves, "FID vs N")
        self.tabs.setCurrentWidget(self.gallery)  # the real digits show at once

        layout = QHBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(left)
        layout.addWidget(self.tabs, 1)

    @staticmethod
    def _row(*widgets) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in widgets:
            layout.addWidget(w)
        return row

    def _show_real_digits(self) -> None:
        def shown(grid) -> None:
            self.gallery.show_grid("real", "real held-out digits", grid)
            self.mark_first_image()

        def failed(exc) -> None:
            self.show_error(f"The real digits could not be read: {exc}")

        self._real_worker = create_worker(_real_digit_grid, _start_thread=False,
                                          _connect={"returned": shown, "errored": failed})
        self._real_worker.start()

    # ---- actions ------------------------------------------------------------------------
    def plan(self) -> EvaluationPlan:
        """The evaluation the controls describe; ValueError says what is missing."""
        paths = self.checklist.checked()
        if not paths:
            raise ValueError("Tick at least one model to evaluate.")
        variants = self.sampler_options.variants()
        if "diffusion" in self.checklist.checked_families() and not variants:
            raise ValueError("Tick DDPM or DDIM: diffusion models need a sampler.")
        return EvaluationPlan(checkpoints=paths, n=self.n_box.value(), samplers=variants or [{}],
                              seed=self.seed_box.value(), backend=self.context.backend, device=self.context.device,
                              time_backends=self.time_backends.isChecked())

    def compute(self) -> None:
        if self.state != "idle":
            return
        try:
            plan = self.plan()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.report = None
        self.partial = {"floor": None, "models": {}}
        self.gallery.clear_models()
        self._show_report(None)
        self.control = EvaluationControl()
        self._outcome = "finished"
        self.worker = create_worker(_guarded, plan, self.control, _start_thread=False,
                                    _connect={"yielded": self._on_event, "errored": self._on_error,
                                              "aborted": self._on_aborted, "finished": self._on_finished})
        self._set_state("running")
        self.show_info(f"Evaluating {len(plan.checkpoints)} checkpoint(s) at N={plan.n}…")
        self.worker.start()
        self.timer.start()

    def cancel(self) -> None:
        if self.state != "running" or self.control is None:
            return
        self.control.cancel()  # stops inside a batch, at the next denoising step
        self.worker.quit()  # stops between batches
        self._set_state("cancelling")
        self.progress_label.setText("Cancelling…")

    def add_checkpoint(self, path: str) -> None:
        try:
            self.checklist.add_checkpoint(path)
        except CheckpointError as exc:
            self.show_error(str(exc))

    def open_checkpoint(self, path: str) -> None:  # File > Open while this panel is shown
        self.add_checkpoint(path)

    def export_csv(self, path: str) -> None:
        if self.report is not None:
            self.show_info(f"Wrote {write_csv(self.report, path)}")

    def export_json(self, path: str) -> None:
        if self.report is not None:
            self.show_info(f"Wrote {write_json(self.report, path)}")

    def shutdown(self, wait_ms: int = 10_000) -> None:
        """Cancel a running evaluation and wait for its thread (closing the window, tests)."""
        if self.state != "idle" and self.control is not None:
            self.control.cancel()
            self.worker.quit()
        QThreadPool.globalInstance().waitForDone(wait_ms)

    def confirm_close(self) -> bool:
        self.shutdown(wait_ms=3000)
        return True

    # ---- dialogs ------------------------------------------------------------------------
    def _add_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a checkpoint", "", "Checkpoints (*.safetensors)")
        if path:
            self.add_checkpoint(path)

    def _export_dialog(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export the evaluation as {kind.upper()}",
                                              f"evaluation.{kind}", f"{kind.upper()} (*.{kind})")
        if path:
            (self.export_csv if kind == "csv" else self.export_json)(path)

    # ---- events from the worker ---------------------------------------------------------
    def _on_event(self, event) -> None:
        if isinstance(event, Progress):
            self.progress.setValue(int(event.fraction * 1000))
            self.progress_label.setText(event.message)
        elif isinstance(event, RealDigits):
            self.gallery.show_grid("real", "real held-out digits", event.grid)
            self.partial["floor"] = event.floor
            self._show_report(self.partial)
        elif isinstance(event, ModelEvaluated):
            if event.grid is not None:
                self.gallery.show_grid(event.label, event.label, event.grid)
            self.partial["models"][event.label] = event.entry
            self._show_report(self.partial)
        elif isinstance(event, Finished):
            self.report = event.report
            self._show_report(self.report)
            self.progress.setValue(1000)
            self.progress_label.setText("Done.")
            failed = [k for k, e in self.report["models"].items() if "error" in e]
            text = f"Evaluated {len(self.report['models'])} model(s) at N={self.report['n']} ({self.report['extractor']})."
            if failed:
                self.show_error(text + f" Failed: {', '.join(failed)} (see the table's tooltips).")
            else:
                self.show_info(text)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, EvaluationCancelled):
            self._outcome = "cancelled"
            return
        self._outcome = "failed"
        self.show_error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _on_aborted(self) -> None:
        self._outcome = "cancelled"

    def _on_finished(self) -> None:
        self.timer.stop()
        if self._outcome == "cancelled":
            self.progress_label.setText("Cancelled.")
            self.show_info("Evaluation cancelled; the models done so far stay in the table.")
        self._set_state("idle")
        self.evaluationEnded.emit(self._outcome)

    def _poll(self) -> None:
        """Progress inside a batch (the worker writes it; reading a float is safe)."""
        if self.control is not None and self.state == "running":
            self.progress.setValue(int(self.control.fraction * 1000))

    # ---- drawing ------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        idle = state == "idle"
        self.compute_button.setEnabled(idle)
        self.cancel_button.setEnabled(state == "running")
        for w in (self.checklist, self.add_button, self.n_box, self.seed_box, self.sampler_options,
                  self.time_backends):
            w.setEnabled(idle)
        self.csv_button.setEnabled(idle and self.report is not None)
        self.json_button.setEnabled(idle and self.report is not None)

    def _show_report(self, report: dict | None) -> None:
        self.table.set_report(report)
        self.bars.set_report(report)
        self.classes.set_report(report)
        self.fid_curves.set_report(report)
        lines = []
        if report:
            lines = list(report.get("warnings") or [])
            if not lines:  # a partial report: gather them from its entries
                for entry in [report.get("floor") or {}] + list(report.get("models", {}).values()):
                    lines += entry.get("warnings", [])
        self.warnings.setPlainText("\n".join(lines))
