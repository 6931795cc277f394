"""Evaluation of generators: family samplers, the comparison runner and ``python -m studio.evaluate``."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import time
import sys

import numpy as np
import pytest

from conftest import MNIST, REPO
from studio.core.family import generator_families, get_family
from studio.engine.runtime import ModelRuntime

SHIPPED = REPO / "studio" / "checkpoints"
UNET = SHIPPED / "unet_ddpm_mnist.safetensors"
VAE_2D = SHIPPED / "vae_mnist_2d.safetensors"
VAE_16D = SHIPPED / "vae_mnist_16d.safetensors"
ENTRY_KEYS = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "confident_fraction",
              "class_fractions", "ms_per_image", "fid_vs_n", "fid_infinity", "warnings", "likelihood", "targets"}


@pytest.fixture(scope="module")
def mnist():
    from studio.data.datasets import open_dataset

    if not MNIST.exists():
        pytest.skip("the shared MNIST digits are not present")
    return open_dataset(MNIST)


def test_generators_name_their_sampler_in_the_descriptor():
    assert {"vae", "diffusion"} <= set(generator_families())
    assert "classifier" not in generator_families()
    assert get_family("vae").likelihood and not get_family("diffusion").likelihood


@pytest.mark.parametrize("path,options", [
    (VAE_2D, {}),
    (UNET, {"sampler": "ddim", "steps": 3}),
    (UNET, {"sampler": "ddpm", "steps": 4, "spacing": "trailing"}),
])
def test_family_samplers_return_seeded_images_in_the_unit_range(path, options):
    runtime = ModelRuntime(path)
    sample = get_family(runtime.family).load("sampler")
    calls = []
    images, ms = sample(runtime, 5, seed=3, batch_size=2, progress=lambda d, t: calls.append((d, t)), **options)
    assert images.shape[0] == 5 and images.shape[1:] == (1, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.01
    assert ms > 0 and calls and calls[-1][0] == calls[-1][1]  # progress reaches its total
    again, _ = sample(runtime, 5, seed=3, batch_size=2, **options)
    other, _ = sample(runtime, 5, seed=4, batch_size=2, **options)
    np.testing.assert_allclose(images, again, atol=1e-6)
    assert np.abs(images - other).mean() > 0.01


def test_a_raising_progress_callback_stops_diffusion_sampling_at_once():
    runtime = ModelRuntime(UNET)
    sample = get_family("diffusion").load("sampler")
    steps_seen = []

    def stop_after_three(done, total):
        steps_seen.append(done)
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample(runtime, 2, sampler="ddpm", steps=1000, progress=stop_after_three)
    assert steps_seen == [1, 2, 3]


def test_vae_likelihood_is_the_checkpoints_held_out_elbo(mnist):
    runtime = ModelRuntime(VAE_16D)
    figures = get_family("vae").load("likelihood")(runtime, mnist.images[-1000:], seed=0)
    stored = runtime.checkpoint.metrics["neg_elbo_nats"]  # measured by the trainer on the same digits
    assert figures["nats"] == pytest.approx(stored, abs=1.0)
    assert figures["nats"] == pytest.approx(figures["recon_nats"] + figures["kl_nats"])
    assert figures["bits_per_dim"] == pytest.approx(figures["nats"] / (784 * np.log(2)))
    with pytest.raises(ValueError, match="the VAE takes"):
        get_family("vae").load("likelihood")(runtime, np.zeros((3, 1, 32, 32), np.float32))


def test_variant_labels_name_what_differs_from_the_defaults():
    from studio.evaluation.sampling import model_label, variant_label

    assert model_label(UNET, {"sampler": "ddim", "steps": 50, "spacing": "leading", "eta": 0.0}) \
        == "unet_ddpm_mnist/ddim50"
    assert variant_label({"sampler": "ddim", "steps": 50, "spacing": "trailing", "eta": 0.5,
                          "set_alpha_to_one": False}) == "ddim50-trailing-eta0.5-no_set_alpha_to_one"
    assert variant_label({"sampler": "ddim", "steps": 50, "spacing": "trailing", "eta": 1.0,
                          "use_clipped_model_output": True}) == "ddim50-trailing-eta1-clipped_eps"
    assert model_label(VAE_2D, {}) == "vae_mnist_2d"


def test_eta_and_clipped_eps_pair_with_the_samplers():
    from studio.evaluate import build_parser, sampler_options

    def options(*argv):
        return sampler_options(build_parser().parse_args(["--checkpoint", "x", *argv]))

    study = options("--sampler", "ddim", "ddim", "ddim", "--eta", "0", "1", "1", "--clipped-eps", "off", "off", "on")
    assert [(o["eta"], o.get("use_clipped_model_output", False)) for o in study] == \
        [(0.0, False), (1.0, False), (1.0, True)]
    every = options("--sampler", "ddim", "ddpm", "--eta", "0.5", "--clipped-eps")
    assert every[0]["eta"] == 0.5 and every[0]["use_clipped_model_output"] is True
    assert "eta" not in every[1] and "use_clipped_model_output" not in every[1]  # DDPM has neither
    assert "use_clipped_model_output" not in options("--sampler", "ddim")[0]
    with pytest.raises(ValueError, match="--eta gives 2 values for 3 samplers"):
        options("--sampler", "ddim", "ddim", "ddim", "--eta", "0", "1")
    with pytest.raises(ValueError, match="--eta must be between 0 and 1"):
        options("--eta", "1.5")


def test_comparison_cancels_at_the_next_denoising_step(mnist):
    from studio.evaluation.comparison import EvaluationControl, EvaluationPlan, RealDigits, run_evaluation
    from studio.evaluation.sampling import EvaluationCancelled

    class CancelAfter(EvaluationControl):
        def __init__(self, checks):
            super().__init__()
            self.left = checks

        def check(self):
            self.left -= 1
            if self.left == 0:
                self.cancel()
            super().check()

    control = CancelAfter(checks=5)
    plan = EvaluationPlan([str(UNET)], n=4, samplers=[{"sampler": "ddpm", "steps": 1000}], kid_subsets=2,
                          time_backends=False)
    events = []
    with pytest.raises(EvaluationCancelled):
        for event in run_evaluation(plan, control):
            events.append(event)
    assert control.left == 0  # stopped at the check that saw the cancel, not 1,000 steps later
    assert any(isinstance(e, RealDigits) for e in events)


# ---- the command line -----------------------------------------------------------------------

def run_cli(*args, tmp_path, timeout=600):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    env["GENERATIVE_STUDIO_CACHE"] = str(tmp_path.parent / "cli-cache")  # the real digits' features, once
    return subprocess.run([sys.executable, "-m", "studio.evaluate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_writes_the_report_for_every_model_and_sampler(tmp_path, mnist):
    out_json, out_csv = tmp_path / "eval.json", tmp_path / "eval.csv"
    out = run_cli("--checkpoint", str(VAE_2D), str(UNET), "--n", "120", "--sampler", "ddim", "ddim",
                  "--steps", "4", "--spacing", "leading", "trailing", "--kid-subsets", "5",
                  "--json", str(out_json), "--csv", str(out_csv), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out_json.read_text())
    assert report["extractor"].startswith("studio digit classifier") and report["n"] == 120
    assert {"fid", "kid"} <= report["floor"].keys() and report["floor"]["n"] == 120
    assert list(report["models"]) == ["vae_mnist_2d", "unet_ddpm_mnist/ddim4", "unet_ddpm_mnist/ddim4-trailing"]
    for label, entry in report["models"].items():
        assert ENTRY_KEYS <= entry.keys(), label
        assert len(entry["class_fractions"]) == 10 and sum(entry["class_fractions"]) == pytest.approx(1.0)
        assert entry["ms_per_image_by_backend"]["onnx"] > 0 and entry["ms_per_image_by_backend"]["torch"] > 0
        assert entry["fid"] > report["floor"]["fid"]
        assert any("N=120 is below 10*d" in w for w in entry["warnings"])
    vae, ddim4 = report["models"]["vae_mnist_2d"], report["models"]["unet_ddpm_mnist/ddim4"]
    assert vae["likelihood"]["nats"] > 100 and vae["likelihood"]["bits_per_dim"] > 0
    assert ddim4["likelihood"] is None and ddim4["sampler"]["steps"] == 4
    assert ddim4["fid"] != report["models"]["unet_ddpm_mnist/ddim4-trailing"]["fid"]  # the spacing matters
    assert report["command"].startswith("python -m studio.evaluate --checkpoint")
    assert "vae_mnist_2d" in out.stdout and "FID" in out.stdout and "warning: " in out.stdout
    assert out_csv.read_text().splitlines()[0].startswith("model,FID,FID∞,KID,IS")


def test_cli_fid_vs_n_reaches_the_sizes_it_has(tmp_path, mnist):
    out_json = tmp_path / "eval.json"
    out = run_cli("--checkpoint", str(VAE_16D), "--n", "1000", "--kid-subsets", "3", "--no-backend-timing",
                  "--json", str(out_json), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    entry = json.loads(out_json.read_text())["models"]["vae_mnist_16d"]
    assert entry["fid_vs_n"]["n"] == [500, 1000] and entry["fid_vs_n"]["fid"][1] == pytest.approx(entry["fid"])
    assert entry["fid_infinity"] is not None and "ms_per_image_by_backend" not in entry
    assert entry["targets"]["fid_at_floor_n"] == pytest.approx(entry["fid"])


@pytest.mark.parametrize("case,expected", [
    ("missing", "gone.safetensors: no such file"),
    ("pickle", "pickle"),
    ("onnx", "an ONNX model"),
    ("classifier", "generate no images"),
    ("steps", "--steps gives 3 values for 2 samplers"),
])
def test_cli_bad_input_is_one_line_and_exit_2(case, expected, tmp_path):
    args = {"missing": [str(tmp_path / "gone.safetensors")],
            "onnx": [str(SHIPPED / "unet_ddpm_mnist.eps.onnx")],
            "classifier": [str(SHIPPED / "digit_classifier.safetensors")],
            "steps": [str(UNET), "--sampler", "ddpm", "ddim", "--steps", "1", "2", "3"]}
    if case == "pickle":
        bad = tmp_path / "model.safetensors"
        bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
        args["pickle"] = [str(bad)]
    out = run_cli("--checkpoint", *args[case], tmp_path=tmp_path, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], out.stderr
    assert "Traceback" not in out.stderr


# ---- classifier labels for unlabelled digits ------------------------------------------------

def test_predict_labels_reads_digits(mnist):
    from studio.evaluation.labels import predict_labels, readable_as_digits

    labels = predict_labels(mnist.images[-300:])
    assert labels.dtype == np.int64 and (labels == mnist.labels[-300:]).mean() > 0.97
    from studio.evaluation.features import load_extractor

    confidence = load_extractor()(mnist.images[-300:]).probs.max(axis=1)
    threshold = float(np.sort(confidence)[20])  # 20 digits read with less confidence than this
    unsure = predict_labels(mnist.images[-300:], min_confidence=threshold)
    assert (unsure == -1).sum() == 20 and (unsure[unsure >= 0] == labels[unsure >= 0]).all()
    assert readable_as_digits((1, 28, 28)) and readable_as_digits((1, 32, 32))
    assert not readable_as_digits((3, 32, 32)) and not readable_as_digits((1, 64, 64))


def test_vae_scatter_colours_unlabelled_digits_by_the_classifier(tmp_path, mnist):
    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool
    from studio.families.vae import ops

    unlabelled = tmp_path / "digits.npz"
    np.savez(unlabelled, images=(mnist.images[-200:, 0] * 255).astype(np.uint8))  # no labels array
    out = ops.encode_dataset(RuntimePool(), ops.VaeEncodeDataset(Target(str(VAE_2D)), str(unlabelled), limit=150))
    assert out.payload.mu.shape == (150, 2) and out.payload.name == f"digits.npz ({ops.CLASSIFIER_LABELS})"
    assert (out.payload.labels == mnist.labels[-200:-50]).mean() > 0.97
    labelled = tmp_path / "labelled.npz"
    np.savez(labelled, images=(mnist.images[-20:, 0] * 255).astype(np.uint8), labels=np.full(20, 3))
    out = ops.encode_dataset(RuntimePool(), ops.VaeEncodeDataset(Target(str(VAE_2D)), str(labelled)))
    assert out.payload.name == "labelled.npz" and (out.payload.labels == 3).all()  # its own labels win


def test_tables_agree_and_show_failed_models():
    from studio.evaluation.tables import HEADINGS, markdown_table, plain_table, raw_rows

    floor = {"fid": 17.5, "kid": 90.0, "is": 9.4, "precision": 0.86, "recall": 0.77, "confident_fraction": 0.99,
             "class_fractions": [0.1] * 10}
    model = dict(floor, fid=254.4, class_fractions=[0.05] + [0.95 / 9] * 9, ms_per_image=0.08,
                 likelihood={"nats": 103.9, "bits_per_dim": 0.191})
    report = {"floor": floor, "models": {"vae_mnist_16d": model, "broken/ddim50": {"error": "no such file"}}}
    rows = raw_rows(report)
    assert [r[0] for r in rows] == ["real held-out digits (floor)", "vae_mnist_16d", "broken/ddim50"]
    assert rows[1][HEADINGS.index("min class")] == 0.05 and rows[2][1:] == [None] * (len(HEADINGS) - 1)
    md = markdown_table(report).splitlines()
    assert md[0].startswith("| model | FID |") and "ms/image onnx" not in md[0]  # empty columns left out
    assert md[3].startswith("| vae_mnist_16d | 254.40 |") and "103.9" in md[3] and "5.0%" in md[3]
    assert "| broken/ddim50 | failed |" in md[4]
    assert plain_table(report).splitlines()[1].startswith("real held-out digits (floor)  17.50")


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT handled as in a terminal. A test suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_keeps_the_models_it_finished_when_interrupted(tmp_path, mnist):
    import signal

    out_json = tmp_path / "eval.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1",
               GENERATIVE_STUDIO_CACHE=str(tmp_path.parent / "cli-cache"))
    proc = subprocess.Popen([sys.executable, "-m", "studio.evaluate", "--checkpoint", str(VAE_2D), str(UNET),
                             "--n", "60", "--sampler", "ddpm", "--kid-subsets", "3", "--no-backend-timing",
                             "--json", str(out_json)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        deadline = time.time() + 240
        while not out_json.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert out_json.exists(), proc.stderr.read() if proc.poll() is not None else "no JSON in time"
        proc.send_signal(signal.SIGINT)  # DDPM-1000 on 60 samples is still running
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "cancelled" in err and "Traceback" not in err
    kept = json.loads(out_json.read_text())
    assert kept["partial"] is True and list(kept["models"]) == ["vae_mnist_2d"]
    assert kept["models"]["vae_mnist_2d"]["fid"] > kept["floor"]["fid"] > 0


def test_milliseconds_read_without_exponents():
    from studio.evaluation.tables import formatted

    assert [formatted(v, "ms") for v in (0.0681, 1.5, 449.2, 4960.4, None)] == ["0.0681", "1.5", "449", "4,960", "—"]


def test_a_dcgan_is_evaluated_through_its_descriptor_like_any_generator():
    from studio.evaluation.sampling import sample_images

    runtime = ModelRuntime(SHIPPED / "dcgan_mnist.safetensors")
    images, ms = sample_images(runtime, 12, seed=3, options={})
    assert images.shape == (12, 1, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and ms > 0
    np.testing.assert_array_equal(images, sample_images(runtime, 12, seed=3, options={})[0])  # seeded
    assert np.abs(images - sample_images(runtime, 12, seed=4, options={})[0]).mean() > 0.05
    assert "dcgan" in generator_families()


def test_threads_option_sets_the_budget_of_torch_and_every_onnx_session(monkeypatch):
    """``--threads`` lets a headless evaluation use every core (the app leaves the GUI one)."""
    from studio import evaluate
    from studio.core import threads
    from studio.engine.backends import OnnxBackend

    assert evaluate.build_parser().parse_args(["--checkpoint", "x", "--threads", "3"]).threads == 3
    monkeypatch.setattr(threads, "cpu_count", lambda: 2)
    try:
        assert threads.compute_threads() == 1
        threads.set_default_threads(3)
        assert threads.compute_threads() == 3 and threads.compute_threads(2) == 2
        session = OnnxBackend(SHIPPED / "vae_mnist_2d.decode.onnx", "cpu").session
        assert session.get_session_options().intra_op_num_threads == 3
    finally:
        threads.set_default_threads(None)
    assert threads.compute_threads() == 1
