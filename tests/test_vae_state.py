"""The VAE explorer's state and numbers, without Qt: plain pytest."""

import numpy as np
import pytest

from studio.engine.latent import plane_point
from studio.families.vae.analysis import VaeElbo, VaeUsage, bernoulli_nll, elbo, kl_per_dim, usage
from studio.families.vae.state import SPAN, VaeExplorerState
from studio.families.vae.ui.explain import ELBO_EQUATION, explain


def opened(dim: int) -> VaeExplorerState:
    s = VaeExplorerState()
    s.open(f"vae_{dim}d.safetensors", dim)
    return s


def test_opening_a_model_drops_what_belonged_to_the_old_one():
    s = opened(16)
    s.set_z(np.ones(16))
    s.set_endpoint("a")
    s.set_endpoint("b", np.zeros(16))
    s.set_encoded("seven.png", np.full(16, 0.5), np.full(16, 0.1))
    s.set_dim_kl(np.linspace(1, 2, 16), "test")
    s.open("vae_2d.safetensors", 2)
    assert s.z.shape == (2,) and not s.z.any()
    assert s.z_a is None and s.z_b is None and s.encoded is None and s.dim_kl is None
    assert s.interpolation_hint().startswith("Set A and B")


def test_map_axes_stay_distinct_after_switching_from_16d_to_2d():
    # The bug: with map x = 5 on the 16-D model, opening the 2-D one clamped x to 1 and set y to 1:
    # both axes z[1], both boxes disabled, the map one image repeated along each row.
    s = opened(16)
    assert s.set_map_dims(5, 1) == (5, 1)
    s.open("vae_2d.safetensors", 2)
    assert s.map_dims == (0, 1) and not s.map_axes_editable
    s.open("vae_1d.safetensors", 1)
    assert s.map_dims == (0, 0)


def test_choosing_the_same_axis_twice_moves_the_other_away():
    s = opened(16)
    s.set_map_dims(3, 7)
    assert s.set_map_dims(7, 7) == (7, 3)  # x moved onto y: y takes x's old value
    assert s.set_map_dims(7, 7) == (3, 7)  # y moved onto x: x takes y's old value
    assert s.set_map_dims(7, 20) == (7, 15)  # clamped into range


def test_kl_orders_the_sliders_and_picks_the_map_axes():
    s = opened(6)
    kl = np.array([0.01, 2.5, 0.8, 3.1, 0.02, 1.0])
    s.set_dim_kl(kl, "500 held-out MNIST digits")
    assert s.slider_order() == [3, 1, 5, 2, 4, 0]
    assert s.map_dims == (1, 3)  # the two most used, lower index across
    assert s.inactive_dims() == [0, 4]
    assert "KL 3.10" in s.dim_label(3)
    assert "inactive (posterior collapse)" in s.dim_tooltip(0) and "500 held-out" in s.dim_tooltip(0)
    assert "inactive" not in s.dim_tooltip(3)
    with pytest.raises(ValueError, match="5 KL values for a 6-D latent"):
        s.set_dim_kl(np.ones(5))


def test_the_map_slice_moves_only_off_the_plane():
    s = opened(4)
    s.set_map_dims(0, 2)
    before = s.map_slice()
    s.set_plane_point(1.5, -2.0)
    assert s.map_slice() == before
    assert s.z[0] == pytest.approx(1.5) and s.z[2] == pytest.approx(-2.0)
    z = s.z.copy()
    z[1] = 0.7
    s.set_z(z)
    assert s.map_slice() != before


def test_a_map_click_and_the_marker_agree():
    s = opened(2)
    s.set_map_point(0.25, 0.1)
    assert tuple(s.z) == pytest.approx(plane_point(0.25, 0.1, SPAN), abs=1e-6)
    assert s.map_marker() == pytest.approx((0.25, 0.1), abs=1e-6)


def test_encoding_sets_z_clipped_and_reports_the_elbo():
    s = opened(3)
    s.set_encoded("digit.png", [0.5, -4.0, 1.0], [0.2, 0.3, 0.4])
    assert s.z.tolist() == pytest.approx([0.5, -SPAN, 1.0])
    assert s.encoded_summary().startswith("digit.png: μ = (+0.50, -4.00, +1.00)")
    s.set_elbo(120.25, 10.5, [0.5, -4.0, 1.0], [0.2, 0.3, 0.4], "digit.png")
    assert "−ELBO 130.8 nats = reconstruction 120.2 + KL 10.5" in s.encoded_summary()


def test_the_explanation_carries_the_numbers_on_screen():
    s = opened(16)
    text, equations = explain(s)
    assert "Measuring" in text and equations[0] == ELBO_EQUATION
    s.set_dim_kl(np.r_[np.full(15, 1.0), 0.001], "500 digits")
    s.set_elbo(101.04, 23.46, np.linspace(-1, 1, 16), np.full(16, 0.25), "the decoded image")
    text, equations = explain(s)
    assert "reconstruction 101.0 nats + KL 23.5 nats = −ELBO 124.5 nats" in text
    assert "1 dimension(s) below" in text and "inactive" in text
    assert r"124.5 = 101.0 + 23.5" in equations[1]
    assert r"z_{0} = -1.00 + 0.25\,\epsilon_{0}" in equations[3]


def test_kl_and_reconstruction_match_their_closed_forms():
    import torch
    from torch.nn import functional as F

    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    expected = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar))
    np.testing.assert_allclose(kl_per_dim(mu, logvar), expected, rtol=1e-12)
    x, p = rng.random((2, 1, 5, 5)), rng.uniform(0.01, 0.99, (2, 1, 5, 5))
    ref = F.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(x), reduction="none").sum(dim=(1, 2, 3))
    np.testing.assert_allclose(bernoulli_nll(x, p), ref.numpy(), rtol=1e-9)


def test_usage_falls_back_to_re_encoded_samples_and_elbo_matches_the_model(tiny_vae_path, tmp_path):
    import torch

    from studio.engine.renderer import run_to_end
    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool
    from studio.families.vae.model import VAE, VAEConfig

    pool = RuntimePool()
    target = Target(str(tiny_vae_path), "torch", "cpu")
    out = run_to_end(usage(pool, VaeUsage(target, data=str(tmp_path / "missing"), count=64)))
    assert out.payload.source == "64 decoded prior samples, re-encoded"
    assert out.payload.kl.shape == (3,) and (out.payload.kl >= 0).all()

    x = np.random.default_rng(1).random((1, 28, 28)).astype(np.float32)
    measured = elbo(pool, VaeElbo(target, pixels=x.tobytes(), about="noise"))
    model = pool.get(str(tiny_vae_path), family="vae").torch_model()
    assert isinstance(model, VAE) and isinstance(model.cfg, VAEConfig)
    with torch.no_grad():
        mu, logvar = model.encoder(torch.from_numpy(x)[None])
        kl = float(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp()))
        torch.manual_seed(0)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(4000, 3)
        logits = model.decoder.logits(z)
        target_x = torch.from_numpy(x)[None].expand_as(logits)
        recon = float(torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target_x, reduction="none").sum(dim=(1, 2, 3)).mean())
    assert measured.payload.kl == pytest.approx(kl, rel=1e-4)
    assert measured.payload.recon == pytest.approx(recon, rel=0.01)  # 16 samples vs 4000
