"""GAN training: the loss zoo, exact resume (two networks, two optimisers, G_ema), the worker,
the recoloured digits, and a trained checkpoint opening in the explorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.data.datasets import ImageDataset
from studio.training.events import CheckpointWritten, Finished, Progress
from studio.training.options import TrainOptions

TINY = {
    "dcgan": {"width": 8, "z_dim": 16},
    "stylegan": {"widths": [16, 16, 8, 8], "z_dim": 16, "w_dim": 16, "d_width": 8},
}


@pytest.fixture(scope="module")
def digits(mnist_small):
    return ImageDataset(mnist_small.images[:256], mnist_small.labels[:256], "mnist-256")


def trainer_for(family, out, dataset, steps=8, **model):
    from studio.core.family import get_family

    opts = TrainOptions(family=family, out=str(out), steps=steps, batch_size=8, lr=1e-3, checkpoint_every=4,
                        preview_every=0, log_every=1, model={**TINY[family], **model})
    return get_family(family).load("trainer")(opts, dataset)


def losses(trainer, until=None):
    return [e.losses for e in trainer.run(until) if isinstance(e, Progress)]


def test_loss_zoo_formulas():
    from studio.families.dcgan.trainer import d_loss, g_loss, gradient_penalty

    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sp = torch.nn.functional.softplus
    torch.testing.assert_close(d_loss("ns", real, fake), sp(-real).mean() + sp(fake).mean())
    smoothed = d_loss("ns", real, fake, 0.1)  # BCE against 0.9 on the real side only
    torch.testing.assert_close(smoothed, (0.9 * sp(-real) + 0.1 * sp(real)).mean() + sp(fake).mean())
    torch.testing.assert_close(d_loss("lsgan", real, fake), 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean())
    torch.testing.assert_close(d_loss("hinge", real, fake), torch.relu(1 - real).mean() + torch.relu(1 + fake).mean())
    torch.testing.assert_close(d_loss("wgan-gp", real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(g_loss("ns", fake), sp(-fake).mean())
    torch.testing.assert_close(g_loss("hinge", fake), -fake.mean())
    # A linear critic has gradient a everywhere: the penalty is (|a| - 1)^2 exactly.
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.fill_(0.5)  # |a| = sqrt(12) / 2
    gp = gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2))
    assert float(gp.detach()) == pytest.approx((12 ** 0.5 / 2 - 1) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="unknown GAN loss 'bogus'"):
        d_loss("bogus", real, fake)


@pytest.mark.parametrize("loss", ["ns", "lsgan", "wgan-gp", "hinge"])
def test_every_loss_trains_a_few_finite_steps(tmp_path, digits, loss):
    torch.manual_seed(0)
    t = trainer_for("dcgan", tmp_path, digits, steps=3, loss=loss, d_steps=2, label_smoothing=0.1,
                    instance_noise=0.2)
    got = losses(t)
    assert len(got) == 3 and all(np.isfinite(v) for row in got for v in row.values())
    assert t.instance_noise_std() < 0.2  # decays with the step


def test_bad_gan_options_are_one_clear_message(tmp_path, digits):
    with pytest.raises(ValueError, match="unknown loss 'softmax'.*d_steps must be"):
        trainer_for("dcgan", tmp_path, digits, loss="softmax", d_steps=0)
    with pytest.raises(ValueError, match="unknown augment flip"):
        trainer_for("dcgan", tmp_path, digits, augment="translation,flip")


def test_d_augmentation_moves_or_hides_content_and_lets_gradients_through():
    from studio.families.dcgan.trainer import augment, cutout, translate

    torch.manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 7, 7] = 1.0  # one lit pixel per image
    moved = translate(x)
    spots = moved.flatten(1).argmax(1)
    rows, cols = spots // 16, spots % 16
    assert torch.all(moved.flatten(1).sum(1) == 1.0)  # moved, never lost, at most 2 px (1/8 of 16) away
    assert int((rows - 7).abs().max()) == 2 and int((cols - 7).abs().max()) == 2 and len(set(spots.tolist())) > 5
    holed = cutout(torch.ones(64, 1, 16, 16))
    assert torch.all((holed == 0).flatten(1).sum(1) == 64)  # an 8x8 square, set to the middle of [-1, 1]
    g = torch.randn(4, 1, 16, 16, requires_grad=True)
    augment(g, ("translation", "cutout")).sum().backward()
    assert float(g.grad.abs().sum()) > 0


@pytest.mark.parametrize("family, model", [
    ("dcgan", {"loss": "wgan-gp", "d_steps": 2, "instance_noise": 0.1, "augment": "translation,cutout"}),
    ("stylegan", {"loss": "ns", "r1_gamma": 0.1, "label_smoothing": 0.1, "instance_noise": 0.05}),
])
def test_resume_continues_exactly(tmp_path, digits, family, model):
    """8 straight steps == 4 steps, a checkpoint, a new trainer, 4 more: D, both optimisers, G_ema, RNG."""
    torch.set_num_threads(1)
    straight = trainer_for(family, tmp_path / "a", digits, **model)
    expected = losses(straight)
    first = trainer_for(family, tmp_path / "b", digits, **model)
    losses(first, until=6)  # "killed" at step 6: the checkpoint of step 4 is the last one
    resumed = trainer_for(family, tmp_path / "b", digits, **model)
    resumed.resume_from(tmp_path / "b" / "step_0000004.safetensors")
    assert resumed.step == 4
    got = losses(resumed)
    for key in expected[0]:
        np.testing.assert_allclose([r[key] for r in got], [r[key] for r in expected[4:]], rtol=1e-5, atol=1e-6)
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_checkpoint_weights_are_g_ema_and_w_avg_is_tracked(tmp_path, digits):
    from studio.engine.export import build_torch_model

    t = trainer_for("stylegan", tmp_path, digits, steps=4)
    assert float(t.generator.w_avg.abs().sum()) == 0.0
    losses(t)
    assert float(t.generator.w_avg.abs().sum()) > 0  # the running mean of w moved off zero
    torch.testing.assert_close(t.ema.w_avg, t.generator.w_avg)  # G_ema follows it (a buffer, copied)
    ckpt = t.to_checkpoint(with_training_state=False)
    for k, v in t.ema.state_dict().items():
        np.testing.assert_array_equal(ckpt.weights[k], v.numpy())
    assert not any(k.startswith(("disc", "module")) for k in ckpt.weights)
    g = build_torch_model(ckpt)  # the family's builder takes the checkpoint as it is
    assert g.cfg.channels == 3 and g.cfg.image_size == 32
    preview = t.preview()
    assert preview.shape[-1] == 3 and preview.dtype == np.uint8


def test_stylegan_mixing_regularisation_mixes_two_latents(tmp_path, digits):
    t = trainer_for("stylegan", tmp_path, digits, mixing_prob=1.0)
    seen = {}

    def spy(ws, noises=None, _orig=t.generator.synthesis.forward):
        seen["ws"] = ws.detach()
        return _orig(ws, noises)

    t.generator.synthesis.forward = spy
    with torch.no_grad():
        t.sample_fake(8)
    ws = seen["ws"]
    assert ws.shape == (8, 8, 16)
    for row in ws:  # each sample switches from one w to another at one layer
        changes = int((row[1:] - row[:-1]).abs().sum(dim=1).gt(1e-6).sum())
        assert changes == 1


def test_recoloured_digits(mnist_small):
    from studio.data.recolour import MIN_CONTRAST, grey_digits, recolour_digits

    grey = mnist_small.images[:64]
    rgb = recolour_digits(grey, seed=3)
    assert rgb.shape == (64, 3, 32, 32) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_array_equal(rgb, recolour_digits(grey, seed=3))  # made at load time, reproducibly
    assert not np.array_equal(rgb, recolour_digits(grey, seed=4))
    corners = rgb[:, :, 0, 0]
    assert np.ptp(corners, axis=0).min() > 0.5  # backgrounds of many colours
    ink = np.linalg.norm(rgb - corners[:, :, None, None], axis=1).reshape(64, -1).max(axis=1)
    assert ink.min() > 0.8 * MIN_CONTRAST
    back = grey_digits(rgb)[:, 0, 2:30, 2:30]
    # The grey view of a recoloured digit is the digit again (its strokes thinned or widened).
    r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(back, grey[:, 0])]
    assert min(r) > 0.6 and np.median(r) > 0.85
    strokes = (back > 0.5).reshape(64, -1).sum(axis=1) / (grey[:, 0] > 0.5).reshape(64, -1).sum(axis=1)
    assert strokes.max() / strokes.min() > 1.5  # stroke widths vary


def test_a_gan_trained_in_the_worker_resumes_and_opens_in_the_explorer(qtbot, tmp_path):
    import time

    from studio.families.stylegan.ui.explorer import GanExplorerPanel
    from studio.training.runs import options_for_resume
    from studio.training.worker import WorkerHandle
    from studio.ui.context import AppContext

    def pump(handle, until, timeout=240.0):
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen.extend(handle.poll())
            if until(seen):
                return seen
            assert handle.exitcode is None or until(seen + handle.poll()), handle.last_message()
            time.sleep(0.05)
        raise AssertionError(f"timed out; last: {handle.last_message()}")

    opts = TrainOptions(family="stylegan", out=str(tmp_path / "run"), steps=4, batch_size=8, lr=1e-3,
                        checkpoint_every=2, preview_every=2, threads=1, model=dict(TINY["stylegan"]))
    handles = [WorkerHandle(), WorkerHandle()]
    try:
        handles[0].start(opts)
        seen = pump(handles[0], lambda ev: any(isinstance(e, Finished) for e in ev))
        assert sum(isinstance(e, CheckpointWritten) for e in seen) >= 1
        assert handles[0].join(60) and handles[0].exitcode == 0  # it lets go of the run folder
        options, last = options_for_resume(tmp_path / "run", steps=6)
        plan = handles[1].start(options, resume=last)
        assert plan.start_step == 4
        seen = pump(handles[1], lambda ev: any(isinstance(e, Finished) for e in ev))
        assert [e.step for e in seen if isinstance(e, Progress)] == [5, 6]
    finally:
        for h in handles:
            h.kill()
            h.close()
    ctx = AppContext("torch", "cpu")  # no ONNX export needed for a fresh run
    ctx.checkpoints["stylegan"] = str(tmp_path / "run")  # a run folder: its newest checkpoint
    panel = GanExplorerPanel(ctx)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(panel.has_first_image, timeout=60000)
    assert panel.generated.image().shape == (32, 32, 3) and "step 6" in panel.info.text()
    panel.projection.shutdown()
    ctx.bridge.shutdown()
