"""Runtime: per-device modules, CUDA provider failures, the bounded pool, one read per checkpoint,
torch standing in while ONNX exports, the typed graph contract, targets naming several checkpoints."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time

import numpy as np
import pytest

from studio.engine import backends
from studio.engine import export as export_module
from studio.engine.backends import BackendError, OnnxBackend, ProviderUnavailable, TorchBackend
from studio.engine.graphs import GraphSpec, InputSpec, spatial
from studio.engine.renderer import Renderer
from studio.engine.requests import Target
from studio.engine.runtime import ModelRuntime, RuntimePool
from studio.families.vae import ops as vae_ops

Z = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def settled_copy(src, folder, name="model.safetensors", unique=False):
    """A copy of a checkpoint in a folder nothing has written to for ten minutes.

    ``unique``: saved with its own step number, so no earlier test's export (keyed by
    the file's digest) exists for it.
    """
    from studio.core.checkpoint import load_checkpoint, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if unique:
        ckpt = load_checkpoint(src)
        ckpt.step = time.time_ns() % 1_000_000_007
        save_checkpoint(ckpt, path)
    else:
        shutil.copy(src, path)
    old = time.time() - 600
    os.utime(path, (old, old))
    return path


def exports_running() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("studio-onnx-export")]


# --- 1. one module per device ------------------------------------------------------------
def test_a_second_device_never_moves_the_module_another_backend_holds(tiny_vae_path, tmp_path):
    runtime = ModelRuntime(tiny_vae_path)
    cpu = runtime.backend("decode", "torch", "cpu")
    before = cpu.run({"z": Z})["image"]
    other = runtime.backend("decode", "torch", "meta")  # any second device: meta needs no GPU
    assert other.module is not cpu.module
    assert {p.device.type for p in other.module.parameters()} == {"meta"}
    assert {p.device.type for p in cpu.module.parameters()} == {"cpu"}
    np.testing.assert_array_equal(cpu.run({"z": Z})["image"], before)
    # The graph's own module stayed on the CPU, so exporting it still works.
    spec = runtime.graph_specs()["decode"]
    path = export_module.export_graph(spec, tmp_path / "decode.onnx", "test")
    assert OnnxBackend(path, "cpu").run({"z": Z})["image"].shape == before.shape


def test_export_leaves_the_module_it_was_given_untouched(tiny_vae_path, tmp_path):
    runtime = ModelRuntime(tiny_vae_path)
    spec = runtime.graph_specs()["decode"]
    params = {k: v.clone() for k, v in spec.module.state_dict().items()}
    export_module.export_graph(spec, tmp_path / "decode.onnx", "test")
    for k, v in spec.module.state_dict().items():
        assert v.device.type == "cpu" and (v == params[k]).all()


# --- 2. a CUDA provider that cannot start is not a corrupt file -----------------------------
@pytest.fixture
def fake_cuda_onnxruntime(monkeypatch):
    """onnxruntime-gpu on a machine whose CUDA provider fails: it lists CUDA, the driver is there."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(backends, "nvidia_driver_present", lambda: True)
    return ort


@pytest.fixture
def no_export(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the ONNX file was exported again")

    monkeypatch.setattr(export_module, "export_isolated", refuse)
    return calls


@pytest.mark.parametrize("failure", ["raises", "falls back silently"])
def test_cuda_provider_failure_names_why_and_never_re_exports(tiny_vae_path, tmp_path, monkeypatch,
                                                              fake_cuda_onnxruntime, failure):
    ort = fake_cuda_onnxruntime
    ckpt = settled_copy(tiny_vae_path, tmp_path / "ckpt")
    good = ModelRuntime(ckpt).onnx_file("decode")  # a valid, stamped export exists
    real_session = ort.InferenceSession

    def session(path, sess_options=None, providers=None):
        if "CUDAExecutionProvider" in providers and failure == "raises":
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected\nmore detail")
        return real_session(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", session)
    calls = []
    monkeypatch.setattr(export_module, "export_isolated", lambda *a, **k: calls.append(a))
    runtime = ModelRuntime(ckpt)
    with pytest.raises(ProviderUnavailable, match="CUDA provider") as err:
        runtime.backend("decode", "onnx", "cuda")
    message = str(err.value)
    assert "\n" not in message and "cannot load this file" not in message
    if failure == "raises":
        assert "no CUDA-capable device" in message
    assert not calls and not exports_running()
    # "auto" runs the same file on the CPU.
    auto = runtime.backend("decode", "onnx", "auto")
    assert auto.device == "cpu" and auto.path == good and not calls
    # A render asking for CUDA gets the same one line, and starts no export either.
    with pytest.raises(ProviderUnavailable):
        ModelRuntime(ckpt).backend("decode", "onnx", "cuda", wait=False)
    assert not calls and not exports_running()


def test_no_cuda_provider_at_all_is_said_before_any_export(tiny_vae_path, tmp_path, monkeypatch, no_export):
    monkeypatch.setattr(backends, "nvidia_driver_present", lambda: False)
    runtime = ModelRuntime(settled_copy(tiny_vae_path, tmp_path, unique=True))  # no ONNX file anywhere
    for wait in (False, True):
        with pytest.raises(ProviderUnavailable, match="no NVIDIA driver"):
            runtime.backend("decode", "onnx", "cuda", wait=wait)
    assert not no_export and not exports_running()


def test_a_file_that_cannot_load_is_still_a_backend_error(tmp_path, fake_cuda_onnxruntime):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model")
    with pytest.raises(BackendError, match="broken.onnx: ONNX Runtime cannot load") as err:
        OnnxBackend(bad, device="cuda")
    assert not isinstance(err.value, ProviderUnavailable)


# --- 5. following a training run ----------------------------------------------------------
def test_the_pool_keeps_at_most_its_capacity_least_recently_used_first(tiny_vae_path, tmp_path):
    paths = [settled_copy(tiny_vae_path, tmp_path, f"step_{i}.safetensors") for i in range(8)]
    pool = RuntimePool(capacity=6)
    first = pool.get(paths[0])
    for p in paths[1:6]:
        pool.get(p)
    assert pool.get(paths[0]) is first  # used again: now the most recent
    pool.get(paths[6])
    pool.get(paths[7])
    assert len(pool) == 6
    assert pool.get(paths[0]) is first  # kept
    assert RuntimePool().get(paths[1]) is not None
    fresh = pool.get(paths[1])  # was the least recently used: dropped, so loaded anew
    assert len(pool) == 6 and fresh.path == paths[1].resolve()


def test_the_digest_and_the_weights_come_from_one_read(tmp_path, monkeypatch):
    """A training run replacing the file between reads must not pair one file's digest with another's data."""
    import builtins

    from studio.core.checkpoint import Checkpoint, save_checkpoint

    weights = {"w": np.arange(4, dtype=np.float32)}
    path = tmp_path / "last.safetensors"
    save_checkpoint(Checkpoint("vae", {"latent_dim": 2}, weights, "d", step=1), path)
    one = path.read_bytes()
    save_checkpoint(Checkpoint("vae", {"latent_dim": 2}, {"w": weights["w"] + 1}, "d", step=2), path)
    two = path.read_bytes()
    versions = {hashlib.sha256(one).hexdigest(): 1, hashlib.sha256(two).hexdigest(): 2}
    real_open = builtins.open
    opens = []

    def rewriting_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if str(file) == str(path) and "r" in mode:
            opens.append(mode)
            # The trainer saves again (atomically) right after every open: the next read sees the other file.
            swap = one if len(opens) % 2 == 0 else two
            tmp = path.with_suffix(".tmp")
            with real_open(tmp, "wb") as f:
                f.write(swap)
            os.replace(tmp, path)
        return handle

    monkeypatch.setattr(builtins, "open", rewriting_open)
    runtime = ModelRuntime(path)
    monkeypatch.setattr(builtins, "open", real_open)
    assert len(opens) == 1
    version = versions[runtime.digest]
    assert runtime.checkpoint.step == version
    np.testing.assert_array_equal(runtime.checkpoint.weights["w"], weights["w"] + (version - 1))


def test_a_checkpoint_being_written_renders_on_torch_and_is_never_exported(tiny_vae_path, tmp_path, no_export):
    run = tmp_path / "run"
    ckpt = settled_copy(tiny_vae_path, run, "step_0000100.safetensors", unique=True)
    (run / "log.jsonl").write_text('{"step": 101}\n')  # the trainer is writing this folder right now
    pool = RuntimePool()
    target = Target(str(ckpt), "onnx", "cpu")
    out = vae_ops.decode(pool, vae_ops.VaeDecode(target, (0.0, 0.5, -0.5)))
    assert (out.backend, out.device, out.export_pending) == ("torch", "cpu", False)
    assert isinstance(out.payload, vae_ops.VaeDecoded) and out.image.shape == (28, 28)
    out = vae_ops.decode(pool, vae_ops.VaeDecode(target, (0.1, 0.5, -0.5)))
    assert out.backend == "torch" and not no_export and not exports_running()
    runtime = pool.get(ckpt)
    assert not export_module.cached_path(runtime.digest, "decode").exists()


def test_a_run_that_stopped_changing_is_exported_in_the_background(tiny_vae_path, tmp_path, monkeypatch):
    from studio.engine import runtime as runtime_module

    ckpt = settled_copy(tiny_vae_path, tmp_path / "run", "last.safetensors", unique=True)
    (tmp_path / "run" / "log.jsonl").write_text("{}\n")
    asked = threading.Event()

    def held_export(checkpoint, digest, graph, path):
        asked.set()
        raise RuntimeError("held for the test")

    monkeypatch.setattr(export_module, "export_isolated", held_export)
    runtime = ModelRuntime(ckpt)
    assert runtime.is_changing()
    assert type(runtime.backend("decode", "onnx", "cpu", wait=False)) is TorchBackend
    assert not asked.is_set()
    monkeypatch.setattr(runtime_module, "SETTLE_S", 0.0)  # the trainer has stopped writing
    monkeypatch.setattr(runtime_module, "RECHECK_S", 0.0)
    stand_in = runtime.backend("decode", "onnx", "cpu", wait=False)
    assert stand_in.name == "torch" and asked.wait(30)
    with pytest.raises(BackendError, match="cannot export the 'decode' graph to ONNX \\(held for the test\\)"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runtime.backend("decode", "onnx", "cpu", wait=False)
            time.sleep(0.01)


# --- 6. a newly opened checkpoint: torch now, ONNX once exported ------------------------------
def test_a_new_checkpoint_renders_on_torch_at_once_then_on_onnx(tiny_vae_path, tmp_path, monkeypatch):
    ckpt = settled_copy(tiny_vae_path, tmp_path / "downloads", "someone_elses.safetensors", unique=True)
    started, release, exported = threading.Event(), threading.Event(), threading.Event()
    real_export = export_module.export_isolated

    def gated_export(checkpoint, digest, graph, path):
        started.set()
        assert release.wait(60)
        out = real_export(checkpoint, digest, graph, path)
        exported.set()
        return out

    monkeypatch.setattr(export_module, "export_isolated", gated_export)
    results = []
    arrived = threading.Event()

    def deliver(res):
        results.append(res)
        arrived.set()

    renderer = Renderer(deliver)
    pool = RuntimePool()
    vae_ops.register(renderer, pool)
    target = Target(str(ckpt), "onnx", "cpu")
    try:
        renderer.submit("vae.decode", vae_ops.VaeDecode(target, (0.0, 0.5, -0.5)))
        assert arrived.wait(30)
        first = results[-1]
        assert first.error is None
        assert (first.backend, first.export_pending) == ("torch", True)
        assert started.wait(10) and not exported.is_set()  # rendered while the export was still held
        torch_image = first.image
        release.set()
        assert exported.wait(120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            arrived.clear()
            renderer.submit("vae.decode", vae_ops.VaeDecode(target, (0.0, 0.5, -0.5)))
            assert arrived.wait(30)
            if results[-1].backend == "onnx":
                break
            time.sleep(0.05)
        last = results[-1]
        assert (last.backend, last.export_pending, last.error) == ("onnx", False, None)
        assert np.abs(last.image.astype(int) - torch_image.astype(int)).max() <= 1
    finally:
        release.set()
        renderer.shutdown()


# --- 8. the graph contract: dtypes and dynamic axes ---------------------------------------
def _embedding_spec():
    import torch
    from torch import nn

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.table = nn.Embedding(1000, 4)

        def forward(self, idx, scale):
            return self.table(idx).sum(1) * scale[:, None], idx * 2

    return GraphSpec("lookup", Lookup().eval(),
                     (InputSpec("idx", (1, 5), dtype="int64", high=1000), InputSpec("scale", (1,))),
                     ("vec", "doubled"))


def test_int64_indices_go_through_export_and_both_backends_as_int64(tmp_path):
    spec = _embedding_spec()
    path = export_module.export_graph(spec, tmp_path / "lookup.onnx", "test")
    onnx_backend = OnnxBackend(path, "cpu")
    types = {i.name: i.type for i in onnx_backend.session.get_inputs()}
    assert types == {"idx": "tensor(int64)", "scale": "tensor(float)"}
    idx = np.array([[999, 0, 3, 777, 1], [5, 6, 7, 8, 9], [10, 20, 30, 40, 999]], dtype=np.int64)
    feed = {"idx": idx, "scale": np.array([1.0, 2.0, 0.5], np.float32)}
    got = onnx_backend.run(feed)
    ref = TorchBackend.from_spec(spec, "cpu").run(feed)
    assert got["doubled"].dtype == np.int64 and ref["doubled"].dtype == np.int64
    np.testing.assert_array_equal(got["doubled"], idx * 2)
    np.testing.assert_allclose(got["vec"], ref["vec"], atol=1e-6)
    # Indices given in another integer or float type are fed as the declared int64.
    loose = {"idx": idx.astype(np.int32), "scale": [1.0, 2.0, 0.5]}
    np.testing.assert_allclose(onnx_backend.run(loose)["vec"], ref["vec"], atol=1e-6)
    np.testing.assert_allclose(TorchBackend.from_spec(spec, "cpu").run(loose)["vec"], ref["vec"], atol=1e-6)


def test_dynamic_height_and_width_through_export_and_both_backends(tmp_path):
    import onnx
    import torch
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh()).eval()
    spec = GraphSpec("filter", module, (InputSpec("image", (1, 1, 8, 8), dynamic=spatial()),), ("out",))
    path = export_module.export_graph(spec, tmp_path / "filter.onnx", "test")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, "height", "width"]
    onnx_backend, torch_backend = OnnxBackend(path, "cpu"), TorchBackend.from_spec(spec, "cpu")
    rng = np.random.default_rng(0)
    for shape in ((2, 1, 12, 20), (1, 1, 5, 7), (3, 1, 8, 8)):
        feed = {"image": rng.standard_normal(shape).astype(np.float32)}
        got, ref = onnx_backend.run(feed)["out"], torch_backend.run(feed)["out"]
        assert got.shape == ref.shape == (shape[0], 3) + shape[2:]
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_a_batch_only_graph_keeps_its_other_axes_fixed(tmp_path):
    import onnx

    spec = _embedding_spec()
    path = export_module.export_graph(spec, tmp_path / "lookup.onnx", "test")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 5]


def test_input_spec_refuses_unknown_dtypes_and_axes():
    with pytest.raises(ValueError, match="float16"):
        InputSpec("x", (1, 4), dtype="float16")
    with pytest.raises(ValueError, match="axis 3"):
        InputSpec("x", (1, 4), dynamic=((0, "batch"), (3, "height")))


# --- 9. a target naming several checkpoints ------------------------------------------------
def test_a_target_names_extra_checkpoints_by_role(tiny_vae_path, vae_2d_path):
    target = Target(str(tiny_vae_path), "onnx", "cpu", extra=(("classifier", str(vae_2d_path)),))
    assert target.roles == ("main", "classifier")
    assert target.checkpoint_for() == str(tiny_vae_path)
    assert target.checkpoint_for("classifier") == str(vae_2d_path)
    pool = RuntimePool()
    assert pool.get(target.checkpoint_for("classifier")).config["latent_dim"] == 2
    assert pool.get(target.checkpoint_for("main")).config["latent_dim"] == 3
    assert {target: 1}[Target(str(tiny_vae_path), "onnx", "cpu", (("classifier", str(vae_2d_path)),))] == 1
    assert target != Target(str(tiny_vae_path), "onnx", "cpu")
    with pytest.raises(ValueError, match="no 'critic' checkpoint.*main, classifier"):
        target.checkpoint_for("critic")
    with pytest.raises(ValueError, match="each role once"):
        Target("a", extra=(("classifier", "b"), ("classifier", "c")))
