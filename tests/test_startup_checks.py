"""``python main.py --checkpoint FILE`` refuses a bad file before any window opens: exit 2, one line."""

import os
import subprocess
import sys

import pytest

from conftest import REPO
from hostile_files import hostile_checkpoints

ENV = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")


def launch(checkpoint, tmp_path):
    # --screenshot bounds the run: a file that slipped through would end in exit 3, not hang.
    return subprocess.run(
        [sys.executable, "main.py", "--checkpoint", str(checkpoint), "--screenshot",
         str(tmp_path / "shot.png"), "--timeout", "30"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120,
    )


def assert_refused(out, path, problem):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr
    assert str(path) in lines[0] and problem in lines[0]


def test_weights_that_do_not_fit_the_model_exit_2_at_open(tmp_path):
    pytest.importorskip("torch")
    from studio.core.checkpoint import Checkpoint, save_checkpoint
    from studio.families.vae.model import VAE, VAEConfig

    cfg = VAEConfig(latent_dim=3, width=8, hidden=32)
    weights = {k: v.numpy() for k, v in VAE(cfg).state_dict().items()}
    config = dict(cfg.to_dict(), latent_dim=2)  # the weights are for 3
    path = save_checkpoint(Checkpoint("vae", config, weights, "random", 0), tmp_path / "misfit.safetensors")
    out = launch(path, tmp_path)
    assert_refused(out, path, "the weights do not fit the 'vae' model its config describes")
    assert not (tmp_path / "shot.png").exists()


@pytest.mark.parametrize("name, problem", [
    ("metadata_nested", "nested too deeply"),
    ("step_is_text", "'step' should be an integer"),
    ("family_surrogate", "is not a model family name"),
    ("nan_weights", "NaN or infinite"),
])
def test_hostile_checkpoints_exit_2_with_one_line(tmp_path, name, problem):
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(dict(hostile_checkpoints(tmp_path / "marker"))[path.name])
    assert_refused(launch(path, tmp_path), path, problem)

