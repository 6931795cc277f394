"""DDPM / DDIM samplers: parity with diffusers, closed forms, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.schedules import (
    DDIMSampler,
    DDPMSampler,
    NoiseSchedule,
    cosine_betas,
    linear_betas,
    sample_loop,
)



@pytest.fixture(scope="module")
def diffusers():
    """The reference implementation, for the parity tests only: the closed-form tests run without it."""
    return pytest.importorskip("diffusers")


SHAPE = (2, 1, 8, 8)


def _schedule(kind: str) -> NoiseSchedule:
    return NoiseSchedule.from_config({"schedule": kind, "timesteps": 1000})


def _diffusers_config(kind: str) -> dict:
    return {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
            "beta_schedule": "linear" if kind == "linear" else "squaredcos_cap_v2"}


def _x0_tol(sampler, t) -> float:
    """1e-5, times the amplification of x0 = (x - sqrt(1-ab) eps) / sqrt(ab).

    torch's float32 sqrt is not always correctly rounded (numpy's is), and at
    large t a last-bit difference in sqrt(1-ab) is multiplied by 1/sqrt(ab),
    up to 157 at t=999. The previous sample is compared at a flat 1e-5.
    """
    return 1e-5 * max(1.0, float(1.0 / np.sqrt(sampler.alphas_cumprod[int(t)])))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_matches_diffusers(kind, diffusers):
    ref = diffusers.DDPMScheduler(**_diffusers_config(kind))
    ours = _schedule(kind)
    np.testing.assert_array_equal(ours.betas, ref.betas.numpy())
    np.testing.assert_array_equal(ours.alphas_cumprod, ref.alphas_cumprod.numpy())
    if kind == "linear":
        assert ours.betas[0] == pytest.approx(1e-4) and ours.betas[-1] == pytest.approx(0.02)


@pytest.mark.parametrize("kind,variance,clip,steps", [
    ("linear", "fixed_small", True, 1000),
    ("linear", "fixed_large", True, 50),
    ("linear", "fixed_small", False, 37),
    ("cosine", "fixed_small", True, 100),
    ("cosine", "fixed_large", False, 10),
])
def test_ddpm_step_matches_diffusers(kind, variance, clip, steps, diffusers):
    ref = diffusers.DDPMScheduler(**_diffusers_config(kind), variance_type=variance, clip_sample=clip)
    ours = DDPMSampler(_schedule(kind), variance=variance, clip_sample=clip)
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=g)
    visited = list(ours.timesteps)
    if steps > 60:  # keep the test fast: the first, a middle stretch and the last steps
        visited = visited[:5] + visited[len(visited) // 2: len(visited) // 2 + 5] + visited[-5:]
    for t in visited:
        eps = torch.randn(SHAPE, generator=g) * 0.9
        seed = int(t) + 7
        out_ref = ref.step(eps, int(t), x, generator=torch.Generator().manual_seed(seed))
        noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed)).numpy()
        out = ours.step(eps.numpy(), int(t), x.numpy(), noise if t > 0 else None)
        np.testing.assert_allclose(out.pred_original_sample, out_ref.pred_original_sample.numpy(),
                                   rtol=1e-6, atol=_x0_tol(ours, t))
        # Without clipping x can grow to ~100; float32 then allows ~1 ulp (1e-6 relative).
        np.testing.assert_allclose(out.prev_sample, out_ref.prev_sample.numpy(), rtol=1e-6, atol=1e-5)
        x = out_ref.prev_sample


@pytest.mark.parametrize("kind,eta,steps,clip", [
    ("linear", 0.0, 50, True),
    ("linear", 0.0, 1000, True),
    ("linear", 0.5, 7, True),
    ("linear", 1.0, 333, False),
    ("cosine", 0.3, 25, True),
])
def test_ddim_step_matches_diffusers(kind, eta, steps, clip, diffusers):
    ref = diffusers.DDIMScheduler(**_diffusers_config(kind), clip_sample=clip, set_alpha_to_one=True)
    ours = DDIMSampler(_schedule(kind), eta=eta, clip_sample=clip)
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(SHAPE, generator=g)
    visited = list(ours.timesteps)
    if steps > 60:
        visited = visited[:5] + visited[len(visited) // 2: len(visited) // 2 + 5] + visited[-5:]
    for t in visited:
        eps = torch.randn(SHAPE, generator=g) * 0.9
        noise = torch.randn(SHAPE, generator=g)
        out_ref = ref.step(eps, int(t), x, eta=eta, variance_noise=noise)
        out = ours.step(eps.numpy(), int(t), x.numpy(), noise.numpy())
        if clip:
            np.testing.assert_allclose(out.pred_original_sample, out_ref.pred_original_sample.numpy(),
                                       rtol=0, atol=_x0_tol(ours, t))
        np.testing.assert_allclose(out.prev_sample, out_ref.prev_sample.numpy(), rtol=0, atol=1e-5)
        x = out_ref.prev_sample


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_clipped_model_output_matches_diffusers(eta, diffusers):
    ref = diffusers.DDIMScheduler(**_diffusers_config("linear"), clip_sample=True, set_alpha_to_one=True,
                                  timestep_spacing="trailing")
    ours = DDIMSampler(_schedule("linear"), eta=eta, spacing="trailing", use_clipped_model_output=True)
    plain = DDIMSampler(_schedule("linear"), eta=eta, spacing="trailing")
    ref.set_timesteps(50)
    ours.set_timesteps(50)
    plain.set_timesteps(50)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(SHAPE, generator=g)
    differs = []
    for t in ours.timesteps:
        eps = torch.randn(SHAPE, generator=g) * 0.9
        noise = torch.randn(SHAPE, generator=g)
        out_ref = ref.step(eps, int(t), x, eta=eta, variance_noise=noise, use_clipped_model_output=True)
        out = ours.step(eps.numpy(), int(t), x.numpy(), noise.numpy())
        np.testing.assert_allclose(out.prev_sample, out_ref.prev_sample.numpy(), rtol=0, atol=1e-5)
        differs.append(not np.allclose(plain.step(eps.numpy(), int(t), x.numpy(), noise.numpy()).prev_sample,
                                       out.prev_sample, atol=1e-5))
        x = out_ref.prev_sample
    # At high noise x0 leaves [-1, 1] and is clipped, so the two directions part there.
    assert differs[0] and any(differs)


def test_previous_timestep_comes_from_the_list():
    s = DDIMSampler(_schedule("linear"))
    ts = s.set_timesteps(7)
    assert list(ts) == [852, 710, 568, 426, 284, 142, 0]
    assert s.previous_timestep(852) == 710 and s.previous_timestep(0) == -1
    with pytest.raises(ValueError):
        s.previous_timestep(851)


def test_ddpm_fixed_small_is_the_posterior_variance():
    sched = _schedule("linear")
    s = DDPMSampler(sched)
    s.set_timesteps(1000)
    ab, b = sched.alphas_cumprod.astype(np.float64), sched.betas.astype(np.float64)
    for t in (1, 10, 500, 999):
        assert s.step_variance(t) == pytest.approx((1 - ab[t - 1]) / (1 - ab[t]) * b[t], rel=1e-3)
    s_large = DDPMSampler(sched, variance="fixed_large")
    s_large.set_timesteps(1000)
    assert s_large.step_variance(500) == pytest.approx(b[500], rel=1e-4)


def _oracle(x0: np.ndarray, sched: NoiseSchedule):
    """A model that predicts the true noise: eps = (x_t - sqrt(ab) x0) / sqrt(1 - ab)."""
    ab = sched.alphas_cumprod.astype(np.float64)

    def eps(x, t):
        a = ab[int(t[0])]
        return ((x - np.sqrt(a) * x0) / np.sqrt(1 - a)).astype(np.float32)
    return eps


@pytest.mark.parametrize("name,steps", [("ddim", 50), ("ddim", 1000), ("ddpm", 1000), ("ddpm", 20)])
def test_true_noise_model_recovers_x0(name, steps):
    sched = _schedule("linear")
    x0 = np.random.default_rng(3).uniform(-0.9, 0.9, SHAPE).astype(np.float32)
    s = DDIMSampler(sched, eta=0.0) if name == "ddim" else DDPMSampler(sched)
    s.set_timesteps(steps)
    records = list(sample_loop(_oracle(x0, sched), s, SHAPE, seed=5))
    assert len(records) == steps
    for r in records[:: max(1, steps // 10)]:  # predicted x0 is exact at every step
        np.testing.assert_allclose(r["x0"], x0, atol=2e-3)
    np.testing.assert_allclose(records[-1]["prev"], x0, atol=1e-4)


def test_ddim_eta0_is_deterministic_and_seeds_replay():
    sched = _schedule("linear")
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 1, 1, 1)).astype(np.float32)

    def eps(x, t):
        return np.tanh(x * w + t[:, None, None, None] / 1000).astype(np.float32)

    def run(sampler, seed):
        sampler.set_timesteps(20)
        return np.stack([r["prev"] for r in sample_loop(eps, sampler, SHAPE, seed)])

    a = run(DDIMSampler(sched, eta=0.0), 11)
    b = run(DDIMSampler(sched, eta=0.0), 11)
    np.testing.assert_array_equal(a, b)
    # Deterministic given x_T: the only randomness is x_T, no step adds noise.
    recs = list(sample_loop(eps, DDIMSampler(sched, eta=0.0), SHAPE, 11))
    assert all(not r["added"].any() for r in recs)
    # Stochastic samplers replay exactly with the same seed and differ with another.
    for make in (lambda: DDPMSampler(sched), lambda: DDIMSampler(sched, eta=0.7)):
        p, q, r = run(make(), 4), run(make(), 4), run(make(), 5)
        np.testing.assert_array_equal(p, q)
        assert np.abs(p - r).max() > 0.1


def test_sdedit_starts_from_forward_process():
    sched = _schedule("linear")
    x0 = np.full(SHAPE, 0.5, np.float32)
    s = DDIMSampler(sched)
    s.set_timesteps(50)
    recs = list(sample_loop(_oracle(x0, sched), s, SHAPE, seed=2, x_start=x0, t_start=300))
    assert recs[0]["t"] == 300 and len(recs) == 16
    first_noise = np.random.default_rng(2).standard_normal(SHAPE, dtype=np.float32)
    np.testing.assert_allclose(recs[0]["x_t"], sched.q_sample(x0, 300, first_noise), atol=1e-6)
    np.testing.assert_allclose(recs[-1]["prev"], x0, atol=1e-4)


def test_q_sample_at_t_minus_one_is_identity_and_betas_helpers():
    sched = _schedule("linear")
    x0 = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    np.testing.assert_array_equal(sched.q_sample(x0, -1, np.zeros_like(x0)), x0)
    assert linear_betas(10).shape == (10,) and cosine_betas(10).max() <= 0.999
    with pytest.raises(ValueError):
        NoiseSchedule.from_config({"schedule": "quadratic"})
    with pytest.raises(ValueError):
        DDIMSampler(sched, eta=1.5)


# ---- timestep spacings: leading, trailing, linspace, steps_offset, set_alpha_to_one -------

SPACING_STEPS = sorted(set(range(1, 1001, 37)) | {10, 50, 61, 103, 250, 998, 1000})


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
@pytest.mark.parametrize("spacing,offset", [("leading", 0), ("leading", 1), ("trailing", 0), ("linspace", 0)])
def test_timesteps_match_diffusers_for_every_spacing(scheduler, spacing, offset, diffusers):
    cls = diffusers.DDPMScheduler if scheduler == "ddpm" else diffusers.DDIMScheduler
    ref = cls(**_diffusers_config("linear"), timestep_spacing=spacing, steps_offset=offset)
    ours = (DDPMSampler if scheduler == "ddpm" else DDIMSampler)(_schedule("linear"), spacing=spacing,
                                                                   steps_offset=offset)
    for n in SPACING_STEPS:
        ref.set_timesteps(n)
        theirs = ref.timesteps.numpy()
        if spacing == "leading" and offset and n == 1000:  # diffusers would index alpha_bar[1000]
            assert theirs[0] == 1000
            with pytest.raises(ValueError, match="outside"):
                ours.set_timesteps(n)
            continue
        if theirs[-1] < 0:  # diffusers' trailing arange overshoots for some n: t = -1 is not a step
            assert spacing == "trailing" and len(theirs) == n + 1
            theirs = theirs[:-1]
        np.testing.assert_array_equal(ours.set_timesteps(n), theirs, err_msg=f"{spacing} n={n}")
        assert len(ours.timesteps) == n and np.all(np.diff(ours.timesteps) < 0)


def _run_against(ref, ours, steps, seed, eta=None):
    """Step both samplers through their (equal) timesteps from one x_T with one noise stream."""
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=g)
    for t in list(ours.timesteps):
        eps = torch.randn(SHAPE, generator=g) * 0.9
        noise = torch.randn(SHAPE, generator=g)
        if eta is None:  # DDPM: diffusers draws its own noise from a generator
            out_ref = ref.step(eps, int(t), x, generator=torch.Generator().manual_seed(int(t)))
            noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(int(t)))
            out = ours.step(eps.numpy(), int(t), x.numpy(), noise.numpy() if ours.needs_noise(t) else None)
        else:
            out_ref = ref.step(eps, int(t), x, eta=eta, variance_noise=noise)
            out = ours.step(eps.numpy(), int(t), x.numpy(), noise.numpy())
        np.testing.assert_allclose(out.pred_original_sample, out_ref.pred_original_sample.numpy(),
                                   rtol=1e-6, atol=_x0_tol(ours, t))
        np.testing.assert_allclose(out.prev_sample, out_ref.prev_sample.numpy(), rtol=1e-6, atol=1e-5)
        x = out_ref.prev_sample
    return x.numpy()


@pytest.mark.parametrize("spacing,offset,alpha_to_one,steps,eta", [
    ("leading", 1, False, 50, 0.0),  # Stable Diffusion's DDIM config
    ("leading", 0, False, 20, 0.5),
    ("trailing", 0, True, 50, 0.0),
    ("trailing", 0, False, 7, 1.0),  # 7 does not divide 1000: diffusers' stride misses the list
    ("linspace", 0, True, 50, 0.0),
    ("linspace", 0, False, 13, 0.3),
])
def test_ddim_spacings_match_diffusers(spacing, offset, alpha_to_one, steps, eta, diffusers):
    ref = diffusers.DDIMScheduler(**_diffusers_config("linear"), timestep_spacing=spacing, steps_offset=offset,
                                  set_alpha_to_one=alpha_to_one)
    ours = DDIMSampler(_schedule("linear"), eta=eta, spacing=spacing, steps_offset=offset,
                       set_alpha_to_one=alpha_to_one, prev_rule="stride")
    _run_against(ref, ours, steps, seed=3, eta=eta)
    # Past the last timestep lies the clean image only with set_alpha_to_one.
    assert ours.alpha_bar(-1) == (1.0 if alpha_to_one else ours.alphas_cumprod[0]) and ours.alphas_cumprod[0] < 1.0


@pytest.mark.parametrize("spacing,offset,steps,variance", [
    ("leading", 1, 50, "fixed_small"),
    ("trailing", 0, 50, "fixed_small"),
    ("trailing", 0, 7, "fixed_large"),
    ("linspace", 0, 13, "fixed_small"),
])
def test_ddpm_spacings_match_diffusers(spacing, offset, steps, variance, diffusers):
    ref = diffusers.DDPMScheduler(**_diffusers_config("linear"), timestep_spacing=spacing, steps_offset=offset,
                                  variance_type=variance)
    ours = DDPMSampler(_schedule("linear"), variance=variance, spacing=spacing, steps_offset=offset)
    _run_against(ref, ours, steps, seed=4)


def test_list_and_stride_rules_agree_where_the_stride_lands_on_the_list():
    sched = _schedule("linear")
    for spacing, steps in (("leading", 7), ("leading", 50), ("trailing", 50), ("trailing", 8)):
        by_list = DDIMSampler(sched, spacing=spacing)
        by_stride = DDIMSampler(sched, spacing=spacing, prev_rule="stride")
        ts = by_list.set_timesteps(steps)
        by_stride.set_timesteps(steps)
        assert [by_list.previous_timestep(t) for t in ts] == [by_stride.previous_timestep(t) for t in ts]
    # Where it does not, the list rule still walks the list and ends on the clean image.
    s = DDIMSampler(sched, spacing="trailing")
    ts = s.set_timesteps(7)
    assert list(ts) == [999, 856, 713, 570, 428, 285, 142]
    assert [s.previous_timestep(t) for t in ts] == [856, 713, 570, 428, 285, 142, -1]
    stride = DDIMSampler(sched, spacing="trailing", prev_rule="stride")
    stride.set_timesteps(7)
    assert stride.previous_timestep(999) == 857 and stride.previous_timestep(142) == 0


def test_spacing_options_are_checked():
    sched = _schedule("linear")
    with pytest.raises(ValueError, match="unknown timestep spacing"):
        DDIMSampler(sched, spacing="quadratic")
    with pytest.raises(ValueError, match="steps_offset"):
        DDPMSampler(sched, steps_offset=-1)
    with pytest.raises(ValueError, match="prev_rule"):
        DDIMSampler(sched, prev_rule="nearest")


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_true_noise_model_recovers_x0_with_every_spacing(spacing):
    sched = _schedule("linear")
    x0 = np.random.default_rng(8).uniform(-0.9, 0.9, SHAPE).astype(np.float32)
    s = DDIMSampler(sched, spacing=spacing)
    s.set_timesteps(50)
    records = list(sample_loop(_oracle(x0, sched), s, SHAPE, seed=1))
    assert records[0]["t"] == {"leading": 980, "trailing": 999, "linspace": 999}[spacing]
    np.testing.assert_allclose(records[-1]["prev"], x0, atol=1e-4)
