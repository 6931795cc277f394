"""Noise schedules and step-by-step samplers for DDPM and DDIM (numpy only).

The interface follows diffusers' schedulers: ``set_timesteps(n)`` picks the
timesteps to visit, and ``step(model_output, t, x_t, noise)`` returns the
previous sample and the predicted x0. The arithmetic is float32 in the same
order as ``diffusers.DDPMScheduler`` / ``DDIMScheduler``, which parity tests
check to 1e-5 for every timestep spacing diffusers offers ("leading",
"trailing", "linspace", with ``steps_offset`` and, for DDIM,
``set_alpha_to_one``). The previous timestep is read from the sampler's own
list of timesteps; DDIM can instead step by the fixed stride T // n, as
diffusers' DDIMScheduler does (``prev_rule="stride"``).

All randomness comes from a ``numpy.random.Generator`` the caller owns:
``noise_like`` draws x_T and each step's noise from it, so one seed replays
one trajectory exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

F32 = np.float32


def linear_betas(timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """DDPM's linear schedule, bit for bit as ``torch.linspace`` computes it in float32."""
    start, end = F32(beta_start), F32(beta_end)
    if timesteps == 1:
        return np.array([start], dtype=F32)
    step = F32((end - start) / (timesteps - 1))
    i = np.arange(timesteps)
    return np.where(i < timesteps // 2, start + step * i, end - step * (timesteps - 1 - i)).astype(F32)


def cosine_betas(timesteps: int = 1000, max_beta: float = 0.999, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule (diffusers' ``squaredcos_cap_v2``)."""
    def alpha_bar(t: float) -> float:
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / timesteps) / alpha_bar(i / timesteps), max_beta)
             for i in range(timesteps)]
    return np.asarray(betas, dtype=F32)


@dataclass(frozen=True)
class NoiseSchedule:
    betas: np.ndarray  # float32 (T,)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NoiseSchedule":
        kind = config.get("schedule", "linear")
        T = int(config.get("timesteps", 1000))
        if kind == "linear":
            return cls(linear_betas(T, float(config.get("beta_start", 1e-4)), float(config.get("beta_end", 0.02))))
        if kind == "cosine":
            return cls(cosine_betas(T))
        raise ValueError(f"unknown noise schedule '{kind}' (choose linear or cosine)")

    @property
    def num_train_timesteps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def alphas(self) -> np.ndarray:
        return (F32(1.0) - self.betas).astype(F32)

    @property
    def alphas_cumprod(self) -> np.ndarray:
        # float64 products rounded once, as torch.cumprod's float32 result is.
        return np.cumprod(self.alphas.astype(np.float64)).astype(F32)

    def snr(self) -> np.ndarray:
        ab = self.alphas_cumprod.astype(np.float64)
        return ab / (1.0 - ab)

    def q_sample(self, x0: np.ndarray, t: int, noise: np.ndarray) -> np.ndarray:
        """A sample of q(x_t | x_0) = N(sqrt(ab_t) x0, (1 - ab_t) I); t = -1 means x0 itself."""
        if t < 0:
            return x0.astype(F32)
        ab = self.alphas_cumprod[int(t)]
        return (np.sqrt(ab) * x0 + np.sqrt(F32(1.0) - ab) * noise).astype(F32)


@dataclass
class StepOutput:
    prev_sample: np.ndarray  # x_{t_prev}
    pred_original_sample: np.ndarray  # predicted x0
    added_noise: np.ndarray  # the random part added at this step (sigma_t * z)

    def __iter__(self) -> Iterator[np.ndarray]:  # ``prev, x0 = sampler.step(...)``
        yield self.prev_sample
        yield self.pred_original_sample


SPACINGS = ("leading", "trailing", "linspace")


def spaced_timesteps(n: int, num_train_timesteps: int, spacing: str = "leading",
                     steps_offset: int = 0) -> np.ndarray:
    """``n`` decreasing timesteps out of T, as diffusers' ``timestep_spacing`` picks them.

    leading:  (n-1)k, ..., k, 0 with k = T // n, plus ``steps_offset`` (the DDIM paper's;
              with T = 1000, n = 50 the first step is t = 980, never the pure-noise 999).
    trailing: T - 1, T - 1 - T/n, ... rounded (Lin et al. 2024: start at the last timestep).
    linspace: n points from T - 1 down to 0 inclusive, rounded.
    ``steps_offset`` applies to leading only, as in diffusers (Stable Diffusion uses 1).
    """
    T = int(num_train_timesteps)
    if not 1 <= n <= T:
        raise ValueError(f"number of steps must be between 1 and {T}, got {n}")
    if spacing == "leading":
        ts = (np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64) + int(steps_offset)
    elif spacing == "trailing":
        points = np.round(np.arange(T, 0, -T / n))
        # arange's float end can add a point that rounds to 0 (n = 61, 103, ... for T = 1000);
        # diffusers keeps it as timestep -1, which indexes the schedule from the end. Drop it.
        ts = points[points > 0].astype(np.int64) - 1
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
    else:
        raise ValueError(f"unknown timestep spacing '{spacing}' (choose {', '.join(SPACINGS)})")
    if ts[0] >= T or ts[-1] < 0:
        raise ValueError(f"{spacing} spacing with steps_offset={steps_offset} gives timesteps outside "
                         f"[0, {T}) for {n} steps; use fewer steps or a smaller offset")
    return ts.copy()


class _Sampler:
    stochastic = True

    def __init__(self, schedule: NoiseSchedule, clip_sample: bool = True, clip_range: float = 1.0,
                 spacing: str = "leading", steps_offset: int = 0):
        if spacing not in SPACINGS:
            raise ValueError(f"unknown timestep spacing '{spacing}' (choose {', '.join(SPACINGS)})")
        if int(steps_offset) < 0:
            raise ValueError(f"steps_offset must be 0 or more, got {steps_offset}")
        self.schedule = schedule
        self.alphas_cumprod = schedule.alphas_cumprod
        self.num_train_timesteps = schedule.num_train_timesteps
        self.clip_sample = clip_sample
        self.clip_range = F32(clip_range)
        self.spacing = spacing
        self.steps_offset = int(steps_offset)
        self.timesteps = np.arange(self.num_train_timesteps)[::-1].copy()
        self.num_inference_steps: int | None = None
        self._stride: int | None = None  # T // n after set_timesteps; None for custom timesteps

    def set_timesteps(self, n: int) -> np.ndarray:
        """Visit ``n`` timesteps, spaced by this sampler's ``spacing`` (see ``spaced_timesteps``)."""
        self.timesteps = spaced_timesteps(n, self.num_train_timesteps, self.spacing, self.steps_offset)
        self.num_inference_steps = int(n)
        self._stride = self.num_train_timesteps // int(n)
        return self.timesteps

    def set_custom_timesteps(self, timesteps) -> np.ndarray:
        """Visit exactly these timesteps (strictly decreasing, within [0, T))."""
        ts = np.asarray(list(timesteps), dtype=np.int64)
        if ts.size == 0 or ts[0] >= self.num_train_timesteps or ts[-1] < 0 or np.any(np.diff(ts) >= 0):
            raise ValueError("custom timesteps must be strictly decreasing and within [0, T)")
        self.timesteps = ts.copy()
        self.num_inference_steps = int(ts.size)
        self._stride = None
        return self.timesteps

    @property
    def timesteps(self) -> np.ndarray:
        return self._timesteps

    @timesteps.setter
    def timesteps(self, timesteps) -> None:
        self._timesteps = np.asarray(timesteps)
        listed = [int(t) for t in self._timesteps]
        # Looked up once or twice per denoising step: a dict, not a search of the list each time.
        self._next = dict(zip(listed, listed[1:] + [-1]))

    def previous_timestep(self, t: int) -> int:
        """The timestep after ``t`` in this sampler's list; -1 after the last one."""
        try:
            return self._next[int(t)]
        except KeyError:
            raise ValueError(f"timestep {t} is not in this sampler's list of timesteps") from None

    def alpha_bar(self, t: int) -> np.float32:
        return self.alphas_cumprod[t] if t >= 0 else F32(1.0)

    def _pred_x0(self, eps: np.ndarray, x_t: np.ndarray, a_t: np.float32) -> np.ndarray:
        b_t = F32(1.0) - a_t
        # Multiply by the reciprocal: torch divides by a scalar that way, and at large t
        # (1/sqrt(ab) ~ 150) the last bit matters for the 1e-5 parity with diffusers.
        x0 = (x_t - np.sqrt(b_t) * eps) * (F32(1.0) / np.sqrt(a_t))
        if self.clip_sample:
            x0 = np.clip(x0, -self.clip_range, self.clip_range)
        return x0.astype(F32)

    def needs_noise(self, t: int) -> bool:
        return True

    def timesteps_from(self, t_start: int) -> np.ndarray:
        """The part of the list at or below ``t_start`` (for denoising from a noised image)."""
        return self.timesteps[self.timesteps <= int(t_start)]


class DDPMSampler(_Sampler):
    """Ancestral sampling from the posterior q(x_{t-1} | x_t, x0_pred)."""

    name = "ddpm"

    def __init__(self, schedule: NoiseSchedule, variance: str = "fixed_small", clip_sample: bool = True,
                 clip_range: float = 1.0, spacing: str = "leading", steps_offset: int = 0):
        super().__init__(schedule, clip_sample, clip_range, spacing, steps_offset)
        if variance not in ("fixed_small", "fixed_large"):
            raise ValueError(f"unknown DDPM variance '{variance}' (fixed_small or fixed_large)")
        self.variance = variance

    def step_variance(self, t: int) -> np.float32:
        prev = self.previous_timestep(t)
        a_t, a_prev = self.alpha_bar(t), self.alpha_bar(prev)
        beta_t = F32(1.0) - a_t / a_prev
        if self.variance == "fixed_large":
            return F32(beta_t)
        # beta tilde: the true posterior variance when x0 is known.
        return F32(max((F32(1.0) - a_prev) / (F32(1.0) - a_t) * beta_t, F32(1e-20)))

    def needs_noise(self, t: int) -> bool:
        return int(t) > 0

    def step(self, model_output: np.ndarray, t: int, x_t: np.ndarray,
             noise: np.ndarray | None = None) -> StepOutput:
        t = int(t)
        prev = self.previous_timestep(t)
        a_t, a_prev = self.alpha_bar(t), self.alpha_bar(prev)
        b_t, b_prev = F32(1.0) - a_t, F32(1.0) - a_prev
        cur_alpha = a_t / a_prev
        cur_beta = F32(1.0) - cur_alpha
        x0 = self._pred_x0(model_output, x_t, a_t)
        c_x0 = (np.sqrt(a_prev) * cur_beta) / b_t
        c_xt = np.sqrt(cur_alpha) * b_prev / b_t
        mean = (c_x0 * x0 + c_xt * x_t).astype(F32)
        if t > 0:
            if noise is None:
                raise ValueError("DDPM needs noise for every step but the last")
            added = (np.sqrt(self.step_variance(t)) * noise).astype(F32)
        else:
            added = np.zeros_like(mean)
        return StepOutput((mean + added).astype(F32), x0, added)


PREV_RULES = ("list", "stride")


class DDIMSampler(_Sampler):
    """DDIM (Song et al. 2021): eta = 0 deterministic, eta = 1 DDPM-like.

    ``set_alpha_to_one``: the last step lands on alpha_bar = 1, the clean image (True),
    or on alpha_bar(0), one noise level short of it (False, as Stable Diffusion's
    config has it). ``use_clipped_model_output``: after x0 is clipped, point the
    step's direction along the noise that the clipped x0 implies, not the raw
    prediction (diffusers' option of that name); without it a clipped x0 and the
    raw noise disagree, and a deterministic run drifts off the data at few steps.
    ``prev_rule``: "list" steps to the next timestep in the list;
    "stride" steps to t - T // n as diffusers' DDIMScheduler does. They agree for
    leading spacing and for trailing when n divides T; otherwise "stride" lands
    between the listed timesteps (diffusers' behaviour, kept for parity).
    """

    name = "ddim"

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0, clip_sample: bool = True,
                 clip_range: float = 1.0, spacing: str = "leading", steps_offset: int = 0,
                 set_alpha_to_one: bool = True, prev_rule: str = "list",
                 use_clipped_model_output: bool = False):
        super().__init__(schedule, clip_sample, clip_range, spacing, steps_offset)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"DDIM eta must be between 0 and 1, got {eta}")
        if prev_rule not in PREV_RULES:
            raise ValueError(f"unknown prev_rule '{prev_rule}' (choose {', '.join(PREV_RULES)})")
        self.eta = float(eta)
        self.set_alpha_to_one = bool(set_alpha_to_one)
        self.prev_rule = prev_rule
        self.use_clipped_model_output = bool(use_clipped_model_output)
        self.final_alpha_cumprod = F32(1.0) if set_alpha_to_one else self.alphas_cumprod[0]

    def alpha_bar(self, t: int) -> np.float32:
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    def previous_timestep(self, t: int) -> int:
        if self.prev_rule == "stride" and self._stride is not None:
            if int(t) not in self._next:
                raise ValueError(f"timestep {t} is not in this sampler's list of timesteps")
            return max(int(t) - self._stride, -1)
        return super().previous_timestep(t)

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.eta > 0

    def needs_noise(self, t: int) -> bool:
        return self.eta > 0

    def step(self, model_output: np.ndarray, t: int, x_t: np.ndarray,
             noise: np.ndarray | None = None) -> StepOutput:
        t = int(t)
        prev = self.previous_timestep(t)
        a_t, a_prev = self.alpha_bar(t), self.alpha_bar(prev)
        b_t, b_prev = F32(1.0) - a_t, F32(1.0) - a_prev
        x0 = self._pred_x0(model_output, x_t, a_t)
        variance = (b_prev / b_t) * (F32(1.0) - a_t / a_prev)
        std = F32(self.eta) * np.sqrt(variance)
        eps = model_output
        if self.use_clipped_model_output:
            eps = ((x_t - np.sqrt(a_t) * x0) / np.sqrt(b_t)).astype(F32)
        direction = np.sqrt(F32(1.0) - a_prev - std ** 2) * eps
        prev_sample = (np.sqrt(a_prev) * x0 + direction).astype(F32)
        if self.eta > 0:
            if noise is None:
                raise ValueError("DDIM with eta > 0 needs noise for every step")
            added = (std * noise).astype(F32)
            prev_sample = (prev_sample + added).astype(F32)
        else:
            added = np.zeros_like(prev_sample)
        return StepOutput(prev_sample, x0, added)


def sdedit_timesteps(t_start: int, steps: int, num_train_timesteps: int) -> np.ndarray:
    """Timesteps from ``t_start`` down to 0 for denoising a noised image.

    Spaced like a ``steps``-step run over the full range: ceil(steps * (t_start+1) / T)
    timesteps, always starting exactly at ``t_start``.
    """
    t_start = int(np.clip(t_start, 0, num_train_timesteps - 1))
    n = max(1, int(math.ceil(steps * (t_start + 1) / num_train_timesteps)))
    ts = np.unique(np.linspace(t_start, 0, n).round().astype(np.int64))[::-1]
    return ts.copy()


SAMPLERS = ("ddpm", "ddim")


def make_sampler(name: str, schedule: NoiseSchedule, eta: float = 0.0, variance: str = "fixed_small",
                 clip_sample: bool = True, spacing: str = "leading", steps_offset: int = 0,
                 set_alpha_to_one: bool = True, use_clipped_model_output: bool = False) -> _Sampler:
    if name == "ddpm":
        return DDPMSampler(schedule, variance=variance, clip_sample=clip_sample, spacing=spacing,
                           steps_offset=steps_offset)
    if name == "ddim":
        return DDIMSampler(schedule, eta=eta, clip_sample=clip_sample, spacing=spacing,
                           steps_offset=steps_offset, set_alpha_to_one=set_alpha_to_one,
                           use_clipped_model_output=use_clipped_model_output)
    raise ValueError(f"unknown sampler '{name}' (choose {', '.join(SAMPLERS)})")


def noise_like(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape, dtype=F32)


def sample_loop(eps_fn, sampler: _Sampler, shape: tuple[int, ...], seed: int,
                x_start: np.ndarray | None = None, t_start: int | None = None) -> Iterator[dict[str, Any]]:
    """Run ``sampler`` to the end, yielding every step's record.

    ``eps_fn(x, t_batch) -> eps``. With ``x_start`` (a clean image in model
    space) and ``t_start``, the image is first noised to the first visited
    timestep at or below ``t_start`` by q(x_t | x0) and denoised from there
    (SDEdit). All noise is drawn from ``numpy.random.default_rng(seed)``: x_T
    (or the forward-process noise) first, then one draw per stochastic step.
    """
    rng = np.random.default_rng(int(seed))
    steps = sampler.timesteps if t_start is None else sampler.timesteps_from(t_start)
    if len(steps) == 0:
        raise ValueError(f"no sampler timestep at or below t={t_start}")
    first = noise_like(rng, shape)
    if x_start is None:
        x = first
    else:
        x = sampler.schedule.q_sample(np.broadcast_to(x_start, shape), int(steps[0]), first)
    for k, t in enumerate(steps):
        tb = np.full((shape[0],), float(t), dtype=F32)
        eps = np.asarray(eps_fn(x, tb), dtype=F32)
        noise = noise_like(rng, shape) if sampler.needs_noise(int(t)) else None
        out = sampler.step(eps, int(t), x, noise)
        yield {"k": k, "n": len(steps), "t": int(t), "x_t": x, "eps": eps,
               "x0": out.pred_original_sample, "added": out.added_noise, "prev": out.prev_sample}
        x = out.prev_sample
