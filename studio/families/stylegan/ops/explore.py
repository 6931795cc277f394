"""Latent-explorer requests: one image, an interpolation strip, the PCA directions; GIF and JSON files."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from studio.core.imaging import image_grid, to_uint8
from studio.engine.latent import lerp, slerp
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.stylegan.ops.latents import Code, Edit, GanModel, NoiseSpec, code_z

SESSION_FORMAT = "generative-studio-gan-latents"
SESSION_VERSION = 1


@dataclass(frozen=True)
class GanGenerate:
    target: Target
    code: Code
    psi: float = 1.0
    cutoff: int | None = None  # truncate layers below this (None: all)
    edits: tuple[Edit, ...] = ()
    noise: NoiseSpec = NoiseSpec()


@dataclass(frozen=True)
class GanInterpolate:
    """A strip from code a to code b: slerp in z for seeds and z, lerp in w for projections."""

    target: Target
    a: Code
    b: Code
    steps: int = 8
    psi: float = 1.0
    cutoff: int | None = None
    edits: tuple[Edit, ...] = ()
    noise: NoiseSpec = NoiseSpec()


@dataclass(frozen=True)
class GanDirections:
    """The principal directions of w: how much variance each explains."""

    target: Target
    samples: int = 10_000
    components: int = 16


# ---- what the handlers return (RenderResult.payload) ---------------------------------
@dataclass(frozen=True)
class GanPicture:
    label: str  # "seed 3", "projection", ...
    family: str


@dataclass(frozen=True)
class GanStrip:
    frames: tuple[np.ndarray, ...]  # uint8, one per step, for the GIF
    steps: int


@dataclass(frozen=True)
class GanDirectionsInfo:
    stds: tuple[float, ...]  # standard deviation of w along each direction
    explained: tuple[float, ...]  # share of the variance of w
    samples: int


def generate(pool: RuntimePool, req: GanGenerate) -> Output:
    model = GanModel(pool, req.target)
    images = model.render([req.code], req.psi, req.cutoff, req.edits, req.noise)
    return model.output(to_uint8(images[0]), GanPicture(req.code.label(), model.family))


def interpolation_codes(model: GanModel, a: Code, b: Code, steps: int) -> list[Code]:
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps")
    t = np.linspace(0.0, 1.0, steps)
    if a.ws is None and b.ws is None:
        zs = slerp(code_z(a, model.z_dim), code_z(b, model.z_dim), t)
        return [Code(z=tuple(float(v) for v in z)) for z in zs]
    ws_a, ws_b = model.styles([a, b])
    flat = lerp(ws_a.reshape(-1), ws_b.reshape(-1), t).reshape(steps, *ws_a.shape)
    return [Code(ws=tuple(tuple(float(v) for v in layer) for layer in ws)) for ws in flat]


def interpolate(pool: RuntimePool, req: GanInterpolate) -> Output:
    model = GanModel(pool, req.target)
    codes = interpolation_codes(model, req.a, req.b, req.steps)
    images = model.render(codes, req.psi, req.cutoff, req.edits, req.noise)
    frames = tuple(to_uint8(im) for im in images)
    return model.output(image_grid(images, cols=len(codes), pad=1), GanStrip(frames, req.steps))


def directions(pool: RuntimePool, req: GanDirections) -> Output:
    model = GanModel(pool, req.target)
    found = model.directions(req.samples, req.components)
    return model.output(None, GanDirectionsInfo(tuple(found.stds.tolist()), tuple(found.explained.tolist()),
                                                req.samples))


# --- files -----------------------------------------------------------------------------
def export_gif(frames: list[np.ndarray], path: str | os.PathLike, fps: float = 12.0, scale: int = 4,
               bounce: bool = True) -> Path:
    """uint8 frames -> an animated GIF (there and back again when ``bounce``), written atomically."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to export")
    seq = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    images = [Image.fromarray(np.ascontiguousarray(f)).resize(
        (f.shape[1] * scale, f.shape[0] * scale), Image.Resampling.NEAREST) for f in seq]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, int(1000 / fps)), loop=0)
    os.replace(tmp, path)
    return path


@dataclass
class Session:
    """What the explorer saves: the checkpoint, the current latent, the interpolation ends, the edits."""

    checkpoint: str
    family: str
    current: Code
    a: Code | None = None
    b: Code | None = None
    psi: float = 1.0
    cutoff: int | None = None
    edits: tuple[Edit, ...] = ()
    steps: int = 8


def save_session(session: Session, path: str | os.PathLike) -> Path:
    data = {"format": SESSION_FORMAT, "version": SESSION_VERSION, "checkpoint": session.checkpoint,
            "family": session.family, "current": _code_dict(session.current),
            "a": _code_dict(session.a), "b": _code_dict(session.b), "psi": session.psi,
            "cutoff": session.cutoff, "edits": [asdict(e) for e in session.edits], "steps": session.steps}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def load_session(path: str | os.PathLike) -> Session:
    """Read a saved session; ValueError with one line naming the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON file") from exc
    if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
        raise ValueError(f"{path}: not a GAN latents file saved by Generative Studio")
    if data.get("version") != SESSION_VERSION:
        raise ValueError(f"{path}: latents file version {data.get('version')} is not supported")
    try:
        return Session(
            checkpoint=str(data["checkpoint"]), family=str(data["family"]), current=_code(data["current"]),
            a=_code(data.get("a")), b=_code(data.get("b")), psi=float(data.get("psi", 1.0)),
            cutoff=None if data.get("cutoff") is None else int(data["cutoff"]),
            edits=tuple(Edit(int(e["component"]), float(e["amount"]), (int(e["layers"][0]), int(e["layers"][1])))
                        for e in data.get("edits", [])),
            steps=int(data.get("steps", 8)))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path}: the latents file is incomplete or malformed ({exc})") from exc


def _code_dict(code: Code | None) -> dict | None:
    if code is None:
        return None
    return {"seed": code.seed, "z": None if code.z is None else list(code.z),
            "ws": None if code.ws is None else [list(layer) for layer in code.ws],
            "noise": None if code.noise is None else [np.asarray(n).tolist() for n in code.noise]}


def _code(d: dict | None) -> Code | None:
    if d is None:
        return None
    z, ws, noise = d.get("z"), d.get("ws"), d.get("noise")
    return Code(int(d.get("seed", 0)), None if z is None else tuple(float(v) for v in z),
                None if ws is None else tuple(tuple(float(v) for v in layer) for layer in ws),
                None if noise is None else tuple(np.asarray(n, np.float32) for n in noise))
