"""GAN requests: style-mixing semantics, noise, truncation, edits, interpolation, projection, files."""

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from studio.engine.renderer import Renderer
from studio.engine.runtime import RuntimePool
from studio.families.stylegan import ops
from studio.families.stylegan.ops import Code, Edit, NoiseSpec, Target


@pytest.fixture(scope="module")
def pool():
    return RuntimePool()


def target(path, backend="onnx"):
    return Target(str(path), backend, "cpu")


def torch_images(pool, path, ws: np.ndarray, noise: list[np.ndarray]) -> np.ndarray:
    """The generator itself, in torch, on hand-built styles: the reference for the handlers."""
    g = pool.get(path).torch_model()
    with torch.no_grad():
        out = g.synthesis(torch.from_numpy(ws), [torch.from_numpy(np.ascontiguousarray(n)) for n in noise])
    return ((out.clamp(-1, 1) + 1) / 2).numpy()


def mapped(pool, path, seed):
    g = pool.get(path).torch_model()
    with torch.no_grad():
        return g.mapping(torch.from_numpy(ops.seed_to_z(seed, 64))[None]).numpy()[0]


@pytest.mark.parametrize("layers", [(0, 3), (4, 7), (2, 5), (6, 6)])
def test_style_mixing_takes_b_on_exactly_the_chosen_layers(pool, stylegan_path, layers):
    rows, cols = (Code(1), Code(2)), (Code(3), Code(4), Code(5))
    out = ops.mixing_grid(pool, ops.StyleMixGrid(target(stylegan_path), rows, cols, layers))
    model = ops.GanModel(pool, target(stylegan_path))
    a, b = layers
    for i, ca in enumerate(rows):
        for j, cb in enumerate(cols):
            ws = np.repeat(mapped(pool, stylegan_path, ca.seed)[None, None], 8, axis=1)
            ws[0, a: b + 1] = mapped(pool, stylegan_path, cb.seed)
            ref = torch_images(pool, stylegan_path, ws, model.noise(NoiseSpec(), 1))[0]
            np.testing.assert_allclose(out.payload.mixes[i, j], ref, atol=1e-4)
    assert out.image.shape == (3 * 33 + 1, 4 * 33 + 1, 3)  # a header row of B, a header column of A
    # The mix is neither source: the styles really came from both.
    assert np.abs(out.payload.mixes[0, 0] - out.payload.sources_a[0]).mean() > 1e-3
    assert np.abs(out.payload.mixes[0, 0] - out.payload.sources_b[0]).mean() > 1e-3


def test_mixing_every_layer_gives_source_b(pool, stylegan_path):
    out = ops.mixing_grid(pool, ops.StyleMixGrid(target(stylegan_path), (Code(1),), (Code(2),), (0, 7)))
    np.testing.assert_allclose(out.payload.mixes[0, 0], out.payload.sources_b[0], atol=1e-6)
    with pytest.raises(ValueError, match="outside 0..7"):
        ops.mixing_grid(pool, ops.StyleMixGrid(target(stylegan_path), (Code(1),), (Code(2),), (3, 9)))


def _band_energy(diff: np.ndarray) -> tuple[float, float]:
    """Mean squared (low-pass, high-pass) parts of a (C, H, W) difference; low-pass is a 4x4 box."""
    c, h, w = diff.shape
    blocks = diff.reshape(c, h // 4, 4, w // 4, 4).mean(axis=(2, 4))
    low = np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)
    return float((low ** 2).mean()), float(((diff - low) ** 2).mean())


def test_turning_off_the_finest_noise_changes_fine_detail_not_coarse_structure(pool, stylegan_path):
    def image(modes):
        req = ops.GanGenerate(target(stylegan_path), Code(7), noise=NoiseSpec(modes, (), 3))
        model = ops.GanModel(pool, req.target)
        return model.render([req.code], noise=req.noise)[0]

    on = image(("fixed",) * 8)
    fine_low, fine_high = _band_energy(image(("fixed",) * 6 + ("off",) * 2) - on)
    coarse_low, coarse_high = _band_energy(image(("off",) * 2 + ("fixed",) * 6) - on)
    assert fine_high > 0
    assert fine_low < 0.25 * fine_high  # 32x32 noise: almost all of the change is high frequency
    assert coarse_low / coarse_high > 2 * fine_low / fine_high  # 4x4 noise moves coarser structure


def test_fixed_noise_is_deterministic_and_random_noise_varies(pool, stylegan_path):
    def render(mode, seed=0):
        return ops.generate(pool, ops.GanGenerate(target(stylegan_path), Code(5),
                                                  noise=NoiseSpec((mode,) * 8, (), seed))).image

    assert np.array_equal(render("fixed"), render("fixed"))
    assert not np.array_equal(render("fixed", 0), render("fixed", 1))  # "resample noise": a new seed
    assert not np.array_equal(render("random"), render("random"))
    off = render("off")
    assert np.array_equal(off, render("off"))
    strong = ops.generate(pool, ops.GanGenerate(target(stylegan_path), Code(5),
                                                noise=NoiseSpec(("fixed",) * 8, (3.0,) * 8))).image
    assert np.abs(strong.astype(float) - off).mean() > np.abs(render("fixed").astype(float) - off).mean()


def test_truncation_psi_zero_gives_the_w_avg_image_for_every_seed(pool, stylegan_path):
    model = ops.GanModel(pool, target(stylegan_path))
    images = model.render([Code(s) for s in (0, 1, 2, 99)], psi=0.0)
    w_avg = np.broadcast_to(model.w_avg, (1, 8, 64)).copy()
    ref = torch_images(pool, stylegan_path, w_avg, model.noise(NoiseSpec(), 1))[0]
    for im in images:
        np.testing.assert_allclose(im, ref, atol=1e-4)
    partial = model.render([Code(0), Code(1)], psi=0.0, cutoff=4)  # fine layers keep each seed's style
    assert np.abs(partial[0] - partial[1]).mean() > 1e-3


def test_dcgan_seeds_z_and_truncation(pool, dcgan_path):
    a = ops.generate(pool, ops.GanGenerate(target(dcgan_path), Code(1))).image
    b = ops.generate(pool, ops.GanGenerate(target(dcgan_path), Code(2))).image
    assert a.shape == (28, 28) and not np.array_equal(a, b)
    z = tuple(float(v) for v in ops.seed_to_z(1, 64))
    assert np.array_equal(ops.generate(pool, ops.GanGenerate(target(dcgan_path), Code(z=z))).image, a)
    flat = [ops.generate(pool, ops.GanGenerate(target(dcgan_path), Code(s), psi=0.0)).image for s in (1, 2)]
    assert np.array_equal(*flat)
    with pytest.raises(ValueError, match="StyleGAN"):
        ops.mixing_grid(pool, ops.StyleMixGrid(target(dcgan_path), (Code(1),), (Code(2),)))


def test_pca_directions_and_edits_on_a_layer_range(pool, stylegan_path):
    model = ops.GanModel(pool, target(stylegan_path))
    found = model.directions()
    assert np.all(np.diff(found.stds) <= 1e-6) and 0 < found.explained.sum() <= 1.0 + 1e-6
    np.testing.assert_allclose(np.linalg.norm(found.components, axis=1), 1.0, atol=1e-5)
    ws = model.styles([Code(3)])
    edited = model.apply_edits(ws, [Edit(0, 2.0, (2, 4))])
    moved = np.linalg.norm(edited - ws, axis=2)[0]
    assert np.all(moved[[0, 1, 5, 6, 7]] == 0)
    np.testing.assert_allclose(moved[2:5], 2.0 * found.stds[0], rtol=1e-4)
    plain = ops.generate(pool, ops.GanGenerate(target(stylegan_path), Code(3))).image
    moved_image = ops.generate(pool, ops.GanGenerate(target(stylegan_path), Code(3),
                                                     edits=(Edit(0, 3.0, (0, 7)),))).image
    assert np.abs(plain.astype(float) - moved_image).mean() > 1.0
    info = ops.directions(pool, ops.GanDirections(target(stylegan_path)))
    assert len(info.payload.stds) == 16


def test_interpolation_strip_ends_at_both_sources(pool, stylegan_path):
    req = ops.GanInterpolate(target(stylegan_path), Code(1), Code(2), steps=6)
    out = ops.interpolate(pool, req)
    frames = out.payload.frames
    assert len(frames) == 6 and out.image.shape == (34, 6 * 33 + 1, 3)
    for frame, seed in ((frames[0], 1), (frames[-1], 2)):
        np.testing.assert_array_equal(frame, ops.generate(pool, ops.GanGenerate(req.target, Code(seed))).image)
    ws = tuple(tuple(float(v) for v in layer) for layer in ops.GanModel(pool, req.target).styles([Code(9)])[0])
    mixed = ops.interpolate(pool, ops.GanInterpolate(req.target, Code(1), Code(ws=ws), steps=3))
    assert len(mixed.payload.frames) == 3  # a projection's w+ interpolates linearly in w


def test_session_file_round_trip_and_bad_files(tmp_path):
    noise = tuple(np.full((1, r, r), 0.5, np.float32) for r in (4, 4, 8, 8, 16, 16, 32, 32))
    projected = Code(ws=((0.25,) * 3,) * 8, noise=noise)
    session = ops.Session("ckpt.safetensors", "stylegan", Code(4, z=(0.5, -1.0)), projected, Code(9), 0.7, 4,
                          (Edit(1, -2.0, (0, 3)),), steps=10)
    path = ops.save_session(session, tmp_path / "latents.json")
    loaded = ops.load_session(path)
    assert loaded == session  # Code equality leaves the noise maps out: check them too
    assert all(np.array_equal(a, b) for a, b in zip(loaded.a.noise, noise))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a JSON file"):
        ops.load_session(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a GAN latents file"):
        ops.load_session(tmp_path / "other.json")


def test_gif_export_writes_every_frame(tmp_path):
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 80, 160, 240)]
    path = ops.export_gif(frames, tmp_path / "walk.gif", bounce=True)
    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (32, 32)  # there and back, 4x larger


def test_a_vae_checkpoint_is_refused_with_a_clear_message(pool, tiny_vae_path):
    with pytest.raises(ValueError, match="a 'vae' checkpoint, not a GAN"):
        ops.generate(pool, ops.GanGenerate(target(tiny_vae_path), Code(1)))


def test_noise_std_map_shows_where_noise_acts(pool, stylegan_path):
    t = target(stylegan_path)
    out = ops.noise_std_map(pool, ops.NoiseStdMap(t, Code(2), draws=32))
    assert out.image.shape == (32, 32, 3) and out.payload.max_std > 0
    silent = ops.noise_std_map(pool, ops.NoiseStdMap(t, Code(2), noise=NoiseSpec(("off",) * 8)))
    assert silent.payload.max_std < 1e-5 and silent.image.max() < 5  # rounding only: a black map
    fine_only = ops.noise_std_map(pool, ops.NoiseStdMap(t, Code(2), noise=NoiseSpec(("off",) * 6 + ("fixed",) * 2)))
    assert 0 < fine_only.payload.max_std


@pytest.fixture
def digit_png(tmp_path, pool, stylegan_path):
    """A picture the model can make: projecting it must get close."""
    image = ops.generate(pool, ops.GanGenerate(target(stylegan_path), Code(11), psi=0.7)).image
    path = tmp_path / "target.png"
    Image.fromarray(image).save(path)
    return path


def test_projection_lowers_its_loss(pool, stylegan_path, digit_png):
    req = ops.GanProject(target(stylegan_path, "torch"), str(digit_png), space="w+", steps=60,
                         max_seconds=60.0, report_every=20)
    outs = list(ops.project(pool, req))
    assert [o.final for o in outs] == [False, False, True]
    curve = outs[-1].payload.loss
    assert len(curve) == 60 and min(curve[-5:]) < 0.5 * curve[0]
    ws = np.asarray(outs[-1].payload.ws)
    assert ws.shape == (8, 64)
    assert outs[-1].image.shape == (34, 67, 3)  # target | projection


def test_projection_reads_digits_in_grey_as_the_evaluation_does():
    """The classifier in the projection loss sees a coloured picture as grey_digits makes it."""
    from studio.data.recolour import grey_digits, recolour_digits
    from studio.families.stylegan.ops.projection import grey_like_evaluation

    digits = np.zeros((6, 1, 28, 28), np.float32)
    for i in range(6):
        digits[i, 0, 5 + i: 22, 8 + i: 12 + 2 * i] = 1.0  # bars of several widths and places
    rgb = recolour_digits(digits, seed=3)
    ours = grey_like_evaluation(torch.from_numpy(rgb) * 2.0 - 1.0).numpy()
    np.testing.assert_allclose(ours, grey_digits(rgb), atol=1e-5)
    assert ours.shape == (6, 1, 32, 32) and ours.max() == pytest.approx(1.0)


def test_projection_starts_from_the_nearest_candidate_and_reuses_their_pictures(pool, stylegan_path, tmp_path,
                                                                               monkeypatch):
    """A target drawn from candidate 5 starts there; a second projection renders no candidates again."""
    from studio.families.stylegan.ops import projection

    g = pool.get(stylegan_path).torch_model()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        w = g.mapping(torch.randn(1000, 64, generator=gen))
        noises = [torch.randn((1, 1, r, r), generator=gen) for r in (4, 4, 8, 8, 16, 16, 32, 32)]
        picture = g.synthesis(w[5][None, None].expand(1, 8, -1), noises)
    path = tmp_path / "candidate5.png"
    Image.fromarray(((picture[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(path)
    batches = []
    original = g.synthesis.forward
    monkeypatch.setattr(g.synthesis, "forward", lambda ws, n=None: (batches.append(len(ws)), original(ws, n))[1])
    req = ops.GanProject(target(stylegan_path, "torch"), str(path), steps=1, max_seconds=60.0, seed=7, candidates=64)
    first = list(ops.project(pool, req))[-1]
    found = torch.tensor(first.payload.ws[0])
    assert int(((w[:64] - found) ** 2).sum(dim=1).argmin()) == 5  # one small step away from candidate 5
    assert max(batches) == 64  # the candidates were rendered
    batches.clear()
    list(ops.project(pool, req))
    assert batches and max(batches) == 1  # only the optimisation's own pictures
    assert len(projection._starts) >= 1


def test_projection_can_be_cancelled(stylegan_path, digit_png):
    pool = RuntimePool()
    results = []
    first = threading.Event()
    renderer = Renderer(lambda r: (results.append(r), first.set()))
    ops.register(renderer, pool)
    renderer.submit("project", ops.GanProject(target(stylegan_path, "torch"), str(digit_png),
                                              steps=100_000, max_seconds=120.0, report_every=2))
    assert first.wait(60)
    renderer.cancel("project")
    deadline = time.monotonic() + 10
    while not renderer.idle() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert renderer.idle()  # stopped long before 100,000 steps or 120 s
    renderer.shutdown()
    assert results and not any(r.final for r in results) and results[0].error is None
