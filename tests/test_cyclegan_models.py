"""The CycleGAN's networks and graphs: shapes on any multiple-of-4 size, clear refusals, ONNX == torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch


from studio.families.cyclegan.model import (
    CycleGANConfig, PatchDiscriminator, ResnetGenerator, build_generators, check_size,
)


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (1, 1, 8, 8), (3, 1, 48, 64), (1, 3, 36, 20)])
def test_generator_keeps_any_multiple_of_4_shape_and_stays_in_tanh_range(shape):
    torch.manual_seed(0)
    g = ResnetGenerator(shape[1], width=4, blocks=2).eval()
    with torch.no_grad():
        y = g(torch.rand(shape) * 2 - 1)
    assert y.shape == shape
    assert float(y.abs().max()) <= 1.0 and float(y.std()) > 0


def test_instance_norm_makes_a_translation_independent_of_its_batch():
    torch.manual_seed(0)
    g = ResnetGenerator(1, width=4, blocks=1).eval()
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(g(x)[1:2], g(x[1:2]))


def test_patch_discriminator_scores_a_grid_of_patches():
    d = PatchDiscriminator(1, width=8, layers=2)
    assert d(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 6, 6)  # the 70x70 PatchGAN scaled to digits


def test_bad_sizes_and_options_are_named():
    with pytest.raises(ValueError, match="multiples of 4, at least 8; this one is 30x32"):
        check_size(32, 30)
    with pytest.raises(ValueError, match="channels must be 1 or 3, not 2; image_size 30 must be a multiple of 4"):
        CycleGANConfig.from_dict({"image_size": 30, "channels": 2})
    with pytest.raises(ValueError, match="blocks must be a whole number"):
        build_generators({"blocks": 0})


def test_the_shipped_pair_holds_both_directions():
    model = build_generators({"width": 4, "blocks": 1})
    keys = set(model.state_dict())
    assert any(k.startswith("G_AB.") for k in keys) and any(k.startswith("G_BA.") for k in keys)


def test_onnx_and_torch_generators_agree_on_any_size(cyclegan_path):  # noqa: F811
    from studio.engine.runtime import ModelRuntime

    runtime = ModelRuntime(cyclegan_path)
    rng = np.random.default_rng(0)
    for graph in ("G_AB", "G_BA"):
        onnx = runtime.backend(graph, "onnx", "cpu")
        assert onnx.name == "onnx" and onnx.path.name == f"tiny_cyclegan.{graph}.onnx"  # the sidecar, not an export
        torch_backend = runtime.backend(graph, "torch", "cpu")
        for shape in [(1, 1, 32, 32), (3, 1, 32, 32), (2, 1, 40, 56)]:
            x = {"image": rng.random(shape, dtype=np.float32)}
            a, b = onnx.run(x)["translated"], torch_backend.run(x)["translated"]
            assert a.shape == shape
            np.testing.assert_allclose(a, b, atol=1e-4)
    # Each direction is its own network.
    x = {"image": rng.random((1, 1, 32, 32), dtype=np.float32)}
    ab = runtime.backend("G_AB", "onnx", "cpu").run(x)["translated"]
    ba = runtime.backend("G_BA", "onnx", "cpu").run(x)["translated"]
    assert np.abs(ab - ba).mean() > 1e-3
