"""The CycleGAN panel's state, without Qt: names, requests, what a failed drop keeps, the folder job's rules."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine.requests import Target
from studio.families.cyclegan.ops import (
    CycleResult, CycleTranslate, DigitReading, Fitting, FolderProgress, Readings, TranslatedImage,
)
from studio.families.cyclegan.facts import ModelFacts, domain_name, fid_scale, semantic_comparison, semantic_partner
from studio.families.cyclegan.state import CyclePanelState, FolderJob, failure_line

META = {"family": "cyclegan", "step": 1200,
        "config": {"domain_a": "handwritten", "domain_b": "printed", "digits": True, "channels": 1, "image_size": 32,
                   "cycle_weight": 10, "identity_weight": 5, "semantic_weight": 1}}
TARGET = Target("model.safetensors", "onnx", "cpu")


def picture(name: str, cycle: float = 0.02, translation: float = 0.2, readings=True) -> TranslatedImage:
    grey = np.full((32, 32), 100, np.uint8)
    r = Readings(DigitReading(7, 0.99), DigitReading(7, 0.9), DigitReading(1, 0.6)) if readings else None
    return TranslatedImage(name, grey, grey + 1, grey + 2, cycle, translation, r,
                           Fitting((90, 45), (32, 32), "digit", "90x45: digit framed"))


def result(*images, failed=()) -> CycleResult:
    return CycleResult("AtoB", tuple(images), tuple(failed), 3.0, 1.0, "onnx")


def opened() -> CyclePanelState:
    state = CyclePanelState()
    state.open("model.safetensors", META)
    return state


def test_domains_name_the_toggle_titles_and_generators():
    state = opened()
    assert state.direction_label("AtoB") == "handwritten → printed"
    assert state.direction_label("BtoA") == "printed → handwritten"
    state.set_direction("BtoA")
    assert state.view_titles() == ("input: printed", "translation: handwritten  (G_BA)",
                                   "round trip: printed again  (G_AB)")
    assert "semantic loss 1" in state.model.describe() and "step 1200" in state.model.describe()
    with pytest.raises(ValueError, match="sideways"):
        state.set_direction("sideways")
    with pytest.raises(ValueError, match="unknown fit 'zoom'"):
        state.set_fit("zoom")
    assert domain_name("/data/horses/", "A") == "horses" and domain_name("", "B") == "B"


def test_domain_a_left_to_the_runs_dataset_is_named_from_it():
    def facts(dataset, digits=True, **metrics):
        config = {**META["config"], "domain_a": "", "digits": digits}
        return ModelFacts.from_metadata("m", {**META, "config": config, "dataset": dataset, "metrics": metrics})

    mnist = facts("t10k-images-idx3-ubyte.gz", label_kept_AtoB=0.981, label_kept_BtoA=0.992)
    assert mnist.domain_a == "handwritten"
    assert "digit kept 98% A→B, 99% B→A (held out)" in mnist.describe()
    assert facts("/data/my horses", digits=False).domain_a == "my horses"
    assert "digit kept" not in facts("x.npz").describe()


def test_names_for_files_and_unnamed_pictures():
    assert CyclePanelState.names_for(["/a/b/seven.png", b"png"], "pasted image") == ("seven.png", "pasted image")
    assert CyclePanelState.names_for([b"1", b"2"]) == ("dropped image 1", "dropped image 2")


def test_a_direction_switched_before_the_result_translates_the_new_pictures():
    state = opened()
    state.ask(("old.png",), ("old.png",))
    first = state.request(TARGET)
    state.show(result(picture("old.png")), first)
    state.ask(("new.png",), ("new.png",))  # dropped; its result is not in yet
    state.set_direction("BtoA")
    again = state.request(TARGET)
    assert again.sources == ("new.png",) and again.direction == "BtoA"


def test_a_refused_drop_keeps_the_pictures_on_screen():
    state = opened()
    state.ask(("good.png",), ("good.png",))
    state.show(result(picture("good.png")), state.request(TARGET))
    state.ask(("bad.txt",), ("bad.txt",))
    state.refused()
    assert state.request(TARGET).sources == ("good.png",) and state.current().name == "good.png"


def test_words_for_the_picture_on_screen():
    state = opened()
    request = CycleTranslate(TARGET, ("a.png", "b.png", "c.txt"), names=("a.png", "b.png", "c.txt"))
    state.show(result(picture("a.png"), picture("b.png", cycle=0.3, translation=0.1),
                      failed=[("c.txt", "c.txt: not an image file Pillow can read")]), request)
    assert state.reading_texts() == ("classifier reads 7 (99%)", "classifier reads 7 (90%)",
                                     "classifier reads 1 (60%)")
    assert "cycle L1 0.020 · translation L1 0.200" in state.metrics_text()
    assert "the round trip came back closer to the input than the translation went" in state.metrics_text()
    assert state.failures_text() == "2 translated, 1 could not be: c.txt: not an image file Pillow can read"
    assert state.item_label(0) == "a.png  7→7→1  cycle 0.020"
    state.select(1)
    assert "no closer to the input than the translation: the cycle is not kept here" in state.metrics_text()
    state.select(5)  # out of range: unchanged
    assert state.current().name == "b.png"
    assert state.fitting_text() == "fitted: 90x45: digit framed"
    strip = state.strip()
    assert strip.shape == (32, 100) and (strip[:, 32:34] == 0).all() and (strip[:, 34:66] == 101).all()
    assert state.save_name("strip") == "b_AtoB_strip.png"


def test_a_failure_is_named_once_whatever_the_reason_starts_with():
    assert failure_line("c.txt", "/tmp/in/c.txt: not an image") == "c.txt: not an image"
    assert failure_line("c.txt", "c.txt: empty file") == "c.txt: empty file"
    assert failure_line("pasted image", "cannot write /x (denied)") == "pasted image: cannot write /x (denied)"


def test_a_colour_model_has_no_readings():
    state = opened()
    state.show(result(picture("photo.jpg", readings=False)), CycleTranslate(TARGET, ("photo.jpg",)))
    assert state.reading_texts() == ("", "", "")


def test_the_folder_job_rules_and_summaries(tmp_path):
    job = FolderJob()
    assert job.problem() == "Choose the folder to translate first."
    job.source = str(tmp_path / "nope")
    assert job.problem().endswith("nope: no such folder")
    job.source = str(tmp_path)
    assert job.problem() == "Choose the output folder first."
    job.output = str(tmp_path)
    assert "must differ" in job.problem()
    job.output = str(tmp_path / "out")
    assert job.problem() is None
    job.start()
    assert job.running and job.summary() == "translating…"
    job.update(FolderProgress(64, 100, (), (("x.txt", "x.txt: not an image"),), 50.0, 1.3))
    assert job.running and job.summary() == "64 of 100, 1 failed, 50 images/s"
    assert job.failures() == ["x.txt: not an image"]
    job.cancel()
    assert not job.running and job.summary() == "cancelled after 64 of 100: 63 written, 1 failed"
    bad = str(tmp_path / "sub" / "y.txt")
    job.update(FolderProgress(64, 100, (), ((bad, f"{bad}: not an image"),), 50.0, 1.3))
    assert job.failures() == ["sub/y.txt: not an image"]  # inside the input folder: named from there
    job.start()
    job.update(FolderProgress(3, 3, ("a.png",), (("gone.png", "no such file or folder"),), 20.0, 0.1, True))
    assert not job.running and job.failures() == ["gone.png: no such file or folder"]
    assert job.summary().startswith(f"done: 2 of 3 written to {tmp_path / 'out'}, 1 failed")


def test_the_semantic_partner_is_the_same_task_with_the_loss_flipped_same_folder_first():
    def meta(semantic, **config):
        return {**META, "config": {**META["config"], "semantic_weight": semantic, **config},
                "metrics": {"label_kept_AtoB": 0.97 if semantic else 0.61, "label_kept_BtoA": 0.99 if semantic else 0.7}}

    model = ModelFacts.from_metadata("/ship/with.safetensors", meta(1))
    candidates = [("/ship/with.safetensors", meta(1)),          # itself
                  ("/elsewhere/without.safetensors", meta(0)),  # a partner, in another folder
                  ("/ship/other_size.safetensors", meta(0, image_size=64)),  # another task
                  ("/ship/also_with.safetensors", meta(2)),     # the loss on as well: no contrast
                  ("/ship/without.safetensors", meta(0))]       # a partner beside it
    assert semantic_partner(model, candidates).checkpoint == "/ship/without.safetensors"
    assert semantic_partner(model, candidates[:2]).checkpoint == "/elsewhere/without.safetensors"
    assert semantic_partner(model, candidates[:1] + candidates[2:4]) is None
    partner = semantic_partner(model, candidates)
    assert semantic_comparison(model, partner) == semantic_comparison(partner, model) == (
        "Digit kept (held out, handwritten→printed / back): with the semantic loss 97.0% / 99.0%, without 61.0% / 70.0%.")
    assert semantic_comparison(model, None) == ""


def test_the_measured_fid_is_stated_beside_other_typefaces_scale():
    metrics = {"fid_ratio_AtoB": 41.23, "fid_ratio_BtoA": 2.19, "fid_ratio_printed_in_stix": 68.1,
               "fid_ratio_printed_in_dejavu-sans": 138.9, "fid_ratio_printed_in_dejavu-serif": 88.0,
               "fid_ratio_handwritten_in_x": 5.0}  # another domain's key: not this target's typefaces
    model = ModelFacts.from_metadata("m.safetensors", {**META, "metrics": metrics})
    assert model.fid_ratio == (41.23, 2.19)
    assert model.other_typefaces == (("stix", 68.1), ("dejavu-serif", 88.0), ("dejavu-sans", 138.9))
    text = fid_scale(model)
    assert "41.2× its real-vs-real floor (handwritten → printed) and 2.19× (printed → handwritten)" in text
    assert "other typefaces (stix, dejavu-serif, dejavu-sans) score 68–139×" in text
    no_typefaces = ModelFacts.from_metadata("m.safetensors", {**META, "metrics": {"fid_ratio_AtoB": 3.0,
                                                                                  "fid_ratio_BtoA": 2.0}})
    assert "3×" in fid_scale(no_typefaces) and "typefaces" not in fid_scale(no_typefaces)
    assert fid_scale(ModelFacts.from_metadata("m.safetensors", META)) == ""  # not measured: nothing claimed



def test_the_explain_text_follows_the_losses_and_figures_of_the_model_open():
    from studio.families.cyclegan.ui.explain import explain

    state = CyclePanelState()
    state.open("with_identity.safetensors", META)  # identity 5, nothing measured
    text, equations = explain(state)
    assert r"5\,\mathcal{L}_{idt}" in equations[3] and "loss is off" not in text and "FID" not in text
    state.open("without_identity.safetensors", {
        **META, "config": {**META["config"], "identity_weight": 0},
        "metrics": {"fid_ratio_AtoB": 29.64, "fid_ratio_BtoA": 1.52, "fid_ratio_printed_in_stix": 68.1}})
    text, equations = explain(state)
    assert r"\mathcal{L}_{idt}" not in equations[3] and r"10\,\mathcal{L}_{cyc}" in equations[3]
    assert "<b>identity</b> loss is off in this model (weight 0)" in text
    assert "29.6× its real-vs-real floor" in text and "other typefaces (stix) score 68×." in text
