"""The launcher and the headless commands, run as a user would run them."""

import os
import pickle
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO

ENV = dict(os.environ, QT_QPA_PLATFORM="offscreen")


def run(*args, timeout=180):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_the_panels():
    out = run("main.py", "--help")
    assert out.returncode == 0
    assert "panels:" in out.stdout and "vae" in out.stdout and "--screenshot" in out.stdout


def test_bad_checkpoint_exits_nonzero_without_running_it(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Evil()))
    out = run("main.py", "--checkpoint", str(evil), timeout=60)
    assert out.returncode != 0
    assert "evil.safetensors" in out.stderr and "pickle" in out.stderr
    assert "Traceback" not in out.stderr
    assert not marker.exists()


def test_missing_checkpoint_is_named(tmp_path):
    out = run("main.py", "--checkpoint", str(tmp_path / "gone.safetensors"), timeout=60)
    assert out.returncode == 2 and "gone.safetensors: no such file" in out.stderr


def test_screenshot_of_the_vae_panel(tmp_path, vae_2d_path):
    shot = tmp_path / "window.png"
    out = run("main.py", "--checkpoint", str(vae_2d_path), "--screenshot", str(shot))
    assert out.returncode == 0, out.stderr
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[0] > 400 and img.shape[1] > 600
    assert img.std() > 20  # a real window with pictures in it, not a blank frame
    assert "onnxruntime" not in out.stderr.lower() or "error" not in out.stderr.lower()


def test_headless_training_exports_a_loadable_checkpoint(tmp_path, mnist_small):
    data = tmp_path / "digits.npz"
    np.savez(data, images=(mnist_small.images[:256, 0] * 255).astype(np.uint8), labels=mnist_small.labels[:256])
    run_dir, export = tmp_path / "run", tmp_path / "vae.safetensors"
    out = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(run_dir), "--steps", "12",
              "--batch-size", "32", "--checkpoint-every", "6", "--latent-dim", "3", "--set", "width=8",
              "--set", "hidden=32", "--holdout", "32", "--export", str(export))
    assert out.returncode == 0, out.stderr
    assert (run_dir / "last.safetensors").exists() and (run_dir / "step_0000006.safetensors").exists()
    assert len((run_dir / "log.jsonl").read_text().splitlines()) >= 1
    from studio.engine.runtime import ModelRuntime

    runtime = ModelRuntime(export)
    assert runtime.checkpoint.step == 12 and runtime.config["latent_dim"] == 3
    assert runtime.checkpoint.metrics["eval_split"] == "held-out"
    image, runner = runtime.run("decode", {"z": np.zeros((1, 3), np.float32)})
    assert runner.name == "onnx" and image["image"].shape == (1, 1, 28, 28)
    assert (tmp_path / "vae.decode.onnx").exists()  # shipped beside the checkpoint, no export at run time
    resumed = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(run_dir), "--steps", "18",
                  "--batch-size", "32", "--latent-dim", "3", "--set", "width=8", "--set", "hidden=32",
                  "--holdout", "32", "--resume")
    assert resumed.returncode == 0 and "resumed at step 12" in resumed.stdout


def test_training_on_a_bad_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run("-m", "studio.train", "vae", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"))
    assert out.returncode == 2 and "holds no images" in out.stderr and "Traceback" not in out.stderr


def _digits(tmp_path, mnist_small, n=128):
    data = tmp_path / "digits.npz"
    np.savez(data, images=(mnist_small.images[:n, 0] * 255).astype(np.uint8), labels=mnist_small.labels[:n])
    return data


def test_a_finished_run_is_not_overwritten_and_resume_keeps_its_saved_options(tmp_path, mnist_small):
    from studio.core.checkpoint import read_metadata

    data, run_dir = _digits(tmp_path, mnist_small), tmp_path / "run"
    first = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(run_dir), "--steps", "6",
                "--batch-size", "16", "--lr", "0.002", "--set", "width=8", "--set", "hidden=32")
    assert first.returncode == 0, first.stderr
    stamp = (run_dir / "last.safetensors").stat().st_mtime_ns
    again = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(run_dir), "--steps", "6")
    assert again.returncode == 2 and "--resume" in again.stderr and "new --out" in again.stderr
    assert (run_dir / "last.safetensors").stat().st_mtime_ns == stamp  # untouched
    # --resume needs no family and takes the run's own options; only --steps extends it.
    resumed = run("-m", "studio.train", "--out", str(run_dir), "--resume", "--steps", "9")
    assert resumed.returncode == 0, resumed.stderr
    meta = read_metadata(run_dir / "last.safetensors")
    saved = meta["extra"]["options"]
    assert meta["step"] == 9 and saved["batch_size"] == 16 and saved["lr"] == 0.002
    assert meta["config"]["width"] == 8 and saved["data"] == str(data)
    changed = run("-m", "studio.train", "--out", str(run_dir), "--resume", "--steps", "12", "--lr", "0.5")
    assert changed.returncode == 2 and "--lr 0.5" in changed.stderr and "Traceback" not in changed.stderr


def test_init_fine_tunes_from_a_checkpoints_weights_and_options(tmp_path, mnist_small):
    from studio.core.checkpoint import load_checkpoint

    data = _digits(tmp_path, mnist_small)
    first = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(tmp_path / "a"), "--steps", "6",
                "--batch-size", "16", "--set", "width=8", "--set", "hidden=32", "--latent-dim", "3")
    assert first.returncode == 0, first.stderr
    source = tmp_path / "a" / "last.safetensors"
    # No --set: the model options come from the checkpoint; a tiny lr leaves the weights where they were.
    tuned = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(tmp_path / "b"), "--steps", "1",
                "--batch-size", "16", "--lr", "1e-12", "--init", str(source), "--export", str(tmp_path / "b.safetensors"))
    assert tuned.returncode == 0, tuned.stderr
    a, b = load_checkpoint(source), load_checkpoint(tmp_path / "b" / "last.safetensors")
    assert b.config["width"] == 8 and b.config["latent_dim"] == 3 and b.step == 1
    assert b.extra["options"]["init"] == str(source)
    # The source's steps travel with the run, its resume and its export ("trained 6 + 2 steps").
    assert load_checkpoint(tmp_path / "b.safetensors").extra["init"] == {"path": str(source), "step": 6}
    resumed = run("-m", "studio.train", "--out", str(tmp_path / "b"), "--resume", "--steps", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(tmp_path / "b" / "last.safetensors").extra["init"]["step"] == 6
    # A fine-tune of a fine-tune counts every step behind it: 6 + 2, then 2 more.
    again = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(tmp_path / "b2"), "--steps", "2",
                "--batch-size", "16", "--init", str(tmp_path / "b" / "last.safetensors"))
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(tmp_path / "b2" / "last.safetensors").extra["init"]["step"] == 8
    assert max(float(np.abs(a.weights[k] - b.weights[k]).max()) for k in a.weights) < 1e-6
    fresh = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(tmp_path / "c"), "--steps", "1",
                "--batch-size", "16", "--lr", "1e-12", "--set", "width=8", "--set", "hidden=32", "--latent-dim", "3")
    c = load_checkpoint(tmp_path / "c" / "last.safetensors")
    assert max(float(np.abs(a.weights[k] - c.weights[k]).max()) for k in a.weights) > 1e-3  # not by chance
    misfit = run("-m", "studio.train", "vae", "--data", str(data), "--out", str(tmp_path / "d"), "--steps", "1",
                 "--init", str(source), "--set", "width=16")
    assert misfit.returncode != 0 and "do not fit this model (size mismatch" in misfit.stderr
    assert len(misfit.stderr.strip().splitlines()) == 1 and "Traceback" not in misfit.stderr
    wrong = run("-m", "studio.train", "diffusion", "--out", str(tmp_path / "e"), "--init", str(source))
    assert wrong.returncode == 2 and "holds a 'vae' model, not diffusion" in wrong.stderr


def test_usage_errors_exit_2_with_one_line(tmp_path):
    cases = [
        (["vae", "--set", "colour=3"], "unknown VAE model option colour (valid: beta, channels, hidden, "
                                       "image_size, latent_dim, width)"),
        (["diffusion", "--latent-dim", "3"], "--latent-dim is a vae option"),
        (["vae", "--set", "width"], "--set expects KEY=VALUE"),
        (["--steps", "5"], "name the model family"),
        (["--resume"], "no checkpoint to resume from"),
    ]
    for args, message in cases:
        out = run("-m", "studio.train", "--out", str(tmp_path / "r"), *args, timeout=60)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("*.safetensors"))


def test_a_batchnorm_gan_resumes_from_the_command_line_and_its_export_fits(tmp_path, mnist_small):
    """The DCGAN's generator has BatchNorm, whose batch count is a 0-d tensor: saved, checked and
    resumed with its shape (it once came back as shape (1,) and no longer fitted the model, so
    resume and ``main.py --checkpoint`` refused it)."""
    data, run_dir, export = _digits(tmp_path, mnist_small), tmp_path / "run", tmp_path / "dcgan.safetensors"
    common = ("--out", str(run_dir), "--threads", "1")
    first = run("-m", "studio.train", "dcgan", "--data", str(data), "--steps", "3", "--batch-size", "16",
                "--set", "width=8", "--holdout", "16", *common)
    assert first.returncode == 0, first.stderr
    resumed = run("-m", "studio.train", "--resume", "--steps", "5", "--export", str(export), *common)
    assert resumed.returncode == 0 and "resumed at step 3" in resumed.stdout, resumed.stderr
    from studio.core.checkpoint import check_fits_model, load_checkpoint

    check_fits_model(load_checkpoint(export))  # what main.py --checkpoint checks before its window opens


def test_kill_or_ctrl_c_of_a_run_started_in_the_background_saves_where_it_got_to(tmp_path, mnist_small):
    """A script that starts training in the background gives it SIGINT ignored; ``kill`` sends SIGTERM.
    Either way the run stops at once, saves its step and says how to go on."""
    import signal
    import time

    data = _digits(tmp_path, mnist_small, n=256)
    for number, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
        run_dir = tmp_path / f"run{number}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "studio.train", "vae", "--data", str(data), "--out", str(run_dir), "--steps",
             "100000", "--batch-size", "16", "--latent-dim", "2", "--set", "width=8", "--set", "hidden=16",
             "--holdout", "32", "--threads", "1"],
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            deadline = time.time() + 120
            log = run_dir / "log.jsonl"
            while (not log.exists() or not log.read_text().strip()) and time.time() < deadline:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 130, err
        assert "saved" in err and "--resume" in err and "Traceback" not in err
        assert (run_dir / "last.safetensors").exists()
