"""A loaded checkpoint and its backends: one object per checkpoint file.

Loading a checkpoint reads numpy arrays only; torch is imported the first time
a torch backend (or an ONNX export) is needed, so an ONNX-only start is fast.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from studio.engine.backends import BACKENDS, Backend, BackendError, OnnxBackend, TorchBackend
from studio.engine.export import DIGEST_KEY, cached_path, file_digest, sidecar_path
from studio.core.checkpoint import Checkpoint, load_checkpoint


class ModelRuntime:
    def __init__(self, path: str | Path, family: str | None = None):
        self.checkpoint: Checkpoint = load_checkpoint(path, family=family)
        self.path = Path(self.checkpoint.path or path)
        self.digest = file_digest(self.path)
        self._torch_model = None
        self._specs = None
        self._backends: dict[tuple[str, str, str], Backend] = {}
        self._lock = threading.RLock()

    @property
    def family(self) -> str:
        return self.checkpoint.family

    @property
    def config(self) -> dict[str, Any]:
        return self.checkpoint.config

    def torch_model(self):
        with self._lock:
            if self._torch_model is None:
                from studio.engine.export import build_torch_model

                self._torch_model = build_torch_model(self.checkpoint)
            return self._torch_model

    def graph_specs(self):
        with self._lock:
            if self._specs is None:
                from studio.core.family import get_family

                self._specs = get_family(self.family).graph_specs(self.torch_model())
            return self._specs

    def _onnx_backend(self, graph: str, device: str) -> OnnxBackend:
        """A session on the ONNX file for ``graph``: beside the checkpoint, cached, or exported now.

        A file counts only if it is stamped with this checkpoint's digest, so a
        stale export beside a retrained checkpoint is never used.
        """
        for candidate in (sidecar_path(self.path, graph), cached_path(self.digest, graph)):
            if candidate.exists():
                try:
                    backend = OnnxBackend(candidate, device=device)
                except BackendError:
                    continue  # unreadable: export a fresh one
                if backend.metadata.get(DIGEST_KEY) == self.digest:
                    return backend
        from studio.engine.export import export_graph

        specs = self.graph_specs()
        if graph not in specs:
            raise BackendError(f"the '{self.family}' model has no graph '{graph}'")
        path = export_graph(specs[graph], cached_path(self.digest, graph), self.digest)
        return OnnxBackend(path, device=device)

    def onnx_file(self, graph: str) -> Path:
        return self.backend(graph, "onnx", "cpu").path

    def backend(self, graph: str, backend: str = "onnx", device: str = "auto") -> Backend:
        if backend not in BACKENDS:
            raise BackendError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
        key = (graph, backend, device)
        with self._lock:
            if key not in self._backends:
                if backend == "onnx":
                    self._backends[key] = self._onnx_backend(graph, device)
                else:
                    spec = self.graph_specs()[graph]
                    self._backends[key] = TorchBackend(spec.module, spec.outputs, device=device,
                                                       input_names=tuple(i.name for i in spec.inputs))
            return self._backends[key]

    def run(self, graph: str, inputs: dict[str, np.ndarray], backend: str = "onnx",
            device: str = "auto") -> tuple[dict[str, np.ndarray], Backend]:
        runner = self.backend(graph, backend, device)
        return runner.run(inputs), runner


class RuntimePool:
    """Runtimes by checkpoint path, reloaded when the file changes on disk."""

    def __init__(self):
        self._runtimes: dict[Path, tuple[int, ModelRuntime]] = {}
        self._lock = threading.Lock()

    def get(self, path: str | Path, family: str | None = None) -> ModelRuntime:
        from studio.core.checkpoint import CheckpointError

        p = Path(path)
        if p.is_dir():
            from studio.core.checkpoint import newest_checkpoint

            newest = newest_checkpoint(p)
            if newest is None:
                raise CheckpointError(f"{p}: the folder holds no checkpoint")
            p = newest
        p = p.resolve()
        try:
            stamp = p.stat().st_mtime_ns
        except FileNotFoundError as exc:
            raise CheckpointError(f"{p}: no such file") from exc
        with self._lock:
            hit = self._runtimes.get(p)
            if hit and hit[0] == stamp:
                return hit[1]
        runtime = ModelRuntime(p, family=family)
        with self._lock:
            self._runtimes[p] = (stamp, runtime)
        return runtime
