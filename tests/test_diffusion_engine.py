"""Diffusion engine: UNet graph on ONNX vs torch, streamed sampling, forward process, trainer."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from studio.families.diffusion import ops  # noqa: E402
from studio.engine.renderer import Renderer  # noqa: E402
from studio.engine.runtime import RuntimePool  # noqa: E402
from studio.core.schedules import DDIMSampler, NoiseSchedule, sdedit_timesteps  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "studio" / "checkpoints" / "unet_ddpm_mnist.safetensors"


def make_tiny_unet(path: Path) -> Path:
    """A small random UNet (28 -> 14, attention at 14) with non-trivial outputs; same bytes every time."""
    import torch

    from studio.families.diffusion.model import UNet, UNetConfig
    from studio.core.checkpoint import Checkpoint, save_checkpoint

    torch.manual_seed(0)
    cfg = UNetConfig(base=8, mults=(1, 2), attn_res=(14,), groups=4)
    model = UNet(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0.0, 0.08)
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return save_checkpoint(Checkpoint("diffusion", cfg.to_dict(), weights, "random", 0), path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_unet(tmp_path_factory.mktemp("unet") / "tiny_unet.safetensors"))


@pytest.fixture(scope="module")
def pool():
    return RuntimePool()


def test_unet_sizes_and_optional_attention():
    import torch

    from studio.families.diffusion.model import SelfAttention, build_unet

    plain = build_unet({"base": 8, "groups": 4, "attn_res": [], "mid_attn": False})
    assert not any(isinstance(m, SelfAttention) for m in plain.modules())
    attn = build_unet({"base": 8, "groups": 4, "image_size": 32, "mults": [1, 2, 2], "attn_res": [8]})
    assert sum(isinstance(m, SelfAttention) for m in attn.modules()) == 3  # down 8x8, middle, up 8x8
    with torch.no_grad():
        assert plain(torch.randn(2, 1, 28, 28), torch.tensor([1.0, 999.0])).shape == (2, 1, 28, 28)
        assert attn(torch.randn(2, 1, 32, 32), torch.tensor([1.0, 999.0])).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="not divisible"):
        build_unet({"image_size": 28, "mults": [1, 2, 2, 2]})


def _inputs(batch=3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    t = np.array([0.0, 321.0, 999.0][:batch], dtype=np.float32)
    return {"x": x, "t": t}


def test_onnx_and_torch_unet_agree(pool, tiny):
    rt = pool.get(tiny, family="diffusion")
    onnx_out, runner = rt.run("eps", _inputs(), "onnx", "cpu")
    torch_out, _ = rt.run("eps", _inputs(), "torch", "cpu")
    assert runner.name == "onnx"
    assert float(np.abs(torch_out["eps"]).mean()) > 0.05  # a real signal, not zeros
    assert float(np.abs(onnx_out["eps"] - torch_out["eps"]).max()) <= 1e-4
    # The time input matters.
    other = dict(_inputs(), t=np.array([999.0, 0.0, 321.0], np.float32))
    assert np.abs(rt.run("eps", other, "onnx", "cpu")[0]["eps"] - onnx_out["eps"]).max() > 1e-3


@pytest.mark.skipif(not SHIPPED.exists(), reason="shipped diffusion checkpoint not trained yet")
def test_shipped_unet_onnx_matches_torch(pool):
    rt = pool.get(SHIPPED, family="diffusion")
    onnx_out, _ = rt.run("eps", _inputs(), "onnx", "cpu")
    torch_out, _ = rt.run("eps", _inputs(), "torch", "cpu")
    assert float(np.abs(onnx_out["eps"] - torch_out["eps"]).max()) <= 1e-4
    assert rt.config["image_size"] == 28 and SHIPPED.stat().st_size < 8_000_000


def recorded_steps(outputs) -> list:
    """Every step a sample delivered, in order, whichever delivery carried it."""
    return [step for o in outputs for step in o.payload.steps]


def test_sampling_records_every_step_and_replays_a_seed(pool, tiny):
    target = ops.Target(tiny, "onnx", "cpu")
    req = ops.DiffusionSample(target, "ddim", steps=10, eta=0.5, seed=3, batch=2, frame_interval_s=0.0)
    outs = list(ops.sample(pool, req))
    partial, final = outs[:-1], outs[-1]
    # Interval 0: each step is its own delivery, the last one rides with the finished sample.
    assert len(partial) == 9 and all(not o.final for o in partial) and final.final
    steps = recorded_steps(outs)
    s = DDIMSampler(NoiseSchedule.from_config({}))
    assert all(isinstance(o.payload, ops.DiffusionSteps) for o in partial)
    assert isinstance(final.payload, ops.DiffusionDone)
    assert [st.t for st in steps] == [int(t) + 1 for t in s.set_timesteps(10)]
    assert [st.k for st in steps] == list(range(10))
    for st in steps:
        assert all(a.dtype == np.float32 and a.shape == (2, 1, 28, 28) for a in (st.x_t, st.x0, st.eps, st.added))
        assert ops.tile(ops.step_images(st.x_t, st.x0, st.eps, st.added)["x_t"]).shape == (30, 59)
    assert final.payload.samples.shape == (2, 1, 28, 28)
    np.testing.assert_array_equal(ops.tile(final.payload.final_images), final.payload.final)
    again = recorded_steps(ops.sample(pool, req))
    for a, b in zip(steps, again):
        for key in ("x_t", "x0", "eps", "added"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    np.testing.assert_array_equal(final.payload.samples, list(ops.sample(pool, req))[-1].payload.samples)
    other = list(ops.sample(pool, ops.DiffusionSample(target, "ddim", 10, 0.5, seed=4, batch=2)))
    assert np.abs(other[-1].payload.samples - final.payload.samples).max() > 0.05


def test_sampling_coalesces_steps_into_few_deliveries(pool, tiny):
    # A long interval: the first step goes out at once, every other one with the finished sample.
    req = ops.DiffusionSample(ops.Target(tiny, "onnx", "cpu"), "ddim", steps=12, frame_interval_s=60.0)
    outs = list(ops.sample(pool, req))
    assert [len(o.payload.steps) for o in outs] == [1, 11] and outs[-1].final
    assert [st.k for st in recorded_steps(outs)] == list(range(12))


def test_tile_lays_out_like_image_grid():
    images = np.random.default_rng(0).uniform(0, 1, (5, 3, 4, 6)).astype(np.float32)
    np.testing.assert_array_equal(ops.tile(ops.quantize(images)), ops.image_grid(images))
    np.testing.assert_array_equal(ops.tile(ops.quantize(images[:, :1]), cols=1, pad=0),
                                  ops.image_grid(images[:, :1], cols=1, pad=0))


def test_forward_process_at_t0_is_the_input_and_sdedit_starts_from_it(pool, tiny):
    target = ops.Target(tiny, "onnx", "cpu")
    image = np.random.default_rng(1).uniform(0, 1, (1, 28, 28)).astype(np.float32)
    out0 = ops.forward(pool, ops.DiffusionForward(target, image, t=0, seed=9))
    np.testing.assert_allclose(out0.payload.x_t, image * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(out0.image, ops.image_grid(image[None], cols=1, pad=0))
    assert out0.payload.alpha_bar == 1.0
    out_T = ops.forward(pool, ops.DiffusionForward(target, image, t=1000, seed=9))
    corr = np.corrcoef(out_T.payload.x_t.ravel(), image.ravel())[0, 1]
    assert abs(corr) < 0.1  # pure noise at T
    out = ops.forward(pool, ops.DiffusionForward(target, image, t=400, seed=9))
    sde = list(ops.sample(pool, ops.DiffusionSample(target, "ddim", 50, 0.0, seed=9, batch=1,
                                                    image=image, t_start=400)))
    first = recorded_steps(sde)[0]
    assert first.t == 400
    assert len(recorded_steps(sde)) == len(sdedit_timesteps(399, 50, 1000)) == 20
    np.testing.assert_array_equal(ops.tile(ops.quantize(ops.to_unit(first.x_t)), pad=0), out.image)
    with pytest.raises(ValueError):
        list(ops.sample(pool, ops.DiffusionSample(target, image=image, t_start=0)))
    with pytest.raises(ValueError):
        ops.forward(pool, ops.DiffusionForward(target, np.zeros((1, 32, 32), np.float32), t=5))


def test_cancel_stops_sampling_at_a_step_boundary(pool, tiny):
    results, lock = [], threading.Lock()

    def deliver(r):
        with lock:
            results.append(r)

    renderer = Renderer(deliver)
    ops.register(renderer, pool)
    try:
        renderer.submit("d.sample", ops.DiffusionSample(ops.Target(tiny, "onnx", "cpu"), "ddpm", 1000, seed=1))
        deadline = time.time() + 30
        while time.time() < deadline and len(results) < 3:
            time.sleep(0.005)
        renderer.cancel("d.sample")
        deadline = time.time() + 10
        while time.time() < deadline and not renderer.idle():
            time.sleep(0.01)
        assert renderer.idle()
        with lock:
            n = len(results)
        assert 3 <= n < 1000 and not any(r.final for r in results) and not any(r.error for r in results)
        time.sleep(0.1)
        assert len(results) == n
    finally:
        renderer.shutdown()


def test_export_gif_and_png_strip(tmp_path):
    from PIL import Image

    frames = [np.full((10, 12), i * 10, np.uint8) for i in range(25)]
    path = ops.export_gif(frames, tmp_path / "t.gif", fps=30, scale=2, max_frames=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 10 and gif.size == (24, 20)
    strip = ops.png_strip(frames, count=5, scale=1)
    assert strip.shape == (10, 5 * 12 + 4 * 2)
    assert strip[0, 0] == 0 and strip[0, -1] == 240  # first and last frame included
    with pytest.raises(ValueError):
        ops.export_gif([], tmp_path / "none.gif")


def test_schedule_curves_start_clean():
    c = ops.schedule_curves({"schedule": "linear"})
    assert c["alpha_bar"][0] == 1.0 and c["t"][-1] == 1000
    assert np.all(np.diff(c["alpha_bar"]) < 0) and np.all(np.diff(c["snr"][1:]) < 0)
    cos = ops.schedule_curves({"schedule": "cosine"})
    assert cos["alpha_bar"][500] > c["alpha_bar"][500]  # cosine destroys information more slowly


def test_trainer_steps_checkpoints_ema_and_resumes_exactly(tmp_path, mnist_small):
    import torch

    from studio.families.diffusion.trainer import DiffusionTrainer
    from studio.training.runs import trainer_class

    assert trainer_class("diffusion") is DiffusionTrainer
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is faster than two fighting other work
    try:
        _train_and_resume(tmp_path, mnist_small)
    finally:
        torch.set_num_threads(threads)


def _train_and_resume(tmp_path, mnist_small):
    import torch

    from studio.engine.export import build_torch_model
    from studio.core.checkpoint import load_checkpoint
    from studio.families.diffusion.trainer import DiffusionTrainer
    from studio.training.trainer import TrainOptions

    model_cfg = {"base": 8, "mults": [1, 2], "attn_res": [14], "groups": 4, "ema": 0.9}
    opts = TrainOptions("diffusion", str(tmp_path / "run"), steps=4, batch_size=16, holdout=64,
                        checkpoint_every=0, preview_every=0, model=dict(model_cfg))
    tr = DiffusionTrainer(opts, mnist_small)
    list(tr.run(until=2))
    tr.save_run_checkpoint()
    path = tr.out / "step_0000002.safetensors"  # last.safetensors is overwritten by the next run
    ema_now = {k: v.clone() for k, v in tr.ema.state_dict().items()}
    online_now = {k: v.clone() for k, v in tr.model.state_dict().items()}
    list(tr.run())
    expected = {k: v.clone() for k, v in tr.model.state_dict().items()}
    ckpt = load_checkpoint(path, with_training_state=True)
    saved = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()}
    for k in saved:  # the file's weights are the EMA weights
        torch.testing.assert_close(saved[k], ema_now[k])
    assert any((saved[k] - online_now[k]).abs().max() > 0 for k in saved)
    tr2 = DiffusionTrainer(TrainOptions("diffusion", str(tmp_path / "run"), steps=4, batch_size=16, holdout=64,
                                        checkpoint_every=0, preview_every=0, model=dict(model_cfg)), mnist_small)
    tr2.resume_from(path)
    assert tr2.step == 2
    list(tr2.run())
    for k, v in tr2.model.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    m = tr2.metrics()
    assert m["eval_split"] == "held-out" and m["eval_images"] == 64 and 0 < m["l_simple"] < 5
    grid = tr2.preview()
    assert grid.dtype == np.uint8 and grid.shape == (2 * 29 + 1, 8 * 29 + 1)
    slim = tr2.to_checkpoint(with_training_state=False)
    assert not slim.training_state and build_torch_model(slim).cfg.base == 8


def test_the_app_worker_accepts_diffusion_runs(tmp_path, mnist_small):
    from studio.training.trainer import TrainOptions
    from studio.training.runs import TrainingSetupError, family_names, prepare_run

    assert "diffusion" in family_names()
    data = tmp_path / "digits.npz"
    np.savez(data, images=mnist_small.images[:128], labels=mnist_small.labels[:128])
    plan = prepare_run(TrainOptions("diffusion", str(tmp_path / "run"), data=str(data), steps=10,
                                    model={"base": 8, "mults": [1, 2], "attn_res": [14], "groups": 4}))
    assert plan.options.model["schedule"] == "linear" and plan.options.model["timesteps"] == 1000
    with pytest.raises(TrainingSetupError, match="not divisible"):
        prepare_run(TrainOptions("diffusion", str(tmp_path / "run2"), data=str(data), steps=10,
                                 model={"base": 8, "mults": [1, 2, 2, 2]}))
    with pytest.raises(TrainingSetupError, match="noise schedule"):
        prepare_run(TrainOptions("diffusion", str(tmp_path / "run3"), data=str(data), steps=10,
                                 model={"base": 8, "mults": [1, 2], "attn_res": [], "schedule": "quadratic"}))


def test_a_vae_decode_finishes_while_a_ddpm_1000_stream_runs(pool, tiny, tiny_vae_path):
    """Real handlers on two channels: the decode waits for one UNet step, not for the stream."""
    from studio.families.vae import ops as vae_ops

    frames, decoded, lock = [], [], threading.Lock()
    stream_finished = threading.Event()

    def deliver(r):
        with lock:
            if r.channel == "vae.decode":
                decoded.append((r, len(frames), stream_finished.is_set()))
            elif r.final:
                stream_finished.set()
            else:
                frames.append(r)

    renderer = Renderer(deliver)
    ops.register(renderer, pool)
    vae_ops.register(renderer, pool)
    try:
        renderer.submit("diffusion.sample", ops.DiffusionSample(ops.Target(tiny, "torch", "cpu"), "ddpm", 1000))
        deadline = time.time() + 30
        while time.time() < deadline and len(frames) < 3:
            time.sleep(0.002)
        renderer.submit("vae.decode", vae_ops.VaeDecode(ops.Target(str(tiny_vae_path), "torch", "cpu"), (0.0, 0.0, 0.0)))
        with lock:
            at_submit = len(frames)  # read after: a stall of this thread cannot loosen the bound
        deadline = time.time() + 30
        while time.time() < deadline and not decoded:
            time.sleep(0.002)
        assert decoded, "the decode never arrived"
        result, frames_then, finished_then = decoded[0]
        assert result.error is None and isinstance(result.payload, vae_ops.VaeDecoded)
        assert result.image.shape == (28, 28) and result.backend == "torch"
        assert not finished_then and frames_then <= at_submit + 2 < 1000
    finally:
        renderer.shutdown()


def test_a_sample_runs_on_one_backend_from_first_step_to_last(pool, tiny):
    outs = list(ops.sample(pool, ops.DiffusionSample(ops.Target(tiny, "torch", "cpu"), "ddim", 5)))
    assert {(o.backend, o.device) for o in outs} == {("torch", "cpu")}
    assert not any(o.export_pending for o in outs)
