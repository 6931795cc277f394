"""The evaluation panel, driven through its real widgets offscreen, with a real worker thread."""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from conftest import REPO  # noqa: E402
from studio.ui.context import AppContext  # noqa: E402
from studio.ui.evaluation_panel import EvaluationPanel  # noqa: E402

SHIPPED = REPO / "studio" / "checkpoints"


@pytest.fixture
def panel(qtbot):
    p = EvaluationPanel(AppContext())
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.LeftButton)


def tick_only(panel, *stems: str) -> None:
    panel.checklist.set_checked([str(SHIPPED / f"{s}.safetensors") for s in stems])
    assert sorted(os.path.basename(p) for p in panel.checklist.checked()) == sorted(f"{s}.safetensors" for s in stems)


def set_n(qtbot, panel, n: int) -> None:
    panel.n_box.selectAll()
    qtbot.keyClicks(panel.n_box, str(n))
    qtbot.keyClick(panel.n_box, Qt.Key_Return)
    assert panel.n_box.value() == n


def test_panel_is_registered_lists_the_generators_and_shows_real_digits(qtbot, panel):
    from studio.ui.panels import panel_class, panel_names

    assert panel_class("evaluation") is EvaluationPanel and "evaluation" in panel_names()
    names = [os.path.basename(p) for p in panel.checklist.paths()]
    assert {"vae_mnist_2d.safetensors", "vae_mnist_16d.safetensors", "unet_ddpm_mnist.safetensors"} <= set(names)
    assert "digit_classifier.safetensors" not in names  # it generates nothing
    qtbot.waitUntil(panel.has_first_image, timeout=20_000)
    assert panel.gallery.views["real"].image().std() > 20  # real digits on screen
    assert not panel.csv_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_computes_shows_and_exports_a_small_evaluation(qtbot, panel, tmp_path, monkeypatch):
    tick_only(panel, "vae_mnist_2d")
    set_n(qtbot, panel, 200)
    with qtbot.waitSignal(panel.evaluationEnded, timeout=180_000) as ended:
        click(qtbot, panel.compute_button)
        assert panel.cancel_button.isEnabled() and not panel.compute_button.isEnabled()
    assert ended.args == ["finished"], panel.status.text()

    assert panel.table.rowCount() == 2  # the floor, then the model
    assert panel.table.cell_text(1, "model") == "vae_mnist_2d"
    model_fid, floor_fid = float(panel.table.cell_text(1, "FID")), float(panel.table.cell_text(0, "FID"))
    assert model_fid > 2 * floor_fid > 0  # a 2-D VAE is far from the real digits
    assert float(panel.table.cell_text(1, "−ELBO nats")) > 100  # the VAE's likelihood is reported
    assert "N=200 is below 10*d" in panel.warnings.toPlainText()
    names, values, floor_value = panel.bars.values()
    assert names == ["vae_mnist_2d"] and values[0] == pytest.approx(panel.report["models"]["vae_mnist_2d"]["fid"])
    assert floor_value == pytest.approx(panel.report["floor"]["fid"])
    assert set(panel.classes.series) == {"floor", "vae_mnist_2d"}
    assert sum(panel.classes.series["vae_mnist_2d"]) == pytest.approx(1.0)
    assert panel.fid_curves.curves["vae_mnist_2d"][0] == [200]
    assert panel.gallery.views["vae_mnist_2d"].image().std() > 10
    assert "Evaluated 1 model(s) at N=200" in panel.status.text()

    out_csv, out_json = tmp_path / "table.csv", tmp_path / "report.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(out_csv if "CSV" in a[1] else out_json), ""))
    click(qtbot, panel.csv_button)
    click(qtbot, panel.json_button)
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("model,FID") and lines[2].startswith("vae_mnist_2d,")
    report = json.loads(out_json.read_text())
    entry = report["models"]["vae_mnist_2d"]
    assert report["n"] == 200 and report["floor"]["fid"] == pytest.approx(floor_fid, abs=0.01)
    assert len(entry["class_fractions"]) == 10 and entry["ms_per_image_by_backend"]["torch"] > 0


def test_cancel_stops_a_long_evaluation_at_the_next_step(qtbot, panel):
    tick_only(panel, "unet_ddpm_mnist")
    panel.sampler_options.ddpm.setChecked(True)
    panel.sampler_options.ddim.setChecked(False)
    panel.time_backends.setChecked(False)
    set_n(qtbot, panel, 100)  # DDPM-1000 on 100 samples: minutes on a CPU
    click(qtbot, panel.compute_button)
    qtbot.waitUntil(lambda: panel.control.fraction > 0, timeout=60_000)  # sampling has begun
    with qtbot.waitSignal(panel.evaluationEnded, timeout=30_000) as ended:
        t0 = time.perf_counter()
        click(qtbot, panel.cancel_button)
        assert not panel.cancel_button.isEnabled()
    assert ended.args == ["cancelled"]
    assert time.perf_counter() - t0 < 15  # one denoising step, not the rest of the batch
    assert panel.compute_button.isEnabled() and not panel.csv_button.isEnabled()
    assert panel.report is None and panel.table.rowCount() == 1  # the floor only
    assert panel.progress_label.text() == "Cancelled."


def test_says_what_is_missing_and_refuses_non_generators(qtbot, panel, tiny_vae_path):
    tick_only(panel)
    click(qtbot, panel.compute_button)
    assert "Tick at least one model" in panel.status.text() and panel.state == "idle"
    tick_only(panel, "unet_ddpm_mnist")
    panel.sampler_options.ddim.setChecked(False)
    click(qtbot, panel.compute_button)
    assert "Tick DDPM or DDIM" in panel.status.text()
    panel.add_checkpoint(str(SHIPPED / "digit_classifier.safetensors"))
    assert "generates no images" in panel.status.text()
    panel.add_checkpoint(str(tiny_vae_path))
    assert str(tiny_vae_path) in panel.checklist.checked()


def test_sampler_options_carry_spacing_eta_and_clipped_noise(qtbot, panel):
    options = panel.sampler_options
    options.ddpm.setChecked(True)
    options.spacing.setCurrentText("trailing")
    options.eta.setValue(1.0)
    assert [v.get("use_clipped_model_output") for v in options.variants()] == [None, None]
    box = options.clipped_eps  # click its indicator: a form row stretches the box past its label
    qtbot.mouseClick(box, Qt.LeftButton, pos=QPoint(6, box.height() // 2))
    ddpm, ddim = options.variants()
    assert ddim == {"sampler": "ddim", "steps": 50, "spacing": "trailing", "eta": 1.0,
                    "use_clipped_model_output": True}
    assert "use_clipped_model_output" not in ddpm and "eta" not in ddpm  # DDPM has neither
