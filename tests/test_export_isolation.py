"""An ONNX export running in the background leaves the app's torch renders exactly as they were.

torch.export turns oneDNN (and cuDNN, NNPACK) off for the whole process while it traces; run in
the app's process, it made the torch renders standing in meanwhile take other kernels, so a seeded
diffusion run during an export did not replay bit for bit (found by tests/test_diffusion_fuzz.py).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from studio.engine import export as export_module
from studio.engine.backends import BackendError
from studio.engine.runtime import ModelRuntime


@pytest.fixture
def settled_vae(tiny_vae_path, tmp_path):
    """The tiny VAE under a digest of its own (no earlier test exported it), in a folder nobody writes to."""
    from studio.core.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(tiny_vae_path)
    ckpt.step = time.time_ns() % 1_000_000_007
    path = save_checkpoint(ckpt, tmp_path / "downloads" / "vae.safetensors")
    os.utime(path, (time.time() - 600,) * 2)
    return path


def test_torch_renders_during_a_background_export_are_bit_identical(settled_vae):
    import torch

    runtime = ModelRuntime(settled_vae)
    torch_backend = runtime.backend("encode", "torch", "cpu")
    inputs = {"image": np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)}
    before = torch_backend.run(inputs)
    stand_in = runtime.backend("encode", "onnx", "cpu", wait=False)
    assert stand_in.name == "torch" and stand_in.export_pending
    renders, differing, onednn_off = 0, 0, 0
    deadline = time.monotonic() + 180
    while stand_in.export_pending and time.monotonic() < deadline:
        onednn_off += not torch._C._get_mkldnn_enabled()
        out = stand_in.run(inputs)
        differing += any(not np.array_equal(out[k], before[k]) for k in before)
        renders += 1
        time.sleep(0.01)  # renders come with gestures: leave the export its share of the machine
    assert not stand_in.export_pending, "the export did not finish"
    assert renders > 10  # the export took a while, and the renders went on meanwhile
    assert (differing, onednn_off) == (0, 0)
    onnx = runtime.backend("encode", "onnx", "cpu", wait=False)
    assert onnx.name == "onnx"
    for key, value in onnx.run(inputs).items():
        np.testing.assert_allclose(value, before[key], atol=1e-4)


def test_an_export_that_fails_in_its_process_is_one_line(settled_vae, tmp_path):
    from studio.core.checkpoint import load_checkpoint, save_checkpoint

    misfit = load_checkpoint(settled_vae)
    misfit.config = dict(misfit.config, hidden=misfit.config["hidden"] * 2)  # the weights no longer fit
    source = save_checkpoint(misfit, tmp_path / "misfit.safetensors")
    with pytest.raises(RuntimeError) as info:
        export_module.export_isolated(source, export_module.file_digest(source), "decode", tmp_path / "d.onnx")
    assert "do not fit" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match="changed since it was opened"):
        export_module.export_isolated(settled_vae, "0" * 64, "decode", tmp_path / "d.onnx")
    assert not (tmp_path / "d.onnx").exists()
    with pytest.raises(BackendError, match="no graph 'nope'"):
        ModelRuntime(settled_vae)._export("nope")


def test_a_dead_export_process_is_replaced_at_the_next_export(settled_vae, tmp_path):
    with pytest.raises(RuntimeError, match="changed since it was opened"):  # answered without importing torch
        export_module.export_isolated(settled_vae, "0" * 64, "decode", tmp_path / "d.onnx")
    process, _ = export_module._helper
    process.kill()
    process.join(10)
    with pytest.raises(RuntimeError, match="changed since it was opened"):
        export_module.export_isolated(settled_vae, "0" * 64, "decode", tmp_path / "d.onnx")
    assert export_module._helper[0] is not process and export_module._helper[0].is_alive()


def test_a_program_that_exported_exits_without_a_leaked_semaphore_warning(settled_vae, tmp_path):
    """The export process used to be killed at exit; the resource tracker then warned of a leak."""
    import subprocess
    import sys

    target = tmp_path / "d.onnx"
    script = ("from pathlib import Path; from studio.engine import export as e; "
              f"p = Path({str(settled_vae)!r}); e.export_isolated(p, e.file_digest(p), 'decode', Path({str(target)!r}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert target.exists()
    assert "leaked" not in done.stderr, done.stderr
