"""Engine: ONNX export parity, backend reports, the latest-wins renderer."""

import threading
import time

import numpy as np
import pytest

from studio.engine.backends import BackendError, OnnxBackend
from studio.engine.renderer import Output, Renderer
from studio.engine.runtime import ModelRuntime


@pytest.fixture(scope="module")
def runtime(tiny_vae_path):
    return ModelRuntime(tiny_vae_path)


@pytest.mark.parametrize("graph, inputs", [
    ("decode", {"z": np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)}),
    ("encode", {"image": np.random.default_rng(1).random((2, 1, 28, 28)).astype(np.float32)}),
])
def test_onnx_matches_torch(runtime, graph, inputs):
    onnx_out, onnx_runner = runtime.run(graph, inputs, backend="onnx", device="cpu")
    torch_out, torch_runner = runtime.run(graph, inputs, backend="torch", device="cpu")
    assert (onnx_runner.name, torch_runner.name) == ("onnx", "torch")
    for name in torch_out:
        diff = float(np.abs(onnx_out[name] - torch_out[name]).max())
        assert diff <= 1e-4, f"{graph}.{name}: max abs diff {diff}"


def test_export_is_cached_and_stamped(runtime):
    from studio.engine.export import onnx_digest

    path = runtime.onnx_file("decode")
    assert onnx_digest(path) == runtime.digest
    assert runtime.onnx_file("decode") == path  # no second export


def test_auto_device_falls_back_to_the_cpu_when_cuda_cannot_start(tiny_vae_path, monkeypatch):
    # onnxruntime-gpu lists its CUDA provider even where it cannot start; the runner must report
    # the CPU it fell back to, not the provider it asked for.
    import torch

    from studio.engine import backends

    if torch.cuda.is_available():
        pytest.skip("a working GPU is present: the next test covers it")
    monkeypatch.setattr(backends, "nvidia_driver_present", lambda: True)  # as if a driver were installed
    runtime = ModelRuntime(tiny_vae_path)  # fresh: no backend cached by another test
    _, runner = runtime.run("decode", {"z": np.zeros((1, 3), np.float32)}, backend="onnx", device="auto")
    assert runner.device == "cpu"
    assert runner.session.get_providers() == ["CPUExecutionProvider"]
    _, runner = runtime.run("decode", {"z": np.zeros((1, 3), np.float32)}, backend="torch", device="auto")
    assert runner.device == "cpu"


def test_auto_device_uses_a_working_gpu(tiny_vae_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no working CUDA GPU on this machine")
    runtime = ModelRuntime(tiny_vae_path)
    z = {"z": np.zeros((1, 3), np.float32)}
    assert runtime.run("decode", z, backend="torch", device="auto")[1].device == "cuda"
    assert runtime.run("decode", z, backend="onnx", device="auto")[1].device == "cuda"


def test_corrupt_onnx_file_names_the_problem(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model")
    with pytest.raises(BackendError, match="broken.onnx: ONNX Runtime cannot load"):
        OnnxBackend(bad, device="cpu")


def test_cuda_request_without_gpu_is_a_clear_error(runtime):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="CUDA"):
        runtime.backend("decode", "torch", "cuda")


class Slow:
    def __init__(self, value, delay=0.05):
        self.value, self.delay = value, delay


def test_latest_request_wins_and_stale_results_are_dropped():
    results = []
    done = threading.Event()
    r = Renderer(lambda res: (results.append(res), done.set() if res.request.value == 9 else None))

    def handler(req):
        time.sleep(req.delay)
        return Output(np.full((2, 2), req.value, np.uint8))

    r.register(Slow, handler)
    for i in range(10):
        r.submit("view", Slow(i))
    assert done.wait(5)
    r.shutdown()
    values = [res.request.value for res in results]
    assert values[-1] == 9
    assert len(values) <= 2, f"stale requests were rendered: {values}"
    assert all(res.ms >= 0 for res in results)


def test_channels_do_not_cancel_each_other():
    got = {}
    done = threading.Event()

    def deliver(res):
        got[res.channel] = res.request.value
        if len(got) == 2:
            done.set()

    r = Renderer(deliver)
    r.register(Slow, lambda req: Output(np.zeros((1, 1), np.uint8)))
    r.submit("a", Slow(1))
    r.submit("b", Slow(2))
    assert done.wait(5)
    r.shutdown()
    assert got == {"a": 1, "b": 2}


def test_handler_exception_becomes_a_message():
    results = []
    done = threading.Event()
    r = Renderer(lambda res: (results.append(res), done.set()))

    def boom(req):
        raise ValueError("the latent has the wrong size")

    r.register(Slow, boom)
    r.submit("view", Slow(0))
    assert done.wait(5)
    r.shutdown()
    assert results[0].error == "the latent has the wrong size" and results[0].image is None


def test_streaming_handler_is_cancelled_at_a_step_boundary():
    seen = []
    steps_run = []
    first = threading.Event()
    r = Renderer(lambda res: (seen.append(res.payload), first.set()))

    def stream(req):
        for k in range(100):
            steps_run.append(k)
            time.sleep(0.01)
            yield Output(None, k, final=False)

    r.register(Slow, stream)
    r.submit("diffusion", Slow(0))
    assert first.wait(5)
    r.cancel("diffusion")
    time.sleep(0.2)
    r.shutdown()
    assert len(steps_run) < 100 and max(seen) < 99


def test_a_corrupt_onnx_file_beside_a_checkpoint_is_replaced(tmp_path, tiny_vae_path):
    import shutil

    from studio.engine.export import sidecar_path

    ckpt = tmp_path / "copy.safetensors"
    shutil.copy(tiny_vae_path, ckpt)
    sidecar_path(ckpt, "decode").write_bytes(b"not onnx at all")
    runtime = ModelRuntime(ckpt)
    out, runner = runtime.run("decode", {"z": np.zeros((1, 3), np.float32)}, backend="onnx", device="cpu")
    assert out["image"].shape == (1, 1, 28, 28)
    assert runner.path != sidecar_path(ckpt, "decode")  # a fresh export in the cache was used


def test_a_graph_with_several_named_inputs_exports_and_runs(tmp_path):
    """StyleGAN-like calls (per-layer styles and noise) go through export and both backends."""
    import torch
    from torch import nn

    from studio.engine.backends import TorchBackend
    from studio.engine.export import export_graph
    from studio.engine.graphs import GraphSpec, InputSpec

    class Styled(nn.Module):
        def __init__(self):
            super().__init__()
            self.to_rgb = nn.Conv2d(4, 3, 1)

        def forward(self, style0, style1, noise0):
            x = style0[:, :, None, None] * noise0 + style1[:, :, None, None]
            return torch.tanh(self.to_rgb(x)), x.mean(dim=(1, 2, 3))

    spec = GraphSpec("synthesis", Styled().eval(),
                     (InputSpec("style0", (1, 4)), InputSpec("style1", (1, 4)),
                      InputSpec("noise0", (1, 1, 8, 8))), ("image", "energy"))
    path = export_graph(spec, tmp_path / "synthesis.onnx", digest="test")
    onnx_backend = OnnxBackend(path, device="cpu")
    assert onnx_backend.input_names == ["style0", "style1", "noise0"]
    assert onnx_backend.metadata["studio_checkpoint_sha256"] == "test"
    rng = np.random.default_rng(0)
    feed = {"noise0": rng.standard_normal((3, 1, 8, 8)).astype(np.float32),  # order must not matter
            "style1": rng.standard_normal((3, 4)).astype(np.float32),
            "style0": rng.standard_normal((3, 4)).astype(np.float32)}
    got = onnx_backend.run(feed)
    ref = TorchBackend(spec.module, spec.outputs, device="cpu",
                       input_names=tuple(i.name for i in spec.inputs)).run(feed)
    for name in ("image", "energy"):
        assert got[name].shape == ref[name].shape
        assert float(np.abs(got[name] - ref[name]).max()) <= 1e-5
    with pytest.raises(BackendError, match="missing inputs"):
        onnx_backend.run({"style0": feed["style0"]})


def test_vae_handlers_return_typed_payloads(tmp_path, tiny_vae_path):
    from PIL import Image

    from studio.engine.renderer import run_to_end
    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool
    from studio.families.vae import ops as vae_ops

    pool, target = RuntimePool(), Target(str(tiny_vae_path), "torch", "cpu")
    decoded = vae_ops.decode(pool, vae_ops.VaeDecode(target, (0.0, 1.0, -1.0)))
    assert decoded.payload == vae_ops.VaeDecoded((0.0, 1.0, -1.0)) and decoded.backend == "torch"
    grid = run_to_end(vae_ops.manifold(pool, vae_ops.VaeManifold(target, (0.0, 0.0, 0.0), (0, 2), grid=5, span=2.0)))
    assert grid.payload == vae_ops.ManifoldGrid(2.0, 5, (0, 2)) and grid.image.shape == (140, 140)
    strip = vae_ops.interpolation(pool, vae_ops.VaeInterpolate(target, (0, 0, 0), (1, 1, 1), 4, "spherical"))
    assert strip.payload == vae_ops.InterpolationStrip("spherical", 4)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "one.png")
    enc = vae_ops.encode_image(pool, vae_ops.VaeEncodeImage(target, str(tmp_path / "one.png")))
    assert isinstance(enc.payload, vae_ops.VaeEncoded)
    assert len(enc.payload.mu) == len(enc.payload.sigma) == 3 and all(s > 0 for s in enc.payload.sigma)
    assert enc.payload.source.endswith("one.png") and enc.payload.input.dtype == np.uint8
    assert enc.payload.input.shape == enc.payload.reconstruction.shape == (28, 28)
    np.savez(tmp_path / "digits.npz", images=np.random.default_rng(0).random((20, 1, 28, 28)).astype(np.float32),
             labels=np.arange(20) % 10)
    latents = vae_ops.encode_dataset(pool, vae_ops.VaeEncodeDataset(target, str(tmp_path / "digits.npz"), 12))
    assert isinstance(latents.payload, vae_ops.DatasetLatents)
    assert latents.payload.mu.shape == (12, 3) and list(latents.payload.labels) == list(range(10)) + [0, 1]


def test_the_driver_is_looked_for_once_per_process(monkeypatch):
    """Without a driver, each look runs ldconfig (~20 ms), and every ONNX session asks on the way
    to the first picture: the answer is kept."""
    import ctypes.util

    from studio.engine import backends

    looked = []
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: looked.append(name))
    backends.nvidia_driver_present.cache_clear()
    try:
        answers = {backends.nvidia_driver_present() for _ in range(5)}
        assert len(answers) == 1 and len(looked) <= 2  # "cuda" and "nvcuda", once (none with /proc's entry)
    finally:
        backends.nvidia_driver_present.cache_clear()  # not the patched answer for later tests
