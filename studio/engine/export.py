"""ONNX export of a checkpoint's interactive graphs.

Each exported file records the SHA-256 of the checkpoint it came from, so a
stale ONNX file beside a retrained checkpoint is never used by mistake.
Exports sit beside the checkpoint (``NAME.GRAPH.onnx``) or, when that folder
is not writable, in the user's cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
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
    """Export one graph to ONNX with a dynamic batch axis, atomically."""
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    example = spec.example_inputs(batch=2)
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = tuple({0: batch} for _ in spec.inputs)  # positional: forward() arg names may differ
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        # The exporter prints progress banners; keep the console for the user's messages.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_torch_logs():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                spec.module.eval(), tuple(example.values()), input_names=[s.name for s in spec.inputs],
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


@contextlib.contextmanager
def _quiet_torch_logs():
    # The exporter warns about optional torchvision ops; that is not the user's concern.
    logger = logging.getLogger("torch.onnx")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


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
