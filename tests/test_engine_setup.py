"""Process-wide settings are made once, never per call from a background thread; the CUDA paths'
CPU-side behaviour (graph capture fallback, the benchmark on a machine without a GPU)."""

from __future__ import annotations

import sys
import threading
import warnings

import numpy as np
import pytest

from studio.engine.setup import configure_process


def watch_while(work, *probes):
    """Run ``work`` on a thread; meanwhile sample every probe on this one. Returns the values seen."""
    seen = [set() for _ in probes]
    errors = []

    def run():
        try:
            work()
        except BaseException as exc:  # re-raised below, on the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive():
        for values, probe in zip(seen, probes):
            values.add(probe())
    thread.join()
    if errors:
        raise errors[0]
    return seen


def test_configure_process_is_idempotent():
    import torch  # noqa: F401  (importing torch adds filters of its own)

    configure_process()
    filters = len(warnings.filters)
    configure_process()
    configure_process(with_torch=True)
    assert len(warnings.filters) == filters


def test_an_export_on_a_background_thread_leaves_stdout_and_warnings_alone(tmp_path, monkeypatch):
    import torch
    from torch import nn

    from studio.engine.export import export_graph
    from studio.engine.graphs import GraphSpec, InputSpec

    configure_process(with_torch=True)
    spec = GraphSpec("lin", nn.Linear(3, 2).eval(), (InputSpec("x", (1, 3)),), ("y",))
    # catch_warnings() swaps the process's filter list for every thread; the exporter does it
    # internally (torch's business), but no studio code may.
    callers = []
    real_catch = warnings.catch_warnings

    def spying_catch(*args, **kwargs):
        callers.append(sys._getframe(1).f_globals.get("__name__", ""))
        return real_catch(*args, **kwargs)

    monkeypatch.setattr(warnings, "catch_warnings", spying_catch)
    stdout = sys.stdout
    (seen_stdout,) = watch_while(lambda: export_graph(spec, tmp_path / "lin.onnx", "test"), lambda: id(sys.stdout))
    assert seen_stdout == {id(stdout)}  # never redirected, not even for a moment
    assert not [name for name in callers if name.startswith("studio")]
    assert (tmp_path / "lin.onnx").exists()
    assert spec.module.weight.device.type == "cpu"


def test_loading_an_image_never_changes_pillows_limit(tmp_path, monkeypatch):
    from PIL import Image

    from studio.data.images import load_image

    path = tmp_path / "photo.png"
    noise = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 123_456_789)
    (limits,) = watch_while(lambda: [load_image(path, size=(28, 28)) for _ in range(3)],
                            lambda: Image.MAX_IMAGE_PIXELS)
    assert limits == {123_456_789}


def test_backends_never_touch_process_settings_per_call(monkeypatch, tiny_vae_path):
    import onnxruntime as ort
    import torch

    from studio.engine.runtime import ModelRuntime

    configure_process(with_torch=True)
    calls = []
    monkeypatch.setattr(ort, "set_default_logger_severity", lambda level: calls.append(("ort", level)))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("torch", n)))
    monkeypatch.setattr(torch, "set_num_interop_threads", lambda n: calls.append(("interop", n)))
    runtime = ModelRuntime(tiny_vae_path)
    z = np.zeros((1, 3), np.float32)
    for device in ("cpu", "auto"):
        runtime.run("decode", {"z": z}, "torch", device)
        runtime.run("decode", {"z": z}, "onnx", device)
    assert calls == []


# --- CUDA paths, as far as a machine without a GPU can run them -----------------------------
def test_cuda_graph_capture_failure_falls_back_to_eager_once():
    import torch
    from torch import nn

    from studio.engine.backends import CudaGraphs

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 4), nn.Tanh()).eval()
    graphs = CudaGraphs(module)
    x = torch.randn(2, 4)
    with torch.inference_mode():
        want = module(x)
        got = graphs([x])  # on the CPU, capture cannot work: eager instead
        again = graphs([x])
        other = graphs([torch.randn(3, 4)])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(again, want)
    assert other.shape == (3, 4)
    assert len(graphs.failures) == 2  # one attempt per input signature, then eager for good


def test_only_the_eps_graph_asks_for_cuda_graphs_and_only_cuda_uses_them(tmp_path, tiny_vae_path):
    from studio.engine.runtime import ModelRuntime

    from test_diffusion_engine import make_tiny_unet

    unet = ModelRuntime(make_tiny_unet(tmp_path / "unet.safetensors"))
    assert unet.graph_specs()["eps"].cuda_graph
    assert not unet.backend("eps", "torch", "cpu").uses_cuda_graph  # the CPU runs eagerly
    vae = ModelRuntime(tiny_vae_path)
    assert not any(spec.cuda_graph for spec in vae.graph_specs().values())


def test_the_cuda_benchmark_on_a_machine_without_a_gpu_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    import torch

    from studio.bench.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out_json = tmp_path / "out.json"
    assert main(["--device", "cuda", "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA benchmark:")
    assert not out_json.exists()


def test_the_cuda_benchmark_area_skips_without_a_gpu(monkeypatch):
    import torch

    from studio.bench import cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert set(cuda.bench(quick=True)) == {"skipped"}


def test_the_bench_command_line_needs_no_json_file(monkeypatch, capsys):
    from studio.bench import __main__ as bench_main

    monkeypatch.setattr("studio.bench.models.cpu_peak_gflops", lambda quick: 1.0)
    monkeypatch.setattr("studio.bench.models.bench", lambda quick: {"figure": 1})
    assert bench_main.main(["--quick", "--only", "models"]) == 0
    out = capsys.readouterr().out
    assert 'models (' in out and '"figure": 1' in out and "wrote" not in out
    with pytest.raises(SystemExit):
        bench_main.main(["--only", "nonsense"])
