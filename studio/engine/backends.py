"""Inference backends: torch (CPU or CUDA) and ONNX Runtime (CUDA or CPU provider).

Both take and return dicts of named float32 numpy arrays, so models with many
inputs (per-layer styles, per-layer noise) need nothing special. Each backend
reports the device that really ran: ONNX Runtime's by what the session holds
after creation, never by the list of providers the wheel advertises.
"""

from __future__ import annotations

import ctypes.util
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from studio.core.threads import compute_threads

log = logging.getLogger(__name__)

BACKENDS = ("onnx", "torch")
DEVICES = ("auto", "cpu", "cuda")


class BackendError(Exception):
    """A backend cannot run this model; the message says why."""


class Backend(Protocol):
    name: str
    device: str

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class TorchBackend:
    name = "torch"

    def __init__(self, module, output_names: tuple[str, ...], device: str = "auto",
                 input_names: tuple[str, ...] | None = None):
        import torch

        from studio.core.threads import configure_torch_threads

        configure_torch_threads()  # all cores but one: the GUI keeps a core
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch sees no CUDA GPU on this machine")
        self.device = device
        self._torch = torch
        self.module = module.to(device).eval()
        self.output_names = output_names
        self.input_names = list(input_names) if input_names else None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        if self.input_names is not None:  # positional call: order by name, never by dict order
            missing = set(self.input_names) - set(inputs)
            if missing:
                raise BackendError(f"missing inputs {sorted(missing)}")
            inputs = {k: inputs[k] for k in self.input_names}
        with torch.inference_mode():
            args = [torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for v in inputs.values()]
            out = self.module(*args)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        return {n: t.float().cpu().numpy() for n, t in zip(self.output_names, out)}


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is installed, checked without touching a CUDA provider.

    onnxruntime-gpu lists its CUDA provider even on machines with no GPU, and
    asking for it there logs errors; the driver is the cheap, quiet test.
    """
    if Path("/proc/driver/nvidia").exists():
        return True
    return bool(ctypes.util.find_library("cuda") or ctypes.util.find_library("nvcuda"))


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = compute_threads(threads)
        opts.inter_op_num_threads = 1
        # No spinning: idle ORT threads must not steal the core torch or the GUI needs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        want_cuda = (device in ("auto", "cuda") and nvidia_driver_present()
                     and "CUDAExecutionProvider" in ort.get_available_providers())
        providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
        # A CUDA provider that fails to load falls back to the CPU; say so once, in the panel, not in the log.
        ort.set_default_logger_severity(4 if want_cuda else 3)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception classes
            raise BackendError(f"{self.path}: ONNX Runtime cannot load this file ({_first_line(exc)})") from exc
        finally:
            ort.set_default_logger_severity(3)
        active = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in active else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise BackendError("ONNX Runtime could not start its CUDA provider on this machine")
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise BackendError(f"{self.path.name}: missing inputs {sorted(missing)}")
        feed = {k: np.ascontiguousarray(inputs[k], dtype=np.float32) for k in self.input_names}
        outs = self.session.run(self.output_names, feed)
        return dict(zip(self.output_names, outs))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
