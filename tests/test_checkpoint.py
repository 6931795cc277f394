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


def test_a_copied_run_folder_resolves_to_its_highest_step_whatever_the_file_times(tmp_path):
    # cp -r, unzip or a restored backup give the files new times in any order: the newest by
    # time was step 4000 of 8000 once, and resume went back 4000 steps.
    import os
    paths = {step: save_checkpoint(make(step=step), tmp_path / f"step_{step:07d}.safetensors") for step in (1, 2, 3)}
    last = save_checkpoint(make(step=3), tmp_path / "last.safetensors")
    os.utime(paths[1], (9e8, 9e8))  # the oldest step, written last by the copy
    for path, t in ((paths[2], 5e8), (paths[3], 1e8), (last, 2e8)):
        os.utime(path, (t, t))
    (tmp_path / "torn.safetensors").write_bytes(b"\x10\x00")  # passed over, not chosen
    assert read_metadata(newest_checkpoint(tmp_path))["step"] == 3
    assert load_checkpoint(tmp_path).step == 3


def test_an_onnx_file_is_named_as_such():
    from conftest import REPO

    with pytest.raises(CheckpointError, match="ONNX model"):
        load_checkpoint(REPO / "studio" / "checkpoints" / "vae_mnist_2d.decode.onnx")


def save_with_header_length(tmp_path, target: int):
    """A real checkpoint whose safetensors header is exactly ``target`` bytes (padded metadata)."""
    pad = 0
    while True:
        ckpt = make()
        ckpt.extra = {"pad": "x" * pad}
        path = save_checkpoint(ckpt, tmp_path / f"h{target}.safetensors")
        n = int.from_bytes(path.read_bytes()[:8], "little")
        if n == target:
            return path
        assert n < target, "padding overshot the target header length"
        pad += max(1, target - n - 8)


@pytest.mark.parametrize("header_length", [640, 896, 1152, 1408])
def test_header_lengths_that_start_like_a_pickle_still_load(tmp_path, header_length):
    path = save_with_header_length(tmp_path, header_length)
    assert path.read_bytes()[:2] == bytes([0x80, header_length >> 8])  # what a pickle starts with
    assert load_checkpoint(path).step == 5
    assert read_metadata(path)["family"] == "vae"


@pytest.mark.parametrize("name, problem", [
    ("header_nested", "recursion limit"),
    ("metadata_nested", "nested too deeply"),
    ("metadata_block_list", "expected a map"),
    ("metadata_is_list", "metadata is a list"),
    ("step_is_text", "'step' should be an integer, not a string 'ten'"),
    ("step_negative", "'step' is negative"),
    ("family_is_list", "'family' should be a string, not a list"),
    ("family_surrogate", "is not a model family name"),
    ("config_is_text", "'config' should be an object, not a string"),
    ("version_is_text", "format version '1' is not supported"),
])
def test_bad_metadata_is_one_line_naming_the_file(tmp_path, name, problem):
    from hostile_files import hostile_checkpoints

    data = dict(hostile_checkpoints(tmp_path / "marker"))[name + ".safetensors"]
    path = tmp_path / (name + ".safetensors")
    path.write_bytes(data)
    for read in (load_checkpoint, read_metadata):
        with pytest.raises(CheckpointError) as info:
            read(path)
        message = str(info.value)
        assert problem in message and str(path) in message and "\n" not in message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused(tmp_path, bad):
    ckpt = make()
    ckpt.weights["layer.weight"] = np.full((2, 3), bad, np.float32)
    path = save_checkpoint(ckpt, tmp_path / "diverged.safetensors")
    with pytest.raises(CheckpointError, match=r"diverged.safetensors: 6 of 8 weights are NaN or infinite"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["weights.safetensors", "weights.npz"])
def test_a_renamed_npy_is_named(tmp_path, name):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.save(f, np.zeros(4, np.float32))
    with pytest.raises(CheckpointError, match=f"{name}: refused, this is a NumPy .npy array"):
        load_checkpoint(path)


def test_read_checkpoint_file_hashes_the_bytes_it_parsed(tmp_path):
    import hashlib

    from studio.core.checkpoint import load_checkpoint_bytes, read_checkpoint_file

    path = save_checkpoint(make(), tmp_path / "c.safetensors")
    ckpt, digest = read_checkpoint_file(path)
    data = path.read_bytes()
    assert digest == hashlib.sha256(data).hexdigest()
    np.testing.assert_array_equal(ckpt.weights["layer.weight"], make().weights["layer.weight"])
    # The same parser works on bytes alone: the engine hashes and parses one buffer.
    path.unlink()
    assert load_checkpoint_bytes(data, path).step == 5


def vae_checkpoint(config_changes=None, drop=None):
    pytest.importorskip("torch")
    from studio.families.vae.model import VAE, VAEConfig

    cfg = VAEConfig(latent_dim=3, width=8, hidden=32)
    weights = {k: v.numpy() for k, v in VAE(cfg).state_dict().items() if k != drop}
    config = {**cfg.to_dict(), **(config_changes or {})}
    return Checkpoint("vae", config, weights, "random", 0)


@pytest.mark.parametrize("changes, drop, problem", [
    ({"latent_dim": 5}, None, "of the wrong shape"),
    (None, "decoder.fc.0.weight", "1 missing (e.g. 'decoder.fc.0.weight')"),
    ({"latent_dim": "three"}, None, "does not build a 'vae' model"),
])
def test_weights_that_do_not_fit_their_model_are_caught(tmp_path, changes, drop, problem):
    from studio.core.checkpoint import check_fits_model

    path = save_checkpoint(vae_checkpoint(changes, drop), tmp_path / "misfit.safetensors")
    ckpt = load_checkpoint(path)  # the file itself is sound
    with pytest.raises(CheckpointError) as info:
        check_fits_model(ckpt)
    assert "misfit.safetensors" in str(info.value) and problem in str(info.value)


def test_unknown_family_is_caught_by_the_fit_check(tmp_path):
    from studio.core.checkpoint import check_fits_model

    ckpt = vae_checkpoint()
    ckpt.family = "glow"
    path = save_checkpoint(ckpt, tmp_path / "glow.safetensors")
    with pytest.raises(CheckpointError, match="glow.safetensors: unknown model family 'glow'"):
        check_fits_model(load_checkpoint(path))


def test_a_passed_fit_check_is_remembered_for_that_file_only(tmp_path, monkeypatch):
    from studio.core.checkpoint import check_fits_model, read_checkpoint_file
    from studio.core.family import FamilySpec

    monkeypatch.setenv("GENERATIVE_STUDIO_CACHE", str(tmp_path / "cache"))
    good = save_checkpoint(vae_checkpoint(), tmp_path / "good.safetensors")
    check_fits_model(*read_checkpoint_file(good))

    def no_torch_please(self, config):
        raise RuntimeError("the model was built again")

    monkeypatch.setattr(FamilySpec, "build_model", no_torch_please)
    check_fits_model(*read_checkpoint_file(good))  # remembered: no model built
    other = save_checkpoint(vae_checkpoint({"beta": 2.0}), tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="the model was built again"):
        check_fits_model(*read_checkpoint_file(other))


def test_scalars_keep_their_shape_and_files_holding_them_as_one_element_still_fit(tmp_path):
    """A BatchNorm's batch count is 0-d: it is written 0-d, and an older file holding it as shape (1,)
    still fits the model (torch loads it as the scalar)."""
    import torch

    from studio.core.checkpoint import Checkpoint, check_fits_model, load_checkpoint, save_checkpoint
    from studio.core.family import get_family

    cfg = {"width": 8}
    model = get_family("dcgan").build_model(cfg)
    weights = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    scalars = [k for k, v in weights.items() if v.ndim == 0]
    assert scalars  # the generator has BatchNorm
    path = save_checkpoint(Checkpoint("dcgan", cfg, weights), tmp_path / "g.safetensors")
    loaded = load_checkpoint(path)
    assert all(loaded.weights[k].shape == () for k in scalars)
    check_fits_model(loaded)
    old_style = {k: (v.reshape(1) if k in scalars else v) for k, v in weights.items()}
    check_fits_model(Checkpoint("dcgan", cfg, old_style, path=tmp_path / "old"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in old_style.items()})
    with pytest.raises(CheckpointError, match="wrong shape"):
        bad = {**weights, scalars[0]: np.zeros(2, np.int64)}
        check_fits_model(Checkpoint("dcgan", cfg, bad, path=tmp_path / "bad"))


def test_every_shipped_checkpoint_fits_its_model():
    """What ``main.py --checkpoint FILE`` checks before any window opens, for each shipped file."""
    from studio.core.checkpoint import check_fits_model, load_checkpoint
    from studio.core.paths import shipped_checkpoint_dir

    files = sorted(shipped_checkpoint_dir().glob("*.safetensors"))
    assert len(files) >= 8  # every family that ships one, and the CycleGAN pair
    for path in files:
        check_fits_model(load_checkpoint(path))
