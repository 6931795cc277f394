"""What the diffusion Explain pane says, with the current step's numbers (no Qt: plain functions).

Each ``*_explanation`` returns ``(text, equations)``: a short paragraph (plain
text, paragraphs separated by a blank line) and LaTeX equations for
matplotlib mathtext, the first symbolic and the next ones with today's
numbers put in. Times are the paper's: t = 0 is the clean image, x_t for
t = 1..T uses the model timestep t - 1, and alpha_bar(0) = 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape

import numpy as np

from studio.core.schedules import NoiseSchedule


@dataclass(frozen=True)
class StepNumbers:
    """The schedule's numbers at one step from x_t to x_{t'}:  x_{t'} = c_x0 x0_hat + c_xt x_t + c_eps eps_hat + sigma z."""

    sampler: str
    eta: float
    variance: str
    t: int
    t_prev: int
    alpha_bar: float
    alpha_bar_prev: float
    beta: float  # 1 - alpha_bar / alpha_bar_prev: the noise this jump removes
    c_x0: float
    c_xt: float
    c_eps: float
    sigma: float
    clipped_eps: bool = False  # DDIM's direction uses the noise the clipped x0 implies

    @property
    def sqrt_ab(self) -> float:
        return math.sqrt(self.alpha_bar)

    @property
    def sqrt_one_minus_ab(self) -> float:
        return math.sqrt(max(0.0, 1.0 - self.alpha_bar))

    @property
    def snr(self) -> float:
        return self.alpha_bar / max(1.0 - self.alpha_bar, 1e-12)


def alpha_bar_at(schedule: NoiseSchedule, t: int) -> float:
    """alpha_bar at paper time t (1 at t = 0)."""
    return 1.0 if t <= 0 else float(schedule.alphas_cumprod[int(t) - 1])


def step_numbers(schedule: NoiseSchedule, sampler: str, eta: float, variance: str, t: int, t_prev: int,
                 clipped_eps: bool = False) -> StepNumbers:
    """The coefficients ``studio.core.schedules`` uses for the step t -> t_prev (paper times).

    t = 0 (the finished sample) has no step: x_0 is itself, with no noise.
    """
    if t <= 0:
        return StepNumbers(sampler, eta, variance, 0, 0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    ab, ab_prev = alpha_bar_at(schedule, t), alpha_bar_at(schedule, t_prev)
    beta = 1.0 - ab / ab_prev
    b, b_prev = 1.0 - ab, 1.0 - ab_prev
    if sampler == "ddim":
        sigma = eta * math.sqrt(max(0.0, b_prev / b * beta)) if b > 0 else 0.0
        return StepNumbers(sampler, eta, variance, t, t_prev, ab, ab_prev, beta, math.sqrt(ab_prev), 0.0,
                           math.sqrt(max(0.0, b_prev - sigma ** 2)), sigma, bool(clipped_eps))
    var = beta if variance == "fixed_large" else max(b_prev / b * beta, 1e-20)
    sigma = math.sqrt(var) if t > 1 else 0.0  # the step to t = 0 adds no noise
    return StepNumbers(sampler, eta, variance, t, t_prev, ab, ab_prev, beta, math.sqrt(ab_prev) * beta / b,
                       math.sqrt(1.0 - beta) * b_prev / b, 0.0, sigma)


def snr_crossing(schedule: NoiseSchedule, level: float) -> int:
    """The last paper time t where SNR(t) is still >= ``level`` (0 if none)."""
    above = np.flatnonzero(schedule.snr() >= level)
    return int(above[-1]) + 1 if above.size else 0


@dataclass(frozen=True)
class ScheduleLandmarks:
    """Where the digit drowns: SNR = 1, 0.5 (about where a student stops seeing it) and 0.1."""

    snr_one: int
    snr_half: int
    snr_tenth: int

    @classmethod
    def of(cls, schedule: NoiseSchedule) -> "ScheduleLandmarks":
        return cls(snr_crossing(schedule, 1.0), snr_crossing(schedule, 0.5), snr_crossing(schedule, 0.1))


def plain_number(x: float) -> str:
    """A number short enough to read at a glance (plain text)."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2e}".replace("e-0", "e-")


def math_number(x: float) -> str:
    """The same number for mathtext: 1.87e-4 as 1.87 x 10^-4."""
    text = plain_number(x)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return rf"{mantissa}{{\times}}10^{{{int(exponent)}}}"


def forward_explanation(n: StepNumbers) -> tuple[str, list[str]]:
    """What x_t is made of at this t: the forward process with its numbers."""
    symbolic = r"x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon"
    if n.t == 0:
        return ("The sample is finished: at t = 0 no noise is left, x_0 is the picture itself. "
                "Scrub back to see how much of x_t was image and how much noise at each step.",
                [symbolic, r"x_0 = 1\,x_0 + 0\,\epsilon\quad(\bar\alpha_0 = 1)"])
    text = (f"At t = {n.t}, x_t keeps √ᾱ_t = {plain_number(n.sqrt_ab)} of the clean image x_0 and "
            f"√(1−ᾱ_t) = {plain_number(n.sqrt_one_minus_ab)} of Gaussian noise ε "
            f"(ᾱ_t = {plain_number(n.alpha_bar)}; signal-to-noise ratio SNR = ᾱ_t / (1−ᾱ_t) = {plain_number(n.snr)}).")
    return text, [symbolic,
                  rf"x_{{{n.t}}} = {math_number(n.sqrt_ab)}\,x_0 + {math_number(n.sqrt_one_minus_ab)}\,\epsilon"]


def update_explanation(n: StepNumbers) -> tuple[str, list[str]]:
    """This step's update, DDPM or DDIM, with the coefficients it uses now.

    The text writes the model's noise as ε_θ and its guess as "predicted x_0": a combining hat
    draws badly in a label. The formulas use the hats.
    """
    if n.t == 0:
        return "No step is left: the last update went to t = 0 and its result is the sample shown.", []
    lead = (f"The model predicts the noise ε_θ in x_t; its guess of the clean image is predicted x_0 = "
            f"(x_t − √(1−ᾱ_t) ε_θ) / √ᾱ_t (clipped to [−1, 1]), blurry early on as it divides by "
            f"√ᾱ_t = {plain_number(n.sqrt_ab)}. ")
    if n.sampler == "ddim":
        text = lead + (f"DDIM jumps to t′ = {n.t_prev}: predicted x_0 and ε_θ put back together with t′'s weights, "
                       f"plus fresh noise σ_t z, σ_t = η √β̃_t = {plain_number(n.sigma)} (η = {n.eta:g}).")
        if n.clipped_eps:
            text += (" With 'clip ε' on, the ε put back is the noise the clipped x_0 implies, "
                     "(x_t − √ᾱ_t x_0) / √(1−ᾱ_t), so the two terms agree where clipping cut x_0.")
        return text, [
            r"x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma_t^2}\,\hat\epsilon"
            r" + \sigma_t z",
            rf"x_{{{n.t_prev}}} = {math_number(n.c_x0)}\,\hat x_0 + {math_number(n.c_eps)}\,\hat\epsilon"
            rf" + {math_number(n.sigma)}\,z",
        ]
    which = "β_t (fixed large)" if n.variance == "fixed_large" else "β̃_t = β_t (1−ᾱ_t′)/(1−ᾱ_t) (fixed small)"
    text = lead + (f"DDPM steps to t′ = {n.t_prev} by sampling q(x_t′ | x_t, predicted x_0): its mean μ mixes "
                   f"predicted x_0 and x_t, its variance is {which}; β_t = {plain_number(n.beta)}, "
                   f"σ_t = {plain_number(n.sigma)}.")
    return text, [
        r"x_{t'} = \mu + \sigma_t z,\quad \mu = \frac{\sqrt{\bar\alpha_{t'}}\,\beta_t}{1-\bar\alpha_t}\,\hat x_0"
        r" + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t'})}{1-\bar\alpha_t}\,x_t",
        rf"x_{{{n.t_prev}}} = {math_number(n.c_x0)}\,\hat x_0 + {math_number(n.c_xt)}\,x_{{{n.t}}}"
        rf" + {math_number(n.sigma)}\,z",
    ]


def puzzles_explanation(n: StepNumbers, marks: ScheduleLandmarks) -> tuple[str, list[str]]:
    """What looks broken but is not: the grey 'noise added' view and x_t that stays noise for long."""
    if n.sampler == "ddim" and n.eta == 0:
        noise = ("'Noise added' is flat grey: with η = 0 DDIM adds no fresh noise (σ_t = 0), and the noise "
                 "views show ±2 standard deviations around mid-grey. Raise η, or pick DDPM, to see it.")
    else:
        noise = (f"'Noise added' is σ_t z, this step's fresh noise: σ_t = {plain_number(n.sigma)} against "
                 f"√(1−ᾱ_t) = {plain_number(n.sqrt_one_minus_ab)} already in x_t, so it looks faint. "
                 "The last step adds none.")
    visible = int(round(marks.snr_half, -1))
    hidden = (f"x_t looks like pure noise until t ≈ {visible}: in the schedule plot the SNR stays below 0.1 for "
              f"t > {marks.snr_tenth}, is 0.5 at t = {marks.snr_half} and crosses the dashed line SNR = 1 "
              f"only at t = {marks.snr_one}. The model sees the digit much earlier: compare predicted x_0.")
    return noise + "\n\n" + hidden, []  # the SNR's number is in the first paragraph


_SUBSCRIPT = re.compile(r"_((?:[^\W_]|′)+)")  # x_t, x_0, ε_θ, x_t′


def text_html(text: str) -> str:
    """Plain explanation text as HTML: x_t written as x with a subscript t (paragraphs at blank lines)."""
    return "<br><br>".join(_SUBSCRIPT.sub(r"<sub>\1</sub>", escape(p)) for p in text.split("\n\n") if p)


def explanation(n: StepNumbers, marks: ScheduleLandmarks) -> tuple[str, list[str]]:
    """The Explain pane's text (HTML) and equations for one step: what x_t is, the update, what looks broken."""
    parts = [("What x<sub>t</sub> is", forward_explanation(n)), ("This step", update_explanation(n)),
             ("Looks broken? It is not", puzzles_explanation(n, marks))]
    html = "".join(f"<p><b>{title}.</b> {text_html(text)}</p>" for title, (text, _) in parts)
    return html, [e for _, (_, equations) in parts for e in equations]
