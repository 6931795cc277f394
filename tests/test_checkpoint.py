"""Checkpoints: safetensors + JSON metadata, atomic, never executing code."""

import pickle

import numpy as np
import pytest

from studio.core.checkpoint import (
    Checkpoint, CheckpointError, load_checkpoint, newest_checkpoint, read_metadata, save_checkpoint,
)


def make(step=5):
    w = {"layer.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "layer.bias": np.ones(2, np.float32)}
    return Checkpoint("vae", {"latent_dim": 2}, w, "mnist", step, {"neg_elbo_nats": 99.5},
                      {"optim/0/exp_avg": np.zeros(3, np.float32)}, {"note": "x"})


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    path = save_checkpoint(make(), tmp_path / "a.safetensors")
    back = load_checkpoint(path, family="vae", with_training_state=True)
    assert back.family == "vae" and back.step == 5 and back.dataset == "mnist"
    assert back.config == {"latent_dim": 2}
    assert back.metrics["neg_elbo_nats"] == 99.5
    np.testing.assert_array_equal(back.weights["layer.weight"], make().weights["layer.weight"])
    assert "optim/0/exp_avg" in back.training_state
    assert read_metadata(path)["format_version"] == 1
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"


def test_pickle_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Evil(), protocol=4))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_torch_save_zip_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json", "safetensors"),
    (b"\xff" * 64, "bad header"),
])
def test_corrupt_files_name_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "bad.safetensors" in str(info.value) and problem in str(info.value)


def test_truncated_tensor_data_is_reported(tmp_path):
    path = save_checkpoint(make(), tmp_path / "t.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="t.safetensors"):
        load_checkpoint(path)


def test_missing_and_wrong_family(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")
    path = save_checkpoint(make(), tmp_path / "v.safetensors")
    with pytest.raises(CheckpointError, match="'vae' checkpoint"):
        load_checkpoint(path, family="diffusion")


def test_plain_safetensors_without_metadata_is_named(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="not a Generative Studio checkpoint"):
        load_checkpoint(path)


def test_failed_write_keeps_the_old_file(tmp_path):
    path = save_checkpoint(make(step=1), tmp_path / "keep.safetensors")
    bad = make(step=2)
    bad.weights["oops"] = object()  # cannot be serialised
    with pytest.raises(Exception):
        save_checkpoint(bad, path)
    assert load_checkpoint(path).step == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_folder_resolves_to_newest(tmp_path):
    import os
    a = save_checkpoint(make(step=1), tmp_path / "step_1.safetensors")
    b = save_checkpoint(make(step=2), tmp_path / "step_2.safetensors")
    os.utime(a, (1, 1))
    assert newest_checkpoint(tmp_path) == b
    assert load_checkpoint(tmp_path).step == 2


def test_an_onnx_file_is_named_as_such():
    from conftest import REPO

    with pytest.raises(CheckpointError, match="ONNX model"):
        load_checkpoint(REPO / "studio" / "checkpoints" / "vae_mnist_2d.decode.onnx")
