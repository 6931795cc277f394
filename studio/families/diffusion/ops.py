"""Diffusion requests and their renderer handlers: streamed sampling, forward process, SDEdit.

Times shown to the user follow the DDPM paper: t = 0 is the clean image and
x_t for t = 1..T has been noised t times, so x_t uses the model timestep
tau = t - 1 (the index diffusers and the UNet use). ``alpha_bar(0) = 1``.

Sampling is a generator that hands on every denoising step's arrays as the
sampler made them (x_t, predicted x0, predicted noise and the noise added:
no copies, no pictures on the render thread) in batches at most
``FRAME_INTERVAL_S`` apart, so a 1000-step run costs the GUI a few dozen
deliveries a second, not one per step. The panel turns a whole batch into
uint8 in one go (``step_images``) and lays out a picture only for the step
it shows. A cancel stops the loop at the next delivery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from studio.core.imaging import image_grid
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.diffusion.state import StepFrame
from studio.core.schedules import (
    NoiseSchedule,
    make_sampler,
    sample_loop,
    sdedit_timesteps,
)

VIEWS = ("x_t", "x0", "eps", "noise")
VIEW_TITLES = {"x_t": "x_t", "x0": "predicted x0", "eps": "predicted noise", "noise": "noise added"}
MAX_BATCH = 16
FRAME_INTERVAL_S = 1.0 / 30.0  # the most often a running sample delivers its new steps (video rate)


@dataclass(frozen=True)
class DiffusionSample:
    """Sample ``batch`` images; with ``image`` set, SDEdit: noise it to ``t_start`` and denoise."""

    target: Target
    sampler: str = "ddim"  # "ddpm" or "ddim"
    steps: int = 50
    eta: float = 0.0
    seed: int = 0
    batch: int = 1
    variance: str = "fixed_small"  # DDPM: fixed_small or fixed_large
    image: np.ndarray | None = field(default=None, compare=False, repr=False)  # (C, H, W) in [0, 1]
    t_start: int | None = None  # paper t (1..T) for SDEdit
    frame_interval_s: float = FRAME_INTERVAL_S  # 0: deliver every step on its own
    spacing: str = "leading"  # leading, trailing or linspace (diffusers' timestep_spacing)
    use_clipped_model_output: bool = False  # DDIM: step along the noise the clipped x0 implies


@dataclass(frozen=True)
class DiffusionForward:
    """q(x_t | x_0) of one image at paper time t (0 = the image itself)."""

    target: Target
    image: np.ndarray = field(compare=False, repr=False)  # (C, H, W) in [0, 1]
    t: int = 0
    seed: int = 0


# ---- what the handlers return (RenderResult.payload) ---------------------------------
@dataclass(frozen=True)
class DiffusionStep:
    """One denoising step as the sampler made it: x_t, predicted x0, predicted noise, noise added (floats)."""

    k: int  # step index, 0-based
    n: int  # steps in the trajectory
    t: int  # paper time of x_t
    t_prev: int  # paper time the step lands on
    x_t: np.ndarray = field(repr=False)  # (B, C, H, W), model space
    x0: np.ndarray = field(repr=False)
    eps: np.ndarray = field(repr=False)
    added: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class DiffusionSteps:
    """The steps recorded since the last delivery (at most ``FRAME_INTERVAL_S`` apart)."""

    steps: tuple[DiffusionStep, ...]


@dataclass(frozen=True)
class DiffusionDone:
    """The finished sample, with the steps not yet delivered."""

    final: np.ndarray  # uint8 grid
    samples: np.ndarray  # (B, C, H, W) in [0, 1]
    n: int
    total_ms: float
    model_ms: float
    steps: tuple[DiffusionStep, ...] = ()
    final_images: np.ndarray | None = field(default=None, repr=False)  # uint8 (B, C, H, W)


@dataclass(frozen=True)
class ForwardNoised:
    """q(x_t | x_0) at paper time t."""

    t: int
    alpha_bar: float
    x_t: np.ndarray  # (C, H, W) in model space


def schedule_for(config: dict) -> NoiseSchedule:
    return NoiseSchedule.from_config(config)


def schedule_curves(config: dict) -> dict[str, np.ndarray]:
    """alpha_bar and SNR over paper time t = 0..T (for the schedule plot)."""
    sched = schedule_for(config)
    ab = np.concatenate([[1.0], sched.alphas_cumprod.astype(np.float64)])
    with np.errstate(divide="ignore"):
        snr = ab / np.maximum(1.0 - ab, 1e-12)
    return {"t": np.arange(ab.size), "alpha_bar": ab, "snr": snr}


def to_unit(x: np.ndarray) -> np.ndarray:
    """Model space [-1, 1] -> [0, 1]."""
    return np.clip((x + 1.0) * 0.5, 0.0, 1.0)


def noise_to_unit(n: np.ndarray) -> np.ndarray:
    """Noise shown at +-2 standard deviations around mid grey."""
    return np.clip(n * 0.25 + 0.5, 0.0, 1.0)


def quantize(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, rounded exactly as ``image_grid`` rounds."""
    return (np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def step_images(x_t: np.ndarray, x0: np.ndarray, eps: np.ndarray, added: np.ndarray) -> dict[str, np.ndarray]:
    """The four views as uint8, shaped as given: (N, C, H, W) for a step, (steps, N, C, H, W) for a batch."""
    return {"x_t": quantize(to_unit(x_t)), "x0": quantize(to_unit(x0)),
            "eps": quantize(noise_to_unit(eps)), "noise": quantize(noise_to_unit(added))}


def step_frames(steps: tuple[DiffusionStep, ...]) -> list[StepFrame]:
    """A delivery's steps as frames: the whole batch quantized to uint8 in one numpy pass per view."""
    if not steps:
        return []
    images = step_images(*(np.stack([getattr(step, key) for step in steps])
                           for key in ("x_t", "x0", "eps", "added")))
    return [StepFrame(step.k, step.n, step.t, step.t_prev, {key: images[key][i] for key in images})
            for i, step in enumerate(steps)]


def tile(images: np.ndarray, cols: int | None = None, pad: int = 1) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 grid image (H', W') or (H', W', 3), as ``image_grid`` lays it out."""
    n, c, h, w = images.shape
    cols = cols or _cols(n)
    rows = -(-n // cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y: y + h, x: x + w] = images[i].transpose(1, 2, 0)
    return grid[:, :, 0] if c == 1 else grid


def _cols(n: int) -> int:
    return int(np.ceil(np.sqrt(n)))


def _eps_fn(pool: RuntimePool, target: Target):
    runtime = pool.get(target.checkpoint, family="diffusion")
    # One backend for the whole trajectory, even if an ONNX export finishes midway:
    # every step of a seed runs the same arithmetic, so the seed replays exactly.
    runner = runtime.backend("eps", target.backend, target.device, wait=False)
    info = {"model_ms": 0.0}

    def eps(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = runner.run({"x": x, "t": t})
        info["model_ms"] += (time.perf_counter() - t0) * 1000.0
        return out["eps"]

    return runtime, runner, eps, info


def model_image(image: np.ndarray, config: dict) -> np.ndarray:
    """A (C, H, W) image in [0, 1] -> model space [-1, 1], checked against the model."""
    c, s = int(config.get("channels", 1)), int(config.get("image_size", 28))
    if image.shape != (c, s, s):
        raise ValueError(f"the image is {tuple(image.shape)}, the model takes {(c, s, s)}")
    return (image.astype(np.float32) * 2.0 - 1.0)[None]


def sample(pool: RuntimePool, req: DiffusionSample) -> Iterator[Output]:
    if not 1 <= req.batch <= MAX_BATCH:
        raise ValueError(f"batch must be between 1 and {MAX_BATCH}, got {req.batch}")
    runtime, runner, eps, info = _eps_fn(pool, req.target)
    cfg = runtime.config
    sched = schedule_for(cfg)
    T = sched.num_train_timesteps
    sampler = make_sampler(req.sampler, sched, eta=req.eta, variance=req.variance, spacing=req.spacing,
                           use_clipped_model_output=req.use_clipped_model_output)
    steps = int(req.steps) if req.sampler == "ddim" else int(req.steps or T)
    c, s = int(cfg.get("channels", 1)), int(cfg.get("image_size", 28))
    shape = (int(req.batch), c, s, s)
    x_start = None
    if req.image is not None:
        if req.t_start is None or not 1 <= int(req.t_start) <= T:
            raise ValueError(f"denoising from an image needs a start time t between 1 and {T}")
        x_start = model_image(req.image, cfg)
        sampler.set_custom_timesteps(sdedit_timesteps(int(req.t_start) - 1, steps, T))
    else:
        sampler.set_timesteps(steps)
    t_begin = time.perf_counter()
    last = None
    pending: list[dict] = []
    delivered = 0.0  # the first step goes out at once: the user sees the run start
    visited = [int(t) for t in sampler.timesteps]
    t_prev = dict(zip(visited, visited[1:] + [-1]))
    for rec in sample_loop(eps, sampler, shape, req.seed, x_start=x_start):
        last = rec
        pending.append(DiffusionStep(rec["k"], rec["n"], rec["t"] + 1, t_prev[rec["t"]] + 1,
                                     rec["x_t"], rec["x0"], rec["eps"], rec["added"]))
        now = time.perf_counter()
        if now - delivered >= req.frame_interval_s and rec["k"] < rec["n"] - 1:  # the last goes with the result
            delivered = now
            yield Output.ran(runner, None, DiffusionSteps(tuple(pending)), final=False)
            pending = []
    assert last is not None
    samples = to_unit(last["prev"])
    final = image_grid(samples, cols=_cols(shape[0]))
    total_ms = (time.perf_counter() - t_begin) * 1000.0
    done = DiffusionDone(final, samples, last["n"], total_ms, info["model_ms"], tuple(pending), quantize(samples))
    yield Output.ran(runner, final, done, total_ms)


def forward(pool: RuntimePool, req: DiffusionForward) -> Output:
    cfg = pool.get(req.target.checkpoint, family="diffusion").config
    sched = schedule_for(cfg)
    T = sched.num_train_timesteps
    if not 0 <= int(req.t) <= T:
        raise ValueError(f"t must be between 0 and {T}, got {req.t}")
    x0 = model_image(req.image, cfg)
    # The same first draw sample_loop uses for SDEdit, so "denoise from t" starts from this picture.
    noise = np.random.default_rng(int(req.seed)).standard_normal(x0.shape, dtype=np.float32)
    x_t = sched.q_sample(x0, int(req.t) - 1, noise)
    ab = 1.0 if req.t == 0 else float(sched.alphas_cumprod[int(req.t) - 1])
    return Output(image_grid(to_unit(x_t), cols=1, pad=0), ForwardNoised(int(req.t), ab, x_t[0]), "numpy", "cpu")


HANDLERS = {DiffusionSample: sample, DiffusionForward: forward}


def register(renderer, pool: RuntimePool) -> None:
    """Register the diffusion handlers on a renderer (or anything with ``register``)."""
    for request_type, fn in HANDLERS.items():
        renderer.register(request_type, lambda req, fn=fn: fn(pool, req))


# ---- export of a recorded trajectory ---------------------------------------------------
def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image


def pick_frames(count: int, total: int) -> list[int]:
    """``count`` frame indices spread evenly over ``total`` frames, first and last included."""
    if total <= 0:
        return []
    count = max(1, min(count, total))
    return sorted(set(np.linspace(0, total - 1, count).round().astype(int).tolist()))


def export_gif(frames: list[np.ndarray], path: str | Path, fps: float = 20.0, scale: int = 4,
               max_frames: int = 200, hold_last_ms: int = 1000) -> Path:
    """Write uint8 frames as an animated GIF (at most ``max_frames``, evenly picked)."""
    from PIL import Image

    if not frames:
        raise ValueError("there is no recorded trajectory to export")
    idx = pick_frames(max_frames, len(frames))
    images = [Image.fromarray(_upscale(frames[i], scale)) for i in idx]
    path = Path(path)
    duration = [max(20, int(1000 / max(fps, 0.1)))] * len(images)
    duration[-1] = max(duration[-1], hold_last_ms)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                   loop=0, optimize=False)
    return path


def png_strip(frames: list[np.ndarray], count: int = 10, scale: int = 2) -> np.ndarray:
    """``count`` frames spread over the trajectory, side by side with a 2-pixel gap."""
    if not frames:
        raise ValueError("there is no recorded trajectory to export")
    picked = [_upscale(frames[i], scale) for i in pick_frames(count, len(frames))]
    h = max(f.shape[0] for f in picked)
    gap = np.zeros((h, 2) + picked[0].shape[2:], dtype=np.uint8)
    parts = []
    for f in picked:
        parts += [f, gap]
    return np.concatenate(parts[:-1], axis=1)


# ---- evaluation: many samples, batched --------------------------------------------------

def sample_for_evaluation(runtime, n: int, seed: int = 0, backend: str = "onnx", device: str = "auto",
                          sampler: str = "ddim", steps: int | None = None, eta: float = 0.0,
                          spacing: str = "leading", steps_offset: int = 0, set_alpha_to_one: bool = True,
                          use_clipped_model_output: bool = False, variance: str = "fixed_small", batch_size: int = 50,
                          progress=None) -> tuple[np.ndarray, float]:
    """``n`` samples from pure noise: float32 (n, C, H, W) in [0, 1], and ms per image.

    DDPM defaults to all T steps, DDIM to 50. Each batch draws its noise from its own seed,
    derived from (seed, batch index), so a batch replays alone. ``progress(done, total)``
    counts denoising steps over all batches.
    """
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    cfg = runtime.config
    sched = schedule_for(cfg)
    T = sched.num_train_timesteps
    steps = int(steps) if steps else (T if sampler == "ddpm" else 50)
    chooser = make_sampler(sampler, sched, eta=eta, variance=variance, spacing=spacing,
                           steps_offset=steps_offset, set_alpha_to_one=set_alpha_to_one,
                           use_clipped_model_output=use_clipped_model_output)
    chooser.set_timesteps(steps)
    c, s = int(cfg.get("channels", 1)), int(cfg.get("image_size", 28))

    def eps(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return runtime.run("eps", {"x": x, "t": t}, backend, device)[0]["eps"]

    eps(np.zeros((1, c, s, s), np.float32), np.zeros(1, np.float32))  # load the backend before the clock starts
    batches = [(start, min(batch_size, n - start)) for start in range(0, n, batch_size)]
    total, done = len(batches) * steps, 0
    parts = []
    t0 = time.perf_counter()
    for index, (_start, size) in enumerate(batches):
        batch_seed = int(np.random.SeedSequence([int(seed), index]).generate_state(1)[0])
        last = None
        for last in sample_loop(eps, chooser, (size, c, s, s), batch_seed):
            done += 1
            if progress is not None:
                progress(done, total)
        parts.append(to_unit(last["prev"]))
    ms_per_image = (time.perf_counter() - t0) * 1000.0 / n
    return np.concatenate(parts).astype(np.float32), ms_per_image
