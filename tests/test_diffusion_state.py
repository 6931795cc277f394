"""The diffusion panel's Qt-free logic: playback rules and the Explain pane's numbers (plain pytest)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.schedules import NoiseSchedule, make_sampler
from studio.families.diffusion.state import DiffusionState, StepFrame, finished_frame
from studio.families.diffusion.ui import explain_content as explain


def frames(n: int, start: int = 0, total: int = 10) -> list[StepFrame]:
    img = np.zeros((1, 1, 2, 2), np.uint8)
    return [StepFrame(k, total, 1000 - 100 * k, 900 - 100 * k, {"x_t": img}) for k in range(start, start + n)]


def finished_run(steps: int = 10) -> DiffusionState:
    s = DiffusionState()
    s.begin_recording()
    s.record(frames(steps, total=steps))
    s.record([finished_frame(steps, np.zeros((1, 1, 2, 2), np.uint8))])
    s.stop_recording()
    return s


def test_play_after_a_finished_sample_replays_from_the_start():
    s = finished_run()
    assert s.count() == 11 and s.current == 10 and s.finished() and s.frame().final
    assert s.play() and s.playing and s.current == 0
    assert s.tick() and s.current == 1


def test_playing_to_the_end_stops_there_unless_looping():
    s = finished_run(3)
    s.play()
    while s.tick():
        pass
    assert not s.playing and s.current == 3
    s.loop = True
    s.play()  # from the end: starts over
    for _ in range(3):
        assert s.tick()
    assert s.current == 3 and s.tick() and s.current == 0 and s.playing


def test_rewind_goes_to_the_start_and_keeps_playing_or_pausing():
    s = finished_run()
    s.seek(6)
    assert s.rewind() and s.current == 0 and not s.playing
    s.seek(6)
    s.play()
    s.rewind()
    assert s.current == 0 and s.playing
    assert not s.rewind()  # already there: nothing to redraw


def test_step_back_and_forward_pause_and_stay_in_bounds():
    s = finished_run()
    s.seek(1)
    s.play()
    assert s.step(-1) and s.current == 0 and not s.playing
    assert not s.step(-1) and s.current == 0
    s.seek(10)
    assert not s.step(1) and s.current == 10
    assert s.seek(-5) is True and s.current == 0
    assert s.seek(99) and s.current == 10


def test_nothing_to_play_with_fewer_than_two_frames():
    s = DiffusionState()
    assert not s.play() and not s.playing and s.frame() is None
    assert not s.step(1) and s.current == 0
    s.begin_recording()
    s.record(frames(1))
    assert not s.play()


def test_recording_follows_the_newest_step_unless_the_user_moved_away():
    s = DiffusionState()
    s.begin_recording()
    assert s.record(frames(3)) and s.current == 2
    assert s.record(frames(2, start=3)) and s.current == 4
    s.step(-2)  # the user looks at an earlier step: new steps do not pull them away
    assert not s.record(frames(2, start=5)) and s.current == 2
    s.seek(s.count() - 1)
    assert s.record(frames(1, start=7)) and s.current == 7
    assert not s.finished()  # still recording, no finished sample yet
    assert s.recorded_with.sampler == "ddim" and s.recorded_with.steps == 50


def test_loop_does_not_restart_while_still_recording():
    s = DiffusionState(loop=True)
    s.begin_recording()
    s.record(frames(3))
    s.seek(0)
    s.play()
    assert s.tick() and s.tick() and s.current == 2
    assert not s.tick() and not s.playing  # stays on the newest step, which then follows new ones
    assert s.record(frames(1, start=3)) and s.current == 3


def test_sampler_switch_moves_default_steps_only():
    s = DiffusionState()
    s.set_sampler("ddpm")
    assert s.steps == 1000
    s.steps = 200
    s.set_sampler("ddim")
    assert s.steps == 200 and s.sampler == "ddim"
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        s.set_sampler("euler")


def test_frame_labels():
    assert frames(1)[0].label() == "step 1 of 10, t = 1000"
    assert finished_frame(50, np.zeros((1, 1, 2, 2), np.uint8)).label() == "done: 50 steps, t = 0"


# --- the Explain pane's numbers are the samplers' own ---------------------------------------
SCHEDULE = NoiseSchedule.from_config({})


@pytest.mark.parametrize("name, eta, variance, steps", [
    ("ddim", 0.0, "fixed_small", 50), ("ddim", 0.7, "fixed_small", 50),
    ("ddpm", 0.0, "fixed_small", 1000), ("ddpm", 0.0, "fixed_large", 20),
])
def test_step_coefficients_reproduce_the_sampler_update(name, eta, variance, steps):
    sampler = make_sampler(name, SCHEDULE, eta=eta, variance=variance)
    timesteps = sampler.set_timesteps(steps)
    rng = np.random.default_rng(0)
    for tau in (timesteps[0], timesteps[len(timesteps) // 2], timesteps[-2], timesteps[-1]):
        x_t, eps, z = (rng.standard_normal((1, 1, 6, 6)).astype(np.float32) for _ in range(3))
        out = sampler.step(eps, int(tau), x_t, z)
        n = explain.step_numbers(SCHEDULE, name, eta, variance, int(tau) + 1, sampler.previous_timestep(tau) + 1)
        predicted = n.c_x0 * out.pred_original_sample + n.c_xt * x_t + n.c_eps * eps + n.sigma * z
        # The sampler works in float32 (1 - ab/ab_prev loses digits when beta ~ 1e-4); the pane in float64.
        np.testing.assert_allclose(predicted, out.prev_sample, rtol=2e-4, atol=2e-5)


def test_forward_numbers_at_t():
    n = explain.step_numbers(SCHEDULE, "ddim", 0.0, "fixed_small", 781, 761)
    ab = float(SCHEDULE.alphas_cumprod[780])
    assert n.alpha_bar == pytest.approx(ab) and n.sqrt_ab == pytest.approx(np.sqrt(ab))
    assert n.snr == pytest.approx(ab / (1 - ab))
    text, equations = explain.forward_explanation(n)
    assert "t = 781" in text and f"√ᾱ_t = {np.sqrt(ab):.3f}" in text
    assert equations[1] == rf"x_{{781}} = {np.sqrt(ab):.3f}\,x_0 + {np.sqrt(1 - ab):.3f}\,\epsilon"


def test_update_explanation_names_the_samplers_coefficients():
    ddim = explain.step_numbers(SCHEDULE, "ddim", 0.0, "fixed_small", 781, 761)
    text, equations = explain.update_explanation(ddim)
    assert "σ_t = η √β̃_t = 0 (η = 0)" in text
    assert rf"x_{{761}} = {ddim.c_x0:.3f}\,\hat x_0 + {ddim.c_eps:.3f}\,\hat\epsilon + 0\,z" in equations
    ddpm = explain.step_numbers(SCHEDULE, "ddpm", 0.0, "fixed_small", 500, 499)
    text, equations = explain.update_explanation(ddpm)
    assert "DDPM steps to t′ = 499" in text
    c_x0, c_xt = explain.math_number(ddpm.c_x0), explain.math_number(ddpm.c_xt)
    assert c_x0.endswith("10^{-3}")  # 1.87e-3 written as mathtext, not "1.87e-3"
    assert any(rf"x_{{499}} = {c_x0}\,\hat x_0 + {c_xt}\,x_{{500}}" in e for e in equations)
    assert ddpm.sigma > 0 and explain.step_numbers(SCHEDULE, "ddpm", 0, "fixed_small", 1, 0).sigma == 0


def test_puzzles_explain_the_grey_noise_and_the_late_digit():
    marks = explain.ScheduleLandmarks.of(SCHEDULE)
    snr = SCHEDULE.snr()
    assert snr[marks.snr_one - 1] >= 1 > snr[marks.snr_one]  # the linear schedule: t = 259
    ddim = explain.step_numbers(SCHEDULE, "ddim", 0.0, "fixed_small", 781, 761)
    text, _ = explain.puzzles_explanation(ddim, marks)
    assert "flat grey" in text and "η = 0" in text
    assert f"crosses the dashed line SNR = 1 only at t = {marks.snr_one}" in text
    assert f"pure noise until t ≈ {round(marks.snr_half, -1)}" in text
    stochastic = explain.step_numbers(SCHEDULE, "ddim", 1.0, "fixed_small", 781, 761)
    assert "flat grey" not in explain.puzzles_explanation(stochastic, marks)[0]


def test_the_finished_sample_has_no_step():
    n = explain.step_numbers(SCHEDULE, "ddpm", 0.0, "fixed_small", 0, 0)
    assert n.alpha_bar == 1 and n.sigma == 0
    assert "finished" in explain.forward_explanation(n)[0]
    assert explain.update_explanation(n)[1] == []


def test_the_pane_text_is_html_with_subscripts_and_all_three_parts():
    marks = explain.ScheduleLandmarks.of(SCHEDULE)
    n = explain.step_numbers(SCHEDULE, "ddim", 0.0, "fixed_small", 781, 761)
    html, equations = explain.explanation(n, marks)
    assert html.count("<p><b>") == 3 and "x<sub>t</sub>" in html and "x_t" not in html
    assert "At t = 781" in html and "t′ = 761" in html and "flat grey" in html
    assert equations[0].startswith("x_t = ") and equations[1].startswith("x_{781} = ")
    assert equations[3].startswith("x_{761} = ") and len(equations) == 4  # the forward process and the update
    assert f"SNR = ᾱ<sub>t</sub> / (1−ᾱ<sub>t</sub>) = {explain.plain_number(n.snr)}" in html
