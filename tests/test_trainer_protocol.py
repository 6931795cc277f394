"""The trainer protocol: named modules and optimisers, schedules, EMA, data streams, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from studio.core.checkpoint import load_checkpoint
from studio.training.context import RunContext
from studio.training.data import ArrayImages, BatchStream, EpochBatchSampler, ImageFolder, open_images
from studio.training.ema import EMA
from studio.training.events import CheckpointWritten, Diverged, Finished, Progress
from studio.training.options import TrainOptions
from studio.training.trainer import Trainer

TINY_VAE = {"latent_dim": 2, "width": 4, "hidden": 16}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count in both halves of a split run
    yield
    torch.set_num_threads(threads)


def vae_opts(out, **kw) -> TrainOptions:
    base = dict(family="vae", out=str(out), steps=10, batch_size=16, checkpoint_every=0, preview_every=0,
                log_every=1, schedule="cosine", holdout=32, model=dict(TINY_VAE))
    base.update(kw)
    return TrainOptions(**base)


def full_state(trainer) -> dict[str, np.ndarray]:
    ckpt = trainer.to_checkpoint()
    return {**{"w/" + k: v for k, v in ckpt.weights.items()}, **ckpt.training_state}


def assert_same_state(a, b) -> None:
    sa, sb = full_state(a), full_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)  # bit for bit, not close


def test_a_vae_run_split_by_a_resume_equals_an_unsplit_run_bit_for_bit(tmp_path, mnist_small):
    from studio.families.vae.trainer import VAETrainer
    from studio.training.runs import read_log

    straight = VAETrainer(vae_opts(tmp_path / "a"), mnist_small)
    losses = [e.losses for e in straight.run() if isinstance(e, Progress)]

    first = VAETrainer(vae_opts(tmp_path / "b"), mnist_small)
    list(first.run(until=6))
    first.save_run_checkpoint()
    second = VAETrainer(vae_opts(tmp_path / "b"), mnist_small)
    second.resume_from(tmp_path / "b" / "last.safetensors")
    assert second.step == 6
    resumed = [e.losses for e in second.run() if isinstance(e, Progress)]

    assert resumed == losses[6:]  # exactly equal floats, every loss term
    assert_same_state(straight, second)  # weights, Adam moments, schedule, RNG, data position, history
    assert second.history == straight.history
    assert read_log(tmp_path / "b")["loss"] == read_log(tmp_path / "a")["loss"]


class ToyGAN(Trainer):
    """Two networks, two optimisers with their own schedules, two D steps per G step,
    labels, a second unpaired domain, an EMA of G and a family tensor: all must resume."""

    family = "toy_gan"
    shipped = "g"
    d_steps = 2

    @classmethod
    def configure(cls, model, data):
        return {"z": 4, "pixels": int(np.prod(data.shape)), **model}

    @classmethod
    def build_modules(cls, config):
        return {"g": nn.Sequential(nn.Linear(config["z"] + 10, 32), nn.ReLU(), nn.Linear(32, config["pixels"])),
                "d": nn.Sequential(nn.Linear(config["pixels"], 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))}

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.add_ema("g", 0.9)
        self.seen = torch.zeros(10)  # how many real images of each class D has seen

    extra_domains = ("b",)

    def build_optimizers(self):
        return {"g": torch.optim.Adam(self.modules["g"].parameters(), lr=self.options.lr, betas=(0.5, 0.99)),
                "d": torch.optim.SGD(self.modules["d"].parameters(), lr=self.options.lr * 4, momentum=0.9)}

    def lr_factor(self, optimizer, step):
        return 1.0 - step / (2 * self.options.steps) if optimizer == "g" else 1.0

    def fake(self, labels):
        z = torch.randn(len(labels), self.options.model["z"])
        return self.modules["g"](torch.cat([z, nn.functional.one_hot(labels, 10).float()], 1))

    def train_step(self, batch):
        g, d = self.modules["g"], self.modules["d"]
        bce = nn.functional.binary_cross_entropy_with_logits
        for i in range(self.d_steps):
            real = batch if i == 0 else self.next_batch()  # more real batches for the extra D steps
            other = self.next_batch("b")  # the unpaired domain, mixed into the real side
            x = torch.cat([real.images.flatten(1), other.images.flatten(1)])
            self.seen += torch.bincount(real.labels, minlength=10)
            self.optimizers["d"].zero_grad()
            fake = self.fake(real.labels).detach()
            loss_d = bce(d(x), torch.ones(len(x), 1)) + bce(d(fake), torch.zeros(len(fake), 1))
            loss_d.backward()
            self.optimizers["d"].step()
        self.optimizers["g"].zero_grad()
        loss_g = bce(d(self.fake(batch.labels)), torch.ones(len(batch.labels), 1))
        loss_g.backward()
        self.optimizers["g"].step()
        self.emas["g"].update(g)
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    def family_state(self):
        return {"seen": self.seen}

    def load_family_state(self, state):
        self.seen = state["seen"].clone()


def toy_gan(out, mnist_small, steps=8):
    opts = TrainOptions(family="toy_gan", out=str(out), steps=steps, batch_size=8, lr=1e-3,
                        checkpoint_every=0, preview_every=0, log_every=0)
    domain_b = ArrayImages(mnist_small.images[256:], None, "domain-b")
    return ToyGAN(opts, ArrayImages(mnist_small.images[:256], mnist_small.labels[:256], "domain-a"),
                  extra_data={"b": domain_b})


def test_a_two_optimiser_trainer_resumes_exactly(tmp_path, mnist_small):
    straight = toy_gan(tmp_path / "a", mnist_small)
    events = [e for e in straight.run() if isinstance(e, Progress)]
    lrs = [e.lrs for e in events]
    assert lrs[0] == {"g": 1e-3, "d": 4e-3}  # each optimiser its own rate...
    assert lrs[-1]["g"] < lrs[0]["g"] and lrs[-1]["d"] == lrs[0]["d"]  # ...and its own schedule
    assert straight.streams["main"].position == 2 * 8  # two real batches per step (2 D steps)
    assert straight.seen.sum() == 2 * 8 * 8

    first = toy_gan(tmp_path / "b", mnist_small)
    list(first.run(until=3))
    first.set_live_option("lr.d", 2e-3)  # a live change of one optimiser survives the resume
    first.save_run_checkpoint()  # (before the next trainer: torch's RNG is one per process)
    straight2 = toy_gan(tmp_path / "c", mnist_small)
    list(straight2.run(until=3))
    straight2.set_live_option("lr.d", 2e-3)
    list(straight2.run())
    second = toy_gan(tmp_path / "b", mnist_small)
    second.resume_from(tmp_path / "b" / "last.safetensors")
    list(second.run())
    assert_same_state(straight2, second)
    assert torch.equal(second.seen, straight2.seen)
    assert second.current_lrs() == straight2.current_lrs()
    ckpt = load_checkpoint(tmp_path / "b" / "last.safetensors", with_training_state=True)
    # The shipped weights are G's average; G, D, both optimisers and the schedules are state.
    for k, v in straight2.emas["g"].module.state_dict().items():
        np.testing.assert_array_equal(ckpt.weights[k], v.numpy())
    assert any(k.startswith("module/d/") for k in ckpt.training_state)
    assert any(k.startswith("optim/g/") for k in ckpt.training_state)
    assert set(ckpt.extra["schedulers"]) == {"g", "d"}


def test_two_domains_shuffle_independently_and_streams_resume_mid_epoch(mnist_small):
    a = ArrayImages(mnist_small.images[:64], mnist_small.labels[:64], "a")
    s1 = BatchStream(a, 8, seed=3, stream=0, device=torch.device("cpu"))
    s2 = BatchStream(a, 8, seed=3, stream=1, device=torch.device("cpu"))
    b1, b2 = s1.next(), s2.next()
    assert not torch.equal(b1.images, b2.images)  # same data, different shuffles
    assert b1.labels is not None and b1.labels.dtype == torch.int64
    for _ in range(10):  # into the second epoch (8 batches per epoch)
        s1.next()
    state = s1.state()
    assert state == {"epoch": 1, "position": 3}
    expected = [s1.next().images for _ in range(7)]
    again = BatchStream(a, 8, seed=3, stream=0, device=torch.device("cpu"))
    again.load_state(state)
    for want in expected:
        assert torch.equal(again.next().images, want)


def test_ranks_draw_disjoint_slices_of_each_global_batch():
    r0 = list(iter(EpochBatchSampler(40, 4, seed=1, rank=0, world_size=2)))
    r1 = list(iter(EpochBatchSampler(40, 4, seed=1, rank=1, world_size=2)))
    assert len(r0) == len(r1) == 5
    drawn = [i for b in r0 + r1 for i in b]
    assert sorted(drawn) == list(range(40))  # every image once per epoch, split between ranks


def test_image_folders_load_lazily_with_labels(tmp_path, monkeypatch):
    from PIL import Image

    import studio.training.data as data

    for cls, value in (("zero", 30), ("one", 200)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (8, 8), value + i).save(tmp_path / cls / f"{i}.png")
    decoded = []
    real = data.load_image
    monkeypatch.setattr(data, "load_image", lambda p, **kw: decoded.append(p) or real(p, **kw))
    source = open_images(tmp_path)
    assert isinstance(source, ImageFolder) and len(source) == 6 and source.shape == (1, 8, 8)
    assert decoded == []  # opening read headers only
    batch = source.__getitems__([0, 4])
    assert len(decoded) == 2 and batch.images.shape == (2, 1, 8, 8)
    assert batch.labels.tolist() == [0, 1]  # class folders sorted: one=0, zero=1
    assert abs(float(batch.images[1, 0, 0, 0]) - 31 / 255) < 1e-6


def test_ema_helper_keeps_the_warmup_and_copies_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = EMA(model, decay=0.999)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(5.0)
    ema.update(model)
    d = min(0.999, 1 / 10)  # warm-up: the first update follows the weights closely
    torch.testing.assert_close(ema.module[0].weight, d * start + (1 - d) * model[0].weight)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert ema.updates == 1 and ema.decay_at(100_000) == 0.999
    from torch.optim.swa_utils import AveragedModel

    assert isinstance(ema.averaged, AveragedModel)


def test_a_non_finite_loss_diverges_without_saving(tmp_path, mnist_small):
    from studio.families.vae.trainer import VAETrainer

    trainer = VAETrainer(vae_opts(tmp_path, steps=30, checkpoint_every=1, lr=1e30), mnist_small)
    events = list(trainer.run())
    diverged = events[-1]
    assert isinstance(diverged, Diverged) and not any(isinstance(e, Finished) for e in events)
    assert diverged.last_good_step == trainer.step >= 1
    assert "not finite" in diverged.message and f"step {diverged.step}" in diverged.message
    written = [e.step for e in events if isinstance(e, CheckpointWritten)]
    assert max(written) == diverged.last_good_step < diverged.step
    with pytest.raises(ValueError, match="diverged"):
        trainer.save_run_checkpoint()
    for p in tmp_path.glob("*.safetensors"):  # nothing non-finite reached the disk
        assert all(np.isfinite(w).all() for w in load_checkpoint(p).weights.values())


def test_only_the_main_rank_writes(tmp_path, mnist_small):
    from studio.families.vae.trainer import VAETrainer

    ctx = RunContext.from_env("cpu", environ={"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert not ctx.is_main and ctx.world_size == 2
    trainer = VAETrainer(vae_opts(tmp_path / "r1", steps=4, checkpoint_every=2, preview_every=2), mnist_small,
                         context=ctx)
    events = list(trainer.run())
    assert isinstance(events[-1], Finished) and events[-1].path == ""
    assert not any(isinstance(e, CheckpointWritten) for e in events)
    assert not (tmp_path / "r1").exists() or not any((tmp_path / "r1").iterdir())
    assert RunContext.from_env("cpu", environ={}).is_main


def test_checking_a_run_builds_no_trainer_and_leaves_the_global_rng_alone(tmp_path, monkeypatch, mnist_small):
    from studio.families.vae.trainer import VAETrainer
    from studio.training.runs import TrainingSetupError, prepare_run

    data = tmp_path / "digits.npz"
    np.savez(data, images=mnist_small.images[:64], labels=mnist_small.labels[:64])
    trainer = VAETrainer(vae_opts(tmp_path / "run", data=str(data), holdout=0, steps=2), mnist_small)
    list(trainer.run())

    def no_trainer(*a, **k):
        raise AssertionError("the check built the whole trainer")

    monkeypatch.setattr(VAETrainer, "__init__", no_trainer)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    plan = prepare_run(vae_opts(tmp_path / "new", data=str(data), holdout=0))
    assert plan.options.model["channels"] == 1 and plan.options.model["image_size"] == 28
    options = vae_opts(tmp_path / "run", data=str(data), holdout=0, steps=5)
    assert prepare_run(options, resume=str(tmp_path / "run" / "last.safetensors")).start_step == 2
    options.model = {**TINY_VAE, "latent_dim": 3}  # the checkpoint's tensors no longer fit
    with pytest.raises(TrainingSetupError, match="do not fit.*latent_dim|do not fit"):
        prepare_run(options, resume=str(tmp_path / "run" / "last.safetensors"))
    with pytest.raises(TrainingSetupError, match=r"unknown vae model option colour \(valid: .*latent_dim"):
        prepare_run(vae_opts(tmp_path / "new2", data=str(data), model={"colour": 1}))
    assert torch.equal(torch.get_rng_state(), before)


def test_a_lazy_folder_skips_broken_files_and_names_them(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("L", (8, 8), 50 * i).save(tmp_path / f"{i}.png")
    good = (tmp_path / "0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])  # truncated mid-file
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_images(tmp_path)
    assert len(source) == 3
    reasons = dict(source.skipped)
    assert set(reasons) == {"cut.png", "notes.txt"} and "not an image file" in reasons["notes.txt"]
    assert source.__getitems__([0, 1, 2]).images.shape == (3, 1, 8, 8)
