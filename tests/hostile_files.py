"""Hostile inputs, written at test time: checkpoints, datasets and images that must be refused cleanly.

Every maker returns (file name, bytes) pairs, so a test can write them under
tmp_path; nothing binary is committed. ``marker`` is a file that a pickle
would create if anything ever unpickled it.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import struct
import zipfile

import numpy as np

from studio.core.checkpoint import Checkpoint

TENSOR = np.arange(6, dtype=np.float32).reshape(2, 3)


def studio_meta(**changes) -> dict:
    meta = Checkpoint("vae", {"latent_dim": 2}, {}, "mnist", 3).metadata()
    meta.update(changes)
    return meta


def safetensors_bytes(header: dict | bytes, data: bytes) -> bytes:
    """A file laid out as safetensors: 8-byte header length, the header, the tensor bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def checkpoint_bytes(meta: dict | str | None = None, tensors: dict[str, np.ndarray] | None = None,
                     metadata_block=None) -> bytes:
    """A studio checkpoint with metadata ``meta`` (a dict, or the raw JSON text) and ``tensors``."""
    tensors = {"model/w": TENSOR} if tensors is None else tensors
    header: dict = {}
    offset, data = 0, b""
    for name, arr in tensors.items():
        blob = np.ascontiguousarray(arr).tobytes()
        dtype = {"float32": "F32", "float64": "F64", "int64": "I64", "uint8": "U8"}[str(arr.dtype)]
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        data += blob
    if metadata_block is None:
        text = meta if isinstance(meta, str) else json.dumps(studio_meta() if meta is None else meta)
        metadata_block = {"studio": text}
    header["__metadata__"] = metadata_block
    return safetensors_bytes(header, data)


class RunsCode:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def hostile_checkpoints(marker) -> list[tuple[str, bytes]]:
    """About 30 crafted files covering every way a checkpoint can be wrong."""
    good = checkpoint_bytes()
    pickled = pickle.dumps(RunsCode(marker), protocol=2)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(RunsCode(marker)))
    npy = io.BytesIO()
    np.save(npy, np.zeros((2, 2), np.float32))
    npz = io.BytesIO()
    np.savez(npz, images=np.zeros((2, 2), np.float32))
    onnx_like = b"\x08\x07\x12\x07pytorch\x1a\x032.1" + b"\x00" * 40
    tensor_header = {"model/w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
    return [
        ("empty.safetensors", b""),
        ("tiny.safetensors", b"\x01\x02\x03"),
        ("truncated_header.safetensors", good[:20]),
        ("truncated_data.safetensors", good[:-5]),
        ("stray_bytes.safetensors", good + b"\x00" * 8),
        ("huge_header_length.safetensors", (2**62).to_bytes(8, "little") + b"{}" + b"\x00" * 30),
        ("header_longer_than_file.safetensors", (4000).to_bytes(8, "little") + b'{"a": 1}'),
        ("header_not_json.safetensors", safetensors_bytes(b"{not json at all}", b"")),
        ("header_is_list.safetensors", safetensors_bytes(b"[1, 2, 3]", b"")),
        ("header_nested.safetensors", safetensors_bytes(nested(200_000).encode(), b"")),
        ("metadata_nested.safetensors", checkpoint_bytes(nested(200_000))),
        ("metadata_block_list.safetensors", checkpoint_bytes(metadata_block=[1, 2])),
        ("metadata_value_not_str.safetensors", checkpoint_bytes(metadata_block={"studio": 5})),
        ("metadata_is_list.safetensors", checkpoint_bytes("[1, 2]")),
        ("metadata_not_json.safetensors", checkpoint_bytes("{oops")),
        ("no_metadata.safetensors", safetensors_bytes(tensor_header, TENSOR.tobytes())),
        ("step_is_text.safetensors", checkpoint_bytes(studio_meta(step="ten"))),
        ("step_negative.safetensors", checkpoint_bytes(studio_meta(step=-4))),
        ("step_is_true.safetensors", checkpoint_bytes(studio_meta(step=True))),
        ("family_is_list.safetensors", checkpoint_bytes(studio_meta(family=["vae"]))),
        ("family_missing.safetensors", checkpoint_bytes({"format_version": 1})),
        ("family_surrogate.safetensors", checkpoint_bytes(studio_meta(family="\ud800\n"))),
        ("config_is_text.safetensors", checkpoint_bytes(studio_meta(config="latent_dim=2"))),
        ("metrics_is_list.safetensors", checkpoint_bytes(studio_meta(metrics=[1]))),
        ("future_version.safetensors", checkpoint_bytes(studio_meta(format_version=99))),
        ("version_is_text.safetensors", checkpoint_bytes(studio_meta(format_version="1"))),
        ("nan_weights.safetensors", checkpoint_bytes(tensors={"model/w": np.full((2, 3), np.nan, np.float32)})),
        ("inf_weight.safetensors", checkpoint_bytes(tensors={"model/w": np.array([1.0, np.inf], np.float32)})),
        ("no_weights.safetensors", checkpoint_bytes(tensors={"optim/0": TENSOR})),
        ("overlapping_tensors.safetensors", safetensors_bytes(
            {**tensor_header, "model/v": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
             "__metadata__": {"studio": json.dumps(studio_meta())}}, TENSOR.tobytes())),
        ("shape_overflow.safetensors", safetensors_bytes(
            {"model/w": {"dtype": "F32", "shape": [2**62, 8], "data_offsets": [0, 24]}}, TENSOR.tobytes())),
        ("bfloat16.safetensors", safetensors_bytes(
            {"model/w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
             "__metadata__": {"studio": json.dumps(studio_meta())}}, b"\x00" * 4)),
        ("pickle.safetensors", pickled),
        ("pickle.pt", pickle.dumps(RunsCode(marker), protocol=5)),
        ("torch_zip.safetensors", zipped.getvalue()),
        ("array.safetensors", npy.getvalue()),
        ("arrays.safetensors", npz.getvalue()),
        ("model.onnx", onnx_like),
        ("text.safetensors", b"these are not the weights you are looking for\n" * 3),
    ]


def mutated_checkpoints(seed: int, count: int) -> list[tuple[str, bytes]]:
    """Random damage to a valid checkpoint: bit flips, cuts, splices and header-length edits."""
    rng = random.Random(seed)
    good = checkpoint_bytes(tensors={"model/w": TENSOR, "model/b": np.ones(3, np.float32)})
    out = []
    for i in range(count):
        data = bytearray(good)
        how = rng.choice(["flip", "cut", "splice", "length", "header_byte", "append"])
        if how == "flip":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == "cut":
            data = data[: rng.randrange(len(data))]
        elif how == "splice":
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 32))
        elif how == "length":
            n = int.from_bytes(data[:8], "little") + rng.randint(-40, 40)
            data[:8] = max(n, 0).to_bytes(8, "little")
        elif how == "header_byte":
            n = int.from_bytes(data[:8], "little")
            data[8 + rng.randrange(n)] = rng.choice(b'{}[]":,0123456789-eE.ntfa\\ \x00\xff')
        else:
            data += rng.randbytes(rng.randint(1, 64))
        out.append((f"mutant_{i:05d}_{how}.safetensors", bytes(data)))
    return out


def idx_bytes(dims: list[int], dtype_code: int = 0x08, payload: bytes = b"") -> bytes:
    return bytes([0, 0, dtype_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def hostile_datasets() -> list[tuple[str, bytes]]:
    """Dataset files that must each give one clear DatasetError line naming the file."""
    npy = io.BytesIO()
    np.save(npy, np.zeros((2, 4, 4), np.uint8))
    pickled_npz = io.BytesIO()
    np.savez(pickled_npz, images=np.array([{"a": 1}, None], dtype=object))
    nan_npz = io.BytesIO()
    bad = np.zeros((3, 4, 4), np.float32)
    bad[1, 2, 3] = np.nan
    np.savez(nan_npz, images=bad)
    inf_npz = io.BytesIO()
    bad = np.zeros((2, 4, 4), np.float64)
    bad[0, 3, 1], bad[1, 0, 0] = np.inf, -np.inf
    np.savez(inf_npz, images=bad)
    broken_zip = io.BytesIO()
    np.savez(broken_zip, images=np.zeros((2, 4, 4), np.uint8))
    lying = io.BytesIO()  # an .npy header claiming 10^16 bytes, with 64 behind it
    np.lib.format.write_array_header_1_0(
        lying, {"descr": "|u1", "fortran_order": False, "shape": (1_000_000, 100_000, 100_000)})
    lying_npz = io.BytesIO()
    with zipfile.ZipFile(lying_npz, "w") as z:
        z.writestr("images.npy", lying.getvalue() + b"\x00" * 64)
    return [
        ("not_a_zip.npz", b"this is not a zip archive at all"),
        ("renamed_npy.npz", npy.getvalue()),
        ("truncated_zip.npz", broken_zip.getvalue()[:40]),
        ("empty.npz", b""),
        ("pickled_objects.npz", pickled_npz.getvalue()),
        ("nan_pixels.npz", nan_npz.getvalue()),
        ("inf_pixels.npz", inf_npz.getvalue()),
        ("lying_header.npz", lying_npz.getvalue()),
        ("huge-images-idx3-ubyte", idx_bytes([2**31, 2**31, 2**31], payload=b"\x00" * 64)),
        ("short-images-idx3-ubyte", idx_bytes([10, 28, 28], payload=b"\x00" * 100)),
        ("nan-images-idx3-ubyte", idx_bytes([1, 2, 2], 0x0D, struct.pack(">4f", 0.1, float("nan"), 0.2, 0.3))),
        ("inf-images-idx3-ubyte", idx_bytes([1, 2, 2], 0x0D, struct.pack(">4f", 0.1, 0.2, float("inf"), 0.3))),
        ("rubbish-images-idx3-ubyte", b"\x01\x02\x03\x04rubbish"),
        ("many-dims-images-idx3-ubyte", idx_bytes([1] * 67, payload=b"\x00")),
    ]
