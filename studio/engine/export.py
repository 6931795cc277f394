"""ONNX export of a checkpoint's interactive graphs.

Each exported file records the SHA-256 of the checkpoint it came from, so a
stale ONNX file beside a retrained checkpoint is never used by mistake.
Exports sit beside the checkpoint (``NAME.GRAPH.onnx``) or, when that folder
is not writable, in the user's cache.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import tempfile
import threading
from pathlib import Path

from studio.core.family import get_family
from studio.core.paths import cache_dir
from studio.engine.graphs import GraphSpec
from studio.core.checkpoint import Checkpoint, save_checkpoint

DIGEST_KEY = "studio_checkpoint_sha256"
GRAPH_KEY = "studio_graph"
OPSET = 18


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(checkpoint_path: Path, graph: str) -> Path:
    return checkpoint_path.with_name(f"{checkpoint_path.stem}.{graph}.onnx")


def cached_path(digest: str, graph: str) -> Path:
    return cache_dir() / "onnx" / digest[:16] / f"{graph}.onnx"


def build_torch_model(ckpt: Checkpoint):
    """Build the family's module and load the checkpoint weights (strictly)."""
    import numpy as np
    import torch

    from studio.core.checkpoint import CheckpointError
    from studio.engine.setup import configure_torch

    configure_torch()  # once per process, before its first torch work
    model = get_family(ckpt.family).build_model(ckpt.config)
    state = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{ckpt.path}: the weights do not fit a '{ckpt.family}' model "
                              f"with config {ckpt.config} ({first})") from exc
    return model.eval()


def export_graph(spec: GraphSpec, path: Path, digest: str) -> Path:
    """Export one graph to ONNX, atomically, with the dynamic axes and dtypes its inputs declare.

    The export runs on a CPU copy of the module: the module itself may be in
    use on another thread (rendering) or live on a GPU, and the exporter must
    not touch either.
    """
    import onnx
    import torch

    from studio.engine.setup import configure_process

    configure_process(with_torch=True)  # warnings and log levels, once for the process
    path.parent.mkdir(parents=True, exist_ok=True)
    module = copy.deepcopy(spec.module).to("cpu").eval()
    example = spec.example_inputs(batch=2)
    dims: dict[str, object] = {}  # one Dim per axis name: axes sharing a name stay equal

    def dim(name: str):
        return dims.setdefault(name, torch.export.Dim(name, min=1, max=4096))

    # Positional: forward() argument names may differ from the input names.
    dynamic = tuple({axis: dim(name) for axis, name in s.dynamic} for s in spec.inputs)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        program = torch.onnx.export(
            module, tuple(example.values()), input_names=[s.name for s in spec.inputs],
            output_names=list(spec.outputs), dynamic_shapes=dynamic, dynamo=True,
            opset_version=OPSET, external_data=False, verbose=False,
        )
        model = program.model_proto
        for key, value in ((DIGEST_KEY, digest), (GRAPH_KEY, spec.name)):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


_helper = None  # (process, connection) of the export process, started on first use
_helper_lock = threading.Lock()  # one job at a time on its connection


def export_isolated(checkpoint: Path, digest: str, graph: str, path: Path) -> Path:
    """Export ``graph`` of the checkpoint file to ``path`` in the export process, and wait for it.

    torch.export switches oneDNN, NNPACK and cuDNN off for the whole process while it traces
    (``torch.export._trace._ignore_backend_decomps``), and it traces in Python for seconds. In
    the app's process, torch renders on other threads meanwhile would run other kernels: their
    numbers change in the last bits (a seeded diffusion run no longer replays bit for bit) and
    CUDA renders lose cuDNN; the window would stutter too. A process of its own keeps all of that
    away. It is started once (importing torch there takes seconds) and is a daemon, so quitting
    never waits for it. It reads the file itself and exports only if it still has ``digest``.
    """
    global _helper
    with _helper_lock:
        if _helper is None or not _helper[0].is_alive():
            _helper = _start_helper()
        process, connection = _helper
        try:
            connection.send((str(checkpoint), digest, graph, str(path)))
            outcome = connection.recv()
        except (EOFError, OSError):
            process.join(5)
            _helper = None  # the next export starts a fresh one
            raise RuntimeError(f"the export process ended (exit code {process.exitcode})") from None
    if outcome != "ok":
        raise RuntimeError(outcome)
    return path


def _start_helper():
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # never a fork of a process running Qt and threads
    mine, theirs = context.Pipe()
    process = context.Process(target=_serve_exports, args=(theirs,), name="studio-onnx-exporter", daemon=True)
    process.start()
    theirs.close()
    atexit.register(_stop_helper, process, mine)
    return process, mine


def _stop_helper(process, connection) -> None:
    """At exit, let the export process leave its loop and run its finalizers.

    Killed as a daemon instead, it leaves a semaphore that torch created there, and
    multiprocessing's resource tracker prints a "leaked semaphore" warning at every exit.
    """
    connection.close()
    if not _helper_lock.locked():  # mid-export, quitting does not wait: it is killed as before
        process.join(5)


def _serve_exports(connection) -> None:
    """The export process: one job after another, until the app's end of the pipe closes."""
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        outcome = _export_file(*job)
        try:
            connection.send(outcome)
        except OSError:  # the app quit while we exported
            return


def _export_file(checkpoint: str, digest: str, graph: str, path: str) -> str:
    """'ok', or what went wrong in one line."""
    from studio.core.checkpoint import load_checkpoint_bytes

    try:
        data = Path(checkpoint).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"{checkpoint} changed since it was opened")
        ckpt = load_checkpoint_bytes(data, checkpoint)
        spec = get_family(ckpt.family).graph_specs(build_torch_model(ckpt))[graph]
        export_graph(spec, Path(path), digest)
        return "ok"
    except Exception as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def onnx_digest(path: Path) -> str | None:
    """The checkpoint digest recorded in an ONNX file, or None if unreadable."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    return next((p.value for p in model.metadata_props if p.key == DIGEST_KEY), None)


def export_checkpoint(ckpt: Checkpoint, dest: str | os.PathLike) -> list[Path]:
    """Write a weights-only checkpoint to ``dest`` and its graphs' ONNX files beside it."""
    dest = Path(dest)
    slim = Checkpoint(ckpt.family, ckpt.config, ckpt.weights, ckpt.dataset, ckpt.step,
                      ckpt.metrics, {}, {k: v for k, v in ckpt.extra.items() if k in ("options", "init")})
    save_checkpoint(slim, dest)
    digest = file_digest(dest)
    model = build_torch_model(slim)
    written = [dest]
    for name, spec in get_family(ckpt.family).graph_specs(model).items():
        written.append(export_graph(spec, sidecar_path(dest, name), digest))
    return written
