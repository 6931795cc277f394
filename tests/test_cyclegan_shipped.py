"""The shipped handwritten <-> printed CycleGAN: its round trip, its graphs, its stated figures."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO

SHIPPED = REPO / "studio" / "checkpoints" / "cyclegan_digits.safetensors"


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED.exists():
        pytest.fail(f"shipped checkpoint missing: {SHIPPED}")
    from studio.engine.runtime import ModelRuntime

    return ModelRuntime(SHIPPED)


@pytest.fixture(scope="module")
def held_out(mnist_small):
    """Handwritten digits (the first 64 shared ones, padded to 32) and held-out printed digits 9000-9063."""
    from studio.data.printed import render_printed

    handwritten = np.pad(mnist_small.images[:64], ((0, 0), (0, 0), (2, 2), (2, 2)))
    printed, labels = render_printed(0, 9000, 64)
    return {"AtoB": (handwritten, mnist_small.labels[:64]), "BtoA": (printed, labels)}


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_the_round_trip_comes_back_closer_than_the_translation(shipped, held_out, direction):
    from studio.families.cyclegan.ops import translate_arrays

    x, _ = held_out[direction]
    fake, rec = translate_arrays(shipped, x, direction, "onnx", "cpu")
    cycle = np.abs(rec - x).mean(axis=(1, 2, 3))
    translation = np.abs(fake - x).mean(axis=(1, 2, 3))
    assert cycle.mean() < translation.mean()
    assert (cycle < translation).mean() > 0.8  # picture by picture, not only on average
    assert cycle.mean() <= 0.05  # the bound on the 0..1 scale


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_translations_keep_the_digit(shipped, held_out, direction):
    from studio.evaluation.features import load_extractor
    from studio.families.cyclegan.ops import translate_arrays

    x, labels = held_out[direction]
    fake, _ = translate_arrays(shipped, x, direction, "onnx", "cpu")
    read = load_extractor()(fake).probs.argmax(axis=1)
    assert (read == labels).mean() >= 0.9


def test_shipped_onnx_and_torch_agree_and_sidecars_are_stamped(shipped, held_out):
    from studio.engine.export import DIGEST_KEY, file_digest

    x = held_out["BtoA"][0][:8]
    for graph in ("G_AB", "G_BA"):
        onnx = shipped.backend(graph, "onnx", "cpu")
        assert onnx.path == SHIPPED.with_name(f"cyclegan_digits.{graph}.onnx")
        assert onnx.metadata[DIGEST_KEY] == file_digest(SHIPPED)
        np.testing.assert_allclose(onnx.run({"image": x})["translated"],
                                   shipped.backend(graph, "torch", "cpu").run({"image": x})["translated"], atol=1e-4)


def test_the_checkpoint_states_its_measured_quality(shipped):
    metrics = shipped.checkpoint.metrics
    for key in ("label_kept_AtoB", "label_kept_BtoA", "cycle_l1_AtoB", "cycle_l1_BtoA", "fid_AtoB", "fid_BtoA",
                "fid_ratio_AtoB", "fid_ratio_BtoA", "evaluation"):
        assert key in metrics
    assert "evaluate_cyclegan.py" in metrics["evaluation"]
    # FID's scale towards print: the real printed digits in each other typeface, measured and stated
    from studio.data.printed import DOMAIN_TYPEFACE, TYPEFACES
    from studio.families.cyclegan.facts import ModelFacts, fid_scale

    others = [metrics[f"fid_ratio_printed_in_{t}"] for t in TYPEFACES if t != DOMAIN_TYPEFACE]
    assert min(others) > metrics["fid_ratio_AtoB"] > 1.0  # nearer print than another face is, not yet at 1x
    facts = ModelFacts.from_metadata(str(SHIPPED), {"config": shipped.config, "metrics": metrics})
    assert f"score {min(others):.0f}–{max(others):.0f}×" in fid_scale(facts)
    cfg = shipped.config
    assert cfg["digits"] is True and cfg["domain_b"] == "printed" and cfg["channels"] == 1
    assert SHIPPED.stat().st_size < 5_000_000


def test_printed_digits_dropped_as_scans_translate_to_handwriting_keeping_the_digit(shipped):
    """Dark-on-light PNGs of printed digits, larger than the model, through the drop path (inversion, framing)."""
    import io

    from PIL import Image

    from studio.core.imaging import to_uint8
    from studio.data.printed import render_printed
    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool
    from studio.families.cyclegan.ops import CycleTranslate, translate

    images, labels = render_printed(0, 9100, 20)
    sources = []
    for image in images:
        scan = Image.fromarray(255 - to_uint8(image)).resize((96, 96), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        scan.save(buf, format="PNG")
        sources.append(buf.getvalue())
    result = translate(RuntimePool(), CycleTranslate(Target(str(SHIPPED), "onnx", "cpu"), tuple(sources),
                                                     "BtoA")).payload
    assert not result.failed and len(result.images) == 20
    assert all(i.fitting.inverted and i.fitting.mode == "digit" for i in result.images)
    read_in = np.array([i.readings.input.label for i in result.images])
    read_out = np.array([i.readings.translation.label for i in result.images])
    assert (read_in == labels).mean() >= 0.9 and (read_out == labels).mean() >= 0.9
    assert np.mean([i.cycle_l1 < i.translation_l1 for i in result.images]) >= 0.8


def test_the_shipped_pair_shows_what_the_semantic_loss_does(shipped, held_out):
    """The model trained without the semantic loss ships beside it (the panel's switch): the same task,
    and it keeps fewer digits, as stated in its metrics and measured here on held-out digits."""
    from studio.core.checkpoint import read_metadata
    from studio.engine.runtime import ModelRuntime
    from studio.evaluation.features import load_extractor
    from studio.families.cyclegan.facts import ModelFacts, semantic_partner
    from studio.families.cyclegan.ops import translate_arrays

    plain_path = SHIPPED.with_name("cyclegan_digits_no_semantic.safetensors")
    with_loss = ModelFacts.from_metadata(str(SHIPPED), read_metadata(SHIPPED))
    partner = semantic_partner(with_loss, [(str(plain_path), read_metadata(plain_path))])
    assert partner is not None and partner.semantic_weight == 0 and with_loss.semantic_weight > 0
    assert partner.label_kept[0] < with_loss.label_kept[0] and partner.label_kept[1] < with_loss.label_kept[1]
    plain = ModelRuntime(plain_path)
    x, labels = held_out["AtoB"]
    classify = load_extractor()
    kept = {name: (classify(translate_arrays(model, x, "AtoB", "onnx", "cpu")[0]).probs.argmax(axis=1)
                   == labels).mean() for name, model in (("with", shipped), ("without", plain))}
    assert kept["with"] - kept["without"] >= 0.1, kept
