"""A loaded checkpoint and its backends: one object per checkpoint file.

Loading a checkpoint reads the file once and both hashes and parses those
bytes, so a file a training run rewrites meanwhile can never pair one
version's digest with another's weights. It reads numpy arrays only; torch is
imported the first time a torch backend (or an ONNX export) is needed, so an
ONNX-only start is fast.

ONNX files are found beside the checkpoint or in the cache, stamped with the
checkpoint's digest. A render never waits for an export (``wait=False``):
while a file is missing, the torch backend stands in and reports itself as
what ran; the export runs in a process of its own (waited for on a background
thread: the exporter changes process-wide torch settings) and the next render
after it finishes runs on ONNX. A checkpoint that is still changing (a training run
writing its folder) is never exported: rendering it uses torch.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from studio.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint_bytes
from studio.core.paths import shipped_checkpoint_dir
from studio.engine.backends import (
    BACKENDS, Backend, BackendError, OnnxBackend, ProviderUnavailable, TorchBackend, check_onnx_cuda,
    torch_device,
)
from studio.engine.export import DIGEST_KEY, cached_path, sidecar_path

log = logging.getLogger(__name__)

SETTLE_S = 60.0  # a user's checkpoint folder written to within this long is still being written
RECHECK_S = 5.0  # how often a changing checkpoint is looked at again
SCAN_LIMIT = 2000  # folder entries looked at when deciding
_EXPORT_LOCK = threading.Lock()  # one export at a time: each is CPU-heavy


def checkpoint_is_changing(path: Path, now: float | None = None) -> bool:
    """Whether a training run may still be writing ``path``.

    Shipped checkpoints never change. Any other counts as changing while a
    file in its folder (itself, a newer checkpoint, the run's log) was written
    within the last ``SETTLE_S`` seconds: a run folder being trained.
    """
    folder = path.parent
    try:
        if folder.resolve() == shipped_checkpoint_dir().resolve():
            return False
    except OSError:
        return False
    now = time.time() if now is None else now
    try:
        if now - path.stat().st_mtime < SETTLE_S:
            return True
        with os.scandir(folder) as entries:
            for seen, entry in enumerate(entries):
                if seen >= SCAN_LIMIT:  # a huge folder (downloads, say) is no run folder
                    break
                try:
                    if entry.is_file() and now - entry.stat().st_mtime < SETTLE_S:
                        return True
                except OSError:
                    continue
    except OSError:
        return False
    return False


class _Export:
    """A background export of one graph for one device."""

    def __init__(self):
        self.done = threading.Event()
        self.error: BaseException | None = None


class PendingExport:
    """The torch backend standing in for ONNX while the ONNX file is being exported."""

    name = "torch"

    def __init__(self, torch_backend: TorchBackend, job: _Export):
        self._backend = torch_backend
        self._job = job

    @property
    def device(self) -> str:
        return self._backend.device

    @property
    def export_pending(self) -> bool:
        return not self._job.done.is_set()

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._backend.run(inputs)


class ModelRuntime:
    def __init__(self, path: str | Path, family: str | None = None):
        path = Path(path)
        if path.is_dir():
            from studio.core.checkpoint import newest_checkpoint

            newest = newest_checkpoint(path)
            if newest is None:
                raise CheckpointError(f"{path}: the folder holds no checkpoint")
            path = newest
        try:
            with open(path, "rb") as f:  # the one read: the digest and the weights come from these bytes
                data = f.read()
        except FileNotFoundError as exc:
            raise CheckpointError(f"{path}: no such file") from exc
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        self.checkpoint: Checkpoint = load_checkpoint_bytes(data, path, family=family)
        self.digest = hashlib.sha256(data).hexdigest()
        self.path = Path(self.checkpoint.path or path)
        self._changing = checkpoint_is_changing(self.path)
        self._checked_at = time.monotonic()
        self._torch_model = None
        self._specs = None
        self._backends: dict[tuple[str, str, str], Backend] = {}
        self._looked: set[tuple[str, str]] = set()  # (graph, device) whose ONNX files were looked for
        self._exports: dict[tuple[str, str], _Export] = {}
        self._unavailable: dict[tuple[str, str], ProviderUnavailable] = {}
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

    def _spec(self, graph: str):
        specs = self.graph_specs()
        if graph not in specs:
            raise BackendError(f"the '{self.family}' model has no graph '{graph}'")
        return specs[graph]

    def is_changing(self) -> bool:
        """Whether the checkpoint's folder is still being written (looked at again every few seconds)."""
        with self._lock:
            if self._changing and time.monotonic() - self._checked_at > RECHECK_S:
                self._changing = checkpoint_is_changing(self.path)
                self._checked_at = time.monotonic()
            return self._changing

    # --- torch ------------------------------------------------------------------------
    def _torch_backend(self, graph: str, device: str) -> TorchBackend:
        device = torch_device(device)
        key = (graph, "torch", device)
        with self._lock:
            if key not in self._backends:
                spec = self._spec(graph)
                # .to(device) moves a module in place: every device but the CPU gets its own copy,
                # so a backend on one device never pulls the module from under another's feet.
                module = spec.module if device == "cpu" else copy.deepcopy(spec.module)
                self._backends[key] = TorchBackend.from_spec(spec, device, module=module)
            return self._backends[key]

    # --- ONNX -------------------------------------------------------------------------
    def _existing_onnx(self, graph: str, device: str) -> OnnxBackend | None:
        """A session on an ONNX file for ``graph`` stamped with this checkpoint's digest, if one exists.

        An unreadable file is skipped (an export replaces it); a CUDA provider
        that cannot start is raised, since no export would help.
        """
        for candidate in self._onnx_files(graph):
            if not candidate.exists():
                continue
            try:
                backend = OnnxBackend(candidate, device=device)
            except ProviderUnavailable:
                raise
            except BackendError:
                continue  # unreadable: export a fresh one
            if backend.metadata.get(DIGEST_KEY) == self.digest:
                return backend
        return None

    def _onnx_files(self, graph: str) -> Iterator[Path]:
        """The sidecar beside the checkpoint, then the cache's copy: the cache's path is worked out
        only if the sidecar will not do (platformdirs' import is on the way to the first picture)."""
        yield sidecar_path(self.path, graph)
        yield cached_path(self.digest, graph)

    def _export(self, graph: str) -> Path:
        from studio.engine import export

        self._spec(graph)  # an unknown graph is named here, before any process starts
        with _EXPORT_LOCK:  # in a process of its own: the exporter changes process-wide torch settings
            return export.export_isolated(self.path, self.digest, graph, cached_path(self.digest, graph))

    def _export_in_background(self, graph: str, device: str) -> _Export:
        job = _Export()
        self._exports[(graph, device)] = job

        def work():
            try:
                backend = OnnxBackend(self._export(graph), device=device)
                with self._lock:
                    self._backends[(graph, "onnx", device)] = backend
            except BackendError as exc:
                job.error = exc
            except Exception as exc:  # the exporter's own errors: say which graph failed and why
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                job.error = BackendError(f"{self.path.name}: cannot export the '{graph}' graph to ONNX ({first})")
                log.info("ONNX export of %s failed", graph, exc_info=True)
            finally:
                job.done.set()

        threading.Thread(target=work, name=f"studio-onnx-export-{graph}", daemon=True).start()
        return job

    def _onnx_backend(self, graph: str, device: str, wait: bool) -> Backend:
        key = (graph, "onnx", device)
        with self._lock:
            if key in self._backends:
                return self._backends[key]
            if (graph, device) in self._unavailable:
                raise self._unavailable[(graph, device)]
            if (graph, device) not in self._looked:
                try:
                    found = self._existing_onnx(graph, device)
                except ProviderUnavailable as exc:  # no export can help: say so on every call
                    self._unavailable[(graph, device)] = exc
                    raise
                self._looked.add((graph, device))
                if found is not None:
                    self._backends[key] = found
                    return found
            job = self._exports.get((graph, device))
            if job is None and device == "cuda":
                check_onnx_cuda()  # no CUDA provider to try: exporting would not help
            if job is None and not wait and not self.is_changing():
                job = self._export_in_background(graph, device)
        if job is not None and (wait or job.done.is_set()):
            job.done.wait()
            if job.error is not None:
                raise job.error
            return self._backends[key]
        if job is not None:
            return PendingExport(self._torch_backend(graph, self._stand_in_device(device)), job)
        if not wait:  # still being written: torch renders it, nothing is exported
            return self._torch_backend(graph, self._stand_in_device(device))
        with self._lock:  # an explicit call: export here and now
            if key not in self._backends:
                self._backends[key] = OnnxBackend(self._export(graph), device=device)
            return self._backends[key]

    @staticmethod
    def _stand_in_device(device: str) -> str:
        """Where torch stands in for ONNX: the device asked for, or the CPU if torch cannot use it."""
        try:
            return torch_device(device)
        except BackendError:
            return "cpu"

    def onnx_file(self, graph: str) -> Path:
        return self.backend(graph, "onnx", "cpu").path

    def backend(self, graph: str, backend: str = "onnx", device: str = "auto", wait: bool = True) -> Backend:
        """The backend that runs ``graph``.

        ``wait=False`` is for rendering: ONNX that is not exported yet is
        rendered by torch meanwhile (``PendingExport``, or plain torch while the
        checkpoint is still changing); the returned object names what runs.
        """
        if backend not in BACKENDS:
            raise BackendError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
        if backend == "torch":
            return self._torch_backend(graph, device)
        return self._onnx_backend(graph, device, wait)

    def run(self, graph: str, inputs: dict[str, np.ndarray], backend: str = "onnx",
            device: str = "auto", wait: bool = True) -> tuple[dict[str, np.ndarray], Backend]:
        runner = self.backend(graph, backend, device, wait)
        return runner.run(inputs), runner


class RuntimePool:
    """Runtimes by checkpoint path, reloaded when the file changes on disk.

    At most ``capacity`` are kept, the least recently used dropped first: a
    followed training run writes a new checkpoint every few hundred steps, and
    each would otherwise keep its weights, modules and sessions forever.
    """

    def __init__(self, capacity: int = 6):
        self.capacity = capacity
        self._runtimes: OrderedDict[Path, tuple[tuple[int, int, int], ModelRuntime]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._runtimes)

    def get(self, path: str | Path, family: str | None = None) -> ModelRuntime:
        p = Path(path)
        if p.is_dir():
            from studio.core.checkpoint import newest_checkpoint

            newest = newest_checkpoint(p)
            if newest is None:
                raise CheckpointError(f"{p}: the folder holds no checkpoint")
            p = newest
        p = p.resolve()
        try:
            st = p.stat()  # before reading: a file replaced meanwhile is simply read again next time
        except FileNotFoundError as exc:
            raise CheckpointError(f"{p}: no such file") from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            hit = self._runtimes.get(p)
            if hit and hit[0] == stamp:
                self._runtimes.move_to_end(p)
                runtime = hit[1]
            else:
                runtime = None
        if runtime is None:
            runtime = ModelRuntime(p, family=family)
            with self._lock:
                self._runtimes[p] = (stamp, runtime)
                self._runtimes.move_to_end(p)
                while len(self._runtimes) > self.capacity:
                    self._runtimes.popitem(last=False)
        elif family is not None and runtime.family != family:
            raise CheckpointError(f"{p}: this is a '{runtime.family}' checkpoint, "
                                  f"but a '{family}' model was expected")
        return runtime
