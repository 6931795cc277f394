"""ONNX export of a checkpoint's interactive graphs.

Each exported file records the SHA-256 of the checkpoint it came from, so a
stale ONNX file beside a retrained checkpoint is never used by mistake.
Exports sit beside the checkpoint (``NAME.GRAPH.onnx``) or, when that folder
is not writable, in the user's cache.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
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
                      ckpt.metrics, {}, {k: v for k, v in ckpt.extra.items() if k == "options"})
    save_checkpoint(slim, dest)
    digest = file_digest(dest)
    model = build_torch_model(slim)
    written = [dest]
    for name, spec in get_family(ckpt.family).graph_specs(model).items():
        written.append(export_graph(spec, sidecar_path(dest, name), digest))
    return written
