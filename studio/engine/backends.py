"""Inference backends: torch (CPU or CUDA) and ONNX Runtime (CUDA or CPU provider).

Both take and return dicts of named numpy arrays, so models with many inputs
(per-layer styles, per-layer noise) need nothing special; each input is fed in
the dtype its graph declares (float32 or int64). Each backend reports the
device that really ran: ONNX Runtime's by what the session holds after
creation, never by the list of providers the wheel advertises.
"""

from __future__ import annotations

import ctypes.util
import functools
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from studio.core.threads import compute_threads

log = logging.getLogger(__name__)

BACKENDS = ("onnx", "torch")
DEVICES = ("auto", "cpu", "cuda")

# ONNX Runtime's input type names -> the numpy dtype fed to them.
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(double)": np.float64, "tensor(bool)": np.bool_}


class BackendError(Exception):
    """A backend cannot run this model; the message says why."""


class ProviderUnavailable(BackendError):
    """The file is fine, but ONNX Runtime's CUDA provider could not start: never a reason to re-export."""


class Backend(Protocol):
    name: str
    device: str
    export_pending: bool

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def torch_device(device: str) -> str:
    """``auto`` -> the GPU if torch sees one, else the CPU; a CUDA device torch lacks is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError("torch sees no CUDA GPU on this machine")
    return device


class TorchBackend:
    """One module on one device. The caller hands each device its own module object:
    ``.to(device)`` moves a module in place."""

    name = "torch"
    export_pending = False

    def __init__(self, module, output_names: tuple[str, ...], device: str = "auto",
                 input_names: tuple[str, ...] | None = None, input_dtypes: tuple[str, ...] | None = None,
                 cuda_graph: bool = False):
        import torch

        from studio.engine.setup import configure_torch

        configure_torch()  # once per process: all cores but one, the GUI keeps a core
        self.device = torch_device(device)
        self._torch = torch
        self.module = module.to(self.device).eval()
        self.output_names = output_names
        self.input_names = list(input_names) if input_names else None
        self._dtypes = [np.dtype(d) for d in input_dtypes] if input_dtypes else None
        self._graphs = CudaGraphs(self.module) if cuda_graph and self.device.startswith("cuda") else None

    @classmethod
    def from_spec(cls, spec, device: str = "auto", module=None, cuda_graph: bool | None = None):
        """A backend for a GraphSpec; ``module`` (default: the spec's own) is the object moved to ``device``."""
        return cls(spec.module if module is None else module, spec.outputs, device,
                   tuple(i.name for i in spec.inputs), tuple(i.dtype for i in spec.inputs),
                   spec.cuda_graph if cuda_graph is None else cuda_graph)

    @property
    def uses_cuda_graph(self) -> bool:
        return self._graphs is not None

    @property
    def cuda_graph_failures(self) -> dict:
        """Input signatures whose capture failed (they run eagerly), with why."""
        return dict(self._graphs.failures) if self._graphs is not None else {}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        if self.input_names is not None:  # positional call: order by name, never by dict order
            missing = set(self.input_names) - set(inputs)
            if missing:
                raise BackendError(f"missing inputs {sorted(missing)}")
            inputs = {k: inputs[k] for k in self.input_names}
        values = list(inputs.values())
        if self._dtypes is not None:
            values = [np.asarray(v, dtype=d) for v, d in zip(values, self._dtypes)]
        with torch.inference_mode():
            args = [torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for v in values]
            out = self._graphs(args) if self._graphs is not None else self.module(*args)
            if not isinstance(out, (tuple, list)):
                out = (out,)
            return {n: _to_numpy(t) for n, t in zip(self.output_names, out)}


def _to_numpy(t) -> np.ndarray:
    # Floats come back as float32 whatever the module computed in; indices keep their dtype.
    return (t.float() if t.is_floating_point() else t).cpu().numpy()


class CudaGraphs:
    """Calls of one module replayed from CUDA graphs, one captured per input signature.

    The first call of a shape captures the module into a graph on static
    input buffers; every call of that shape (the first included) copies its
    inputs in and replays, so a sampler's steps always run the same kernels and
    a seed replays bit for bit. Where capture fails, that shape runs eagerly,
    always.
    """

    WARMUP = 3  # eager calls on a side stream before capture (allocator and library warm-up)

    def __init__(self, module):
        import torch

        self._torch = torch
        self._module = module
        self._entries: dict[tuple, tuple | None] = {}
        self._pool = None
        self.failures: dict[tuple, str] = {}

    def __call__(self, args):
        key = tuple((tuple(a.shape), a.dtype, a.device) for a in args)
        if key not in self._entries:
            self._entries[key] = self._capture(key, args)
        entry = self._entries[key]
        if entry is None:
            return self._module(*args)
        graph, static_in, static_out = entry
        for buffer, value in zip(static_in, args):
            buffer.copy_(value)
        graph.replay()
        return static_out  # read before the next replay: run() copies it to numpy at once

    def _capture(self, key, args):
        torch = self._torch
        try:
            static_in = [a.clone() for a in args]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.WARMUP):
                    self._module(*static_in)
            torch.cuda.current_stream().wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()  # all shapes share one memory pool
            graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA calls other threads make meanwhile neither break nor join this capture.
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                out = self._module(*static_in)
            outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
            return graph, static_in, outs
        except Exception as exc:  # any capture problem: this shape runs eagerly
            self.failures[key] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.info("CUDA graph capture failed, running eagerly: %s", self.failures[key])
            return None


@functools.lru_cache(maxsize=1)
def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is installed, checked without touching a CUDA provider.

    onnxruntime-gpu lists its CUDA provider even on machines with no GPU, and
    asking for it there logs errors; the driver is the cheap, quiet test. Once per
    process: without a driver, find_library runs ldconfig (about 20 ms), and every
    ONNX session asks, on the way to the window's first picture.
    """
    if Path("/proc/driver/nvidia").exists():
        return True
    return bool(ctypes.util.find_library("cuda") or ctypes.util.find_library("nvcuda"))


def onnx_cuda_unavailable() -> str | None:
    """Why ONNX Runtime cannot even try CUDA here (None: it can try), checked without a session."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "ONNX Runtime has no CUDA provider here (install onnxruntime-gpu)"
    if not nvidia_driver_present():
        return "ONNX Runtime cannot use CUDA: no NVIDIA driver on this machine"
    return None


def check_onnx_cuda() -> None:
    reason = onnx_cuda_unavailable()
    if reason:
        raise ProviderUnavailable(f"{reason}; choose the CPU or the torch backend")


class OnnxBackend:
    name = "onnx"
    export_pending = False

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        from studio.engine.setup import configure_onnxruntime

        configure_onnxruntime()  # the default logger's level, once per process
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = compute_threads(threads)
        opts.inter_op_num_threads = 1
        # No spinning: idle ORT threads must not steal the core torch or the GUI needs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if device == "cuda":
            check_onnx_cuda()
        want_cuda = device in ("auto", "cuda") and onnx_cuda_unavailable() is None
        providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception classes
            if not want_cuda:
                raise self._unreadable(exc) from exc
            self.session = self._cpu_session(ort, opts, exc, device)
        active = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in active else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise ProviderUnavailable("ONNX Runtime could not start its CUDA provider on this machine "
                                      "(its CUDA or cuDNN libraries did not load); choose the CPU or the "
                                      "torch backend")
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._dtypes = {i.name: _ORT_TYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _cpu_session(self, ort, opts, cuda_exc: Exception, device: str):
        """The session failed with the CUDA provider: was it the provider, or the file?"""
        try:
            session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise self._unreadable(exc) from exc
        if device == "cuda":
            raise ProviderUnavailable(f"ONNX Runtime could not start its CUDA provider "
                                      f"({_first_line(cuda_exc)}); choose the CPU or the torch backend") from cuda_exc
        return session  # "auto": the CPU it is

    def _unreadable(self, exc: Exception) -> BackendError:
        return BackendError(f"{self.path}: ONNX Runtime cannot load this file ({_first_line(exc)})")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise BackendError(f"{self.path.name}: missing inputs {sorted(missing)}")
        feed = {k: np.ascontiguousarray(inputs[k], dtype=self._dtypes[k]) for k in self.input_names}
        outs = self.session.run(self.output_names, feed)
        return dict(zip(self.output_names, outs))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
