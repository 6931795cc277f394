"""CycleGAN training: two unpaired folders of any sizes, the pool, the schedule, exact resume, the worker,
clear refusals; and the printed digits that make the shipped demo's second domain."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from studio.training.events import CheckpointWritten, Finished, Progress, TripletPreview
from studio.training.options import TrainOptions

TINY = {"width": 4, "blocks": 1, "d_width": 4, "d_layers": 1}


def make_folder(path, n, colour, seed):
    """``n`` pictures of mixed sizes and modes (grey PNG, palette GIF, RGB JPEG...), plus a stray file."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i in range(n):
        w, h = (int(v) for v in rng.integers(12, 60, 2))
        pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        image = Image.fromarray(pixels if colour else pixels[..., 0])
        if i % 3 == 1:
            image.convert("P").save(path / f"{i}.gif")
        elif colour and i % 3 == 2:
            image.save(path / f"{i}.jpg")
        else:
            image.save(path / f"{i}.png")
    (path / "notes.txt").write_text("not a picture")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("domains")
    return make_folder(root / "grey", 12, False, 0), make_folder(root / "colour", 10, True, 1)


def options(out, steps=8, **model):
    return TrainOptions(family="cyclegan", out=str(out), steps=steps, batch_size=4, lr=2e-4, checkpoint_every=4,
                        preview_every=0, log_every=1, threads=1, model={**TINY, "image_size": 16, **model})


def trainer(opts, resume=None):
    from studio.training.runs import build_trainer, prepare_run

    plan = prepare_run(opts, resume=resume)
    return build_trainer(plan.options, plan.resume, data=plan.data)


def losses(t, until=None):
    return [e.losses for e in t.run(until) if isinstance(e, Progress)]


def test_two_folders_of_any_sizes_train_with_triplet_previews(tmp_path, folders):
    from studio.training.runs import prepare_run

    grey, colour = folders
    opts = options(tmp_path / "run", steps=3, domain_a=str(grey), domain_b=str(colour), fit="pad")
    plan = prepare_run(opts)
    assert plan.options.model["channels"] == 3  # one colour domain: both become RGB
    assert plan.options.model["digits"] is False
    t = trainer(opts)
    got = losses(t)
    assert len(got) == 3 and set(got[0]) == {"d_a", "d_b", "g_adv", "cycle", "identity"}
    assert all(np.isfinite(v) for row in got for v in row.values())
    event = t.preview_event()
    assert isinstance(event, TripletPreview) and event.step == 3
    for direction in ("AtoB", "BtoA"):
        real, fake, rec = event.triplets[direction]
        assert real.shape == fake.shape == rec.shape == (8, 16, 16, 3) and real.dtype == np.uint8
    assert event.image.shape == (6 * 17 + 1, 8 * 17 + 1, 3)  # six rows of eight
    # A grey picture in the colour run is the same grey in every channel.
    a_real = event.triplets["AtoB"][0]
    assert np.array_equal(a_real[..., 0], a_real[..., 1])


def test_resume_continues_exactly_pool_and_both_streams(tmp_path, mnist_small):
    """8 straight steps == 4 steps, a checkpoint, a new trainer, 4 more: pool, two streams, semantic loss."""
    from studio.data.datasets import ImageDataset

    torch.set_num_threads(1)
    digits = ImageDataset(mnist_small.images[:64], mnist_small.labels[:64], "mnist-64")
    model = {"semantic_weight": 1.0, "pool_size": 3, "image_size": 32}

    def run(out, until=None, resume=None):
        from studio.families.cyclegan.trainer import CycleGANTrainer

        t = CycleGANTrainer(options(out, **model), digits)
        if resume:
            t.resume_from(resume)
        return t, losses(t, until)

    straight, expected = run(tmp_path / "a")
    assert straight.options.model["digits"] is True and "semantic" in expected[0]
    assert straight.pools["a"].count == 3  # full: the later steps swapped pictures in and out
    run(tmp_path / "b", until=6)  # "killed" at step 6: the checkpoint of step 4 is the last one
    resumed, got = run(tmp_path / "b", resume=tmp_path / "b" / "step_0000004.safetensors")
    for key in expected[0]:
        np.testing.assert_allclose([r[key] for r in got], [r[key] for r in expected[4:]], rtol=1e-5, atol=1e-6)
    for a, b in zip(straight.generators.state_dict().values(), resumed.generators.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for d in ("a", "b"):
        torch.testing.assert_close(straight.pools[d].images, resumed.pools[d].images, rtol=1e-5, atol=1e-6)
    assert resumed.streams["b"].state() == straight.streams["b"].state()


def test_checkpoint_ships_both_generators_and_the_family_builds_them(tmp_path, folders):
    from studio.engine.export import build_torch_model

    grey, _ = folders
    t = trainer(options(tmp_path / "run", steps=2, domain_a=str(grey), domain_b=str(grey)))
    losses(t)
    ckpt = t.to_checkpoint(with_training_state=False)
    assert {k.split(".")[0] for k in ckpt.weights} == {"G_AB", "G_BA"}
    model = build_torch_model(ckpt)
    torch.testing.assert_close(model.G_AB.state_dict()["net.1.weight"], t.generators.G_AB.state_dict()["net.1.weight"])
    metrics = t.metrics()
    assert 0 <= metrics["cycle_l1_AtoB"] <= 1 and "label_kept_AtoB" not in metrics  # not digits


def test_learning_rate_holds_then_decays_linearly_to_zero(tmp_path, folders):
    grey, _ = folders
    t = trainer(options(tmp_path / "run", steps=100, domain_a=str(grey), domain_b=str(grey)))
    assert [t.lr_factor("generators", s) for s in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]
    t2 = trainer(options(tmp_path / "run2", steps=100, decay_start=1.0, domain_a=str(grey), domain_b=str(grey)))
    assert t2.lr_factor("discriminators", 99) == 1.0
    losses(t, until=60)
    lrs = t.current_lrs()
    assert lrs["generators"] == pytest.approx(2e-4 * 0.8) and lrs["discriminators"] == pytest.approx(2e-4 * 0.8)


def test_image_pool_returns_fresh_pictures_until_full_then_mixes_history():
    from studio.families.cyclegan.pool import ImagePool

    torch.manual_seed(0)
    pool = ImagePool(4, (1, 2, 2))
    first = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 1, 2, 2)
    torch.testing.assert_close(pool.query(first), first)  # filling: every picture passes through
    later = torch.full((200, 1, 2, 2), 9.0)
    out = pool.query(later)
    from_history = (out[:, 0, 0, 0] != 9.0).sum()
    assert 0 < from_history <= 8 and pool.count == 4  # about half swap, but only old pictures come back once
    copy = ImagePool(4, (1, 2, 2))
    copy.load_state(pool.state())
    torch.testing.assert_close(copy.images, pool.images)
    assert copy.count == 4
    assert torch.equal(ImagePool(0, (1, 2, 2)).query(first), first)


@pytest.mark.parametrize("model, message", [
    ({"domain_b": "/nonexistent/pictures"}, "/nonexistent/pictures: no such file or folder"),
    ({"domain_b": "EMPTY"}, "the folder holds no images"),
    ({"domain_b": "BROKEN"}, "no usable images: all 1 failed to load"),
    ({"domain_b": "ONE"}, "domain B holds 1 picture(s); it needs at least 2"),
    ({"loss": "wgan-gp", "fit": "squash"}, "unknown loss 'wgan-gp' (choose lsgan, ns, hinge); unknown fit 'squash'"),
    ({"domain_b": "COLOUR", "semantic_weight": 1.0}, "the semantic loss reads digits"),
])
def test_bad_domains_and_options_are_one_line(tmp_path, folders, model, message):
    from studio.training.runs import TrainingSetupError, prepare_run

    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tmp_path / "one").mkdir()
    (folders[0] / "0.png").read_bytes()
    (tmp_path / "one" / "a.png").write_bytes((folders[0] / "0.png").read_bytes())
    named = {"EMPTY": tmp_path / "empty", "BROKEN": tmp_path / "broken", "ONE": tmp_path / "one",
             "COLOUR": folders[1]}
    model = {k: str(named.get(v, v)) if isinstance(v, str) else v for k, v in model.items()}
    with pytest.raises(TrainingSetupError) as err:
        prepare_run(options(tmp_path / "run", domain_a=str(folders[0]), **model))
    text = str(err.value)
    assert message in text and "\n" not in text and "Traceback" not in text


def test_the_command_line_names_both_domains(tmp_path, folders):
    from studio.train import build_parser, options_from_args

    args = build_parser().parse_args(["cyclegan", "--out", str(tmp_path / "run"), "--domain-a", str(folders[0]),
                                      "--domain-b", "printed", "--cycle-weight", "8", "--semantic-weight", "0.5",
                                      "--identity-weight", "0", "--width", "8", "--blocks", "2"])
    opts, resume = options_from_args(args)
    assert resume is None and opts.lr == 2e-4  # the family's learning rate
    assert opts.model == {"domain_a": str(folders[0]), "domain_b": "printed", "cycle_weight": 8.0,
                          "semantic_weight": 0.5, "identity_weight": 0.0, "width": 8, "blocks": 2}


def test_a_cyclegan_trained_in_the_worker_resumes(tmp_path, folders):
    from studio.training.runs import options_for_resume
    from studio.training.worker import WorkerHandle

    def pump(handle, until, timeout=240.0):
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen.extend(handle.poll())
            if until(seen):
                return seen
            assert handle.exitcode is None or until(seen + handle.poll()), handle.last_message()
            time.sleep(0.05)
        raise AssertionError(f"timed out; last: {handle.last_message()}")

    grey, colour = folders
    opts = options(tmp_path / "run", steps=4, domain_a=str(grey), domain_b=str(colour))
    opts.checkpoint_every, opts.preview_every = 2, 2
    handles = [WorkerHandle(), WorkerHandle()]
    try:
        handles[0].start(opts)
        seen = pump(handles[0], lambda ev: any(isinstance(e, Finished) for e in ev))
        assert sum(isinstance(e, CheckpointWritten) for e in seen) >= 1
        previews = [e for e in seen if isinstance(e, TripletPreview)]
        assert [e.step for e in previews] == [2, 4] and set(previews[0].triplets) == {"AtoB", "BtoA"}
        assert handles[0].join(60) and handles[0].exitcode == 0
        resumed, last = options_for_resume(tmp_path / "run", steps=6)
        plan = handles[1].start(resumed, resume=last)
        assert plan.start_step == 4
        seen = pump(handles[1], lambda ev: any(isinstance(e, Finished) for e in ev))
        assert [e.step for e in seen if isinstance(e, Progress)] == [5, 6]
    finally:
        for h in handles:
            h.kill()
            h.close()


def test_printed_digits_are_deterministic_balanced_and_read_by_the_classifier():
    from studio.data.printed import render_printed
    from studio.evaluation.features import load_extractor

    images, labels = render_printed(7, 0, 200)
    assert images.shape == (200, 1, 32, 32) and images.dtype == np.float32
    assert images[:, :, :2].max() == 0 and images[:, :, :, -2:].max() == 0  # 28x28 padded by 2, like MNIST
    assert np.bincount(labels, minlength=10).tolist() == [20] * 10
    again, again_labels = render_printed(7, 150, 50)  # digit i depends on (seed, i) only
    np.testing.assert_array_equal(again, images[150:])
    np.testing.assert_array_equal(again_labels, labels[150:])
    other, _ = render_printed(8, 0, 200)
    assert not np.array_equal(other, images)
    heights = [np.ptp(np.flatnonzero(x[0].max(axis=1) > 0.3)) for x in images]
    assert min(heights) < max(heights) - 3  # sizes vary
    assert len({round(float(x.max()), 1) for x in images}) >= 3  # ink brightness varies
    read = load_extractor()(images).probs.argmax(axis=1)
    assert (read == labels).mean() >= 0.97  # the classifier that scores the demo can read this domain


def test_other_typefaces_draw_the_same_digits_in_another_face():
    """The evaluation's scale: the same labels, sizes and poses, only the face differs; a bad name is one line."""
    from studio.data.printed import TYPEFACES, render_printed

    domain, labels = render_printed(3, 40, 30)
    for typeface in TYPEFACES:
        if typeface == "aileron":
            continue
        drawn, drawn_labels = render_printed(3, 40, 30, typeface=typeface)
        np.testing.assert_array_equal(drawn_labels, labels)
        assert np.abs(drawn - domain).mean() > 0.02, typeface  # another shape, not the domain's pixels again
        np.testing.assert_array_equal(render_printed(3, 45, 5, typeface=typeface)[0], drawn[5:10])
        # posed like the domain's digits: the ink's centre of mass within a pixel or so of theirs
        rows = np.arange(32, dtype=np.float32)
        centre = lambda x: (x[:, 0].sum(axis=2) * rows).sum(axis=1) / x[:, 0].sum(axis=(1, 2))  # noqa: E731
        assert np.abs(centre(drawn) - centre(domain)).mean() < 1.5, typeface
    with pytest.raises(ValueError, match="unknown typeface 'comic' .choose aileron"):
        render_printed(0, 0, 1, typeface="comic")
