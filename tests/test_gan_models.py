"""The GAN models and their ONNX graphs: shapes, the modulated convolution, truncation, parity."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from studio.engine.runtime import ModelRuntime
from studio.families.dcgan.model import DCGANConfig, Discriminator, Generator
from studio.families.stylegan.model import ModulatedConv, StyleDiscriminator, StyleGANConfig, StyleGenerator


def test_stylegan_has_eight_styles_from_4_to_32_pixels():
    cfg = StyleGANConfig(widths=[16, 16, 8, 8])
    g = StyleGenerator(cfg)
    assert cfg.num_layers == 8 and len(g.synthesis.layers) == 8
    assert [s[-1] for s in g.synthesis.noise_shapes(2)] == [4, 4, 8, 8, 16, 16, 32, 32]
    image = g(torch.randn(3, cfg.z_dim))
    assert image.shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="one entry per resolution"):
        StyleGANConfig.from_dict({"widths": [16, 16]})


def test_non_fused_modulated_conv_equals_the_fused_grouped_conv():
    """x*s -> conv -> demodulate is StyleGAN2's per-sample modulated weight, computed per batch."""
    torch.manual_seed(0)
    layer = ModulatedConv(w_dim=8, c_in=5, c_out=6, noise=False, activate=False)
    with torch.no_grad():
        layer.bias.normal_()
    x, w = torch.randn(4, 5, 7, 7), torch.randn(4, 8)
    ours = layer(x, w)
    style = layer.affine(w)
    weight = layer.weight[None] * layer.scale * style[:, None, :, None, None]  # (B, out, in, k, k)
    weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    fused = F.conv2d(x.reshape(1, -1, 7, 7), weight.reshape(-1, 5, 3, 3), padding=1, groups=4)
    fused = fused.reshape(4, 6, 7, 7) + layer.bias[None, :, None, None]
    torch.testing.assert_close(ours, fused, atol=1e-5, rtol=1e-5)


def test_truncation_psi_zero_gives_w_avg_below_the_cutoff_only():
    g = StyleGenerator(StyleGANConfig(widths=[16, 16, 8, 8])).eval()
    g.w_avg.normal_()
    ws = g.broadcast(g.mapping(torch.randn(5, 64)))
    out = g.truncate(ws, psi=0.0, cutoff=4)
    torch.testing.assert_close(out[:, :4], g.w_avg.expand(5, 4, -1))
    torch.testing.assert_close(out[:, 4:], ws[:, 4:])


def test_noise_strengths_are_learned_per_channel():
    g = StyleGenerator(StyleGANConfig(widths=[16, 16, 8, 8]))
    names = [n for n, _ in g.named_parameters() if n.endswith("noise_strength")]
    assert len(names) == 8
    assert g.synthesis.layers[6].noise_strength.shape == (8,)


def test_discriminators_have_no_batch_norm():
    """No BatchNorm buffers in D: safe under DDP (pytorch #175024) and for the gradient penalty."""
    for d in (Discriminator(DCGANConfig()), StyleDiscriminator(StyleGANConfig(widths=[16, 16, 8, 8]))):
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())
        assert len(list(d.buffers())) == 0


def test_dcgan_shapes_and_range():
    cfg = DCGANConfig(width=8)
    g, d = Generator(cfg).eval(), Discriminator(cfg)
    with torch.no_grad():
        x = g(torch.randn(4, cfg.z_dim))
    assert x.shape == (4, 1, 28, 28) and float(x.abs().max()) <= 1.0
    assert d(x).shape == (4,)


@pytest.mark.parametrize("refine", [1, 3])
def test_dcgan_refine_adds_full_resolution_convolutions_and_off_keeps_the_papers_layout(refine):
    plain, refined = Generator(DCGANConfig(width=8)), Generator(DCGANConfig(width=8, refine=refine))
    convs = [m for m in refined.up if isinstance(m, torch.nn.Conv2d) and not isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == refine and refined.up[-1].__class__ is torch.nn.Tanh
    with torch.no_grad():
        assert refined.eval()(torch.randn(2, 64)).shape == (2, 1, 28, 28)
    # Without refine the last transposed convolution writes the image, as in the paper.
    assert isinstance(plain.up[-2], torch.nn.ConvTranspose2d) and plain.up[-2].out_channels == 1
    with pytest.raises(ValueError, match="refine"):
        DCGANConfig.from_dict({"refine": 9})


def test_dcgan_minibatch_std_lets_d_see_a_batch_without_variety():
    torch.manual_seed(0)
    d = Discriminator(DCGANConfig(width=8, minibatch_std=True))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())
    one = torch.rand(1, 1, 28, 28) * 2 - 1
    varied = torch.cat([one, torch.rand(3, 1, 28, 28) * 2 - 1])
    same = one.expand(4, 1, 28, 28)
    with torch.no_grad():
        # The same first image scores differently beside copies of itself than beside other images.
        assert float((d(varied)[0] - d(same)[0]).abs()) > 1e-4
        assert d(varied).shape == (4,)


def _feed(runtime, batch, seed):
    rng = np.random.default_rng(seed)
    cfg = runtime.config
    feed = {f"w{i}": rng.standard_normal((batch, cfg["w_dim"])).astype(np.float32) for i in range(8)}
    for i, res in enumerate([4, 4, 8, 8, 16, 16, 32, 32]):
        feed[f"noise{i}"] = rng.standard_normal((batch, 1, res, res)).astype(np.float32)
    return feed


@pytest.mark.parametrize("batch", [1, 7])
def test_stylegan_onnx_matches_torch_with_style_and_noise_inputs(stylegan_path, batch):
    runtime = ModelRuntime(stylegan_path)
    feed = _feed(runtime, batch, batch)
    got, onnx_runner = runtime.run("synthesis", feed, "onnx", "cpu")
    ref, _ = runtime.run("synthesis", feed, "torch", "cpu")
    assert onnx_runner.name == "onnx" and got["image"].shape == (batch, 3, 32, 32)
    assert float(np.abs(got["image"] - ref["image"]).max()) <= 1e-4
    # The inputs matter: other noise and other styles give another image.
    other = dict(feed, noise7=np.zeros_like(feed["noise7"]), w0=feed["w1"])
    assert float(np.abs(runtime.run("synthesis", other, "onnx", "cpu")[0]["image"] - got["image"]).max()) > 1e-3
    z = np.random.default_rng(batch).standard_normal((batch, 64)).astype(np.float32)
    w_onnx = runtime.run("mapping", {"z": z}, "onnx", "cpu")[0]["w"]
    w_torch = runtime.run("mapping", {"z": z}, "torch", "cpu")[0]["w"]
    assert w_onnx.shape == (batch, 64) and float(np.abs(w_onnx - w_torch).max()) <= 1e-4


def test_stylegan_synthesis_graph_has_no_custom_ops_and_a_dynamic_batch(stylegan_path):
    import onnx

    path = ModelRuntime(stylegan_path).onnx_file("synthesis")
    model = onnx.load(str(path))
    assert {op.domain for op in model.opset_import} <= {"", "ai.onnx"}
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    names = [i.name for i in model.graph.input]
    assert names == [f"w{i}" for i in range(8)] + [f"noise{i}" for i in range(8)]
    for graph_input in model.graph.input:
        assert graph_input.type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed batch


@pytest.mark.parametrize("batch", [1, 7])
def test_dcgan_onnx_matches_torch(dcgan_path, batch):
    runtime = ModelRuntime(dcgan_path)
    z = np.random.default_rng(batch).standard_normal((batch, 64)).astype(np.float32)
    got = runtime.run("generate", {"z": z}, "onnx", "cpu")[0]["image"]
    ref = runtime.run("generate", {"z": z}, "torch", "cpu")[0]["image"]
    assert got.shape == (batch, 1, 28, 28) and 0.0 <= got.min() and got.max() <= 1.0
    assert float(np.abs(got - ref).max()) <= 1e-4
