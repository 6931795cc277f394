"""Evaluation metrics: known answers, parity with torch-fidelity, the shipped classifier's bar."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from studio.evaluation import metrics as M

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "datasets" / "mnist"
CLASSIFIER = REPO / "studio" / "checkpoints" / "digit_classifier.safetensors"


def correlated_gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(d, d)) / np.sqrt(d)  # one fixed covariance
    return rng.normal(size=(n, d)) @ mix + shift


# ---- FID ------------------------------------------------------------------------------

def test_fid_of_a_set_with_itself_is_zero():
    x = correlated_gaussian(2000, 32, seed=0)
    assert abs(M.fid(x, x)) < 1e-6


def test_fid_with_equal_covariances_is_the_squared_mean_gap():
    x = correlated_gaussian(2000, 16, seed=1)
    delta = np.linspace(-0.5, 0.5, 16)
    assert M.fid(x + delta, x) == pytest.approx(float(delta @ delta), rel=1e-6)


def symmetric_trace_sqrt(a: np.ndarray, b: np.ndarray) -> float:
    """tr sqrt(A^1/2 B A^1/2) via symmetric eigendecompositions: an independent route."""
    w, v = np.linalg.eigh(a)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(root @ b @ root), 0, None)).sum())


def test_fid_matches_the_closed_form_of_two_gaussians():
    rng = np.random.default_rng(2)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # Diagonal covariances commute: FID = |mu1 - mu2|^2 + sum (s1 - s2)^2 exactly.
    s1, s2 = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    exact = float((mu1 - mu2) @ (mu1 - mu2) + ((s1 - s2) ** 2).sum())
    a, b = M.GaussianStats(mu1, np.diag(s1**2), 10**6), M.GaussianStats(mu2, np.diag(s2**2), 10**6)
    assert M.frechet_distance(a, b) == pytest.approx(exact, rel=1e-10)
    # Full covariances: the eigenvalue route agrees with the symmetric square root.
    c1, c2 = np.cov(rng.normal(size=(50, d)), rowvar=False), np.cov(rng.normal(size=(50, d)) * 2, rowvar=False)
    assert M.trace_sqrt_product(c1, c2) == pytest.approx(symmetric_trace_sqrt(c1, c2), rel=1e-9)
    # Samples from the two Gaussians converge on the closed form.
    x = mu1 + rng.normal(size=(200_000, d)) * s1
    y = mu2 + rng.normal(size=(200_000, d)) * s2
    assert M.fid(x, y) == pytest.approx(exact, rel=0.02)


def test_fid_infinity_removes_the_small_sample_bias():
    d = 16
    population = M.GaussianStats(np.zeros(d), np.eye(d), 10**9)
    curve = M.fid_vs_n(np.random.default_rng(3).normal(size=(5000, d)), population)
    assert curve.sizes == [500, 1000, 2000, 5000]
    assert curve.fids[0] > curve.fids[1] > curve.fids[2] > curve.fids[3]
    # The truth is 0; the bias at N=500 is about (d + d(d+1)/4) / N = 0.17.
    assert abs(curve.fid_infinity) < min(curve.fids[-1], 0.05 * curve.fids[0])
    assert M.fid_vs_n(np.random.default_rng(3).normal(size=(700, d)), population).fid_infinity is None


def test_warnings_for_few_samples_and_rank_deficient_covariance():
    many = M.gaussian_stats(np.random.default_rng(4).normal(size=(1000, 16)))
    assert M.reliability_warnings(many, "x") == []
    few = M.reliability_warnings(M.gaussian_stats(np.random.default_rng(4).normal(size=(100, 16))), "x")
    assert len(few) == 1 and "10*d=160" in few[0]
    deficient = M.reliability_warnings(M.gaussian_stats(np.random.default_rng(4).normal(size=(10, 16))), "x")
    assert any("rank-deficient (rank 9 of 16)" in w for w in deficient)


# ---- KID ------------------------------------------------------------------------------

def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    x, y = correlated_gaussian(2000, 16, seed=5), correlated_gaussian(2000, 16, seed=6)
    same, same_std = M.kid(x, y, subsets=20)
    shifted, shifted_std = M.kid(x, y + 0.5, subsets=20)
    assert abs(same) < max(3 * same_std, 1e-3)
    assert shifted > 0.05 and shifted > 20 * shifted_std
    assert M.kid(x, y, subsets=20) == (same, same_std)  # seeded


# ---- IS, class histogram --------------------------------------------------------------

def test_inception_score_bounds():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert M.inception_score(one_hot, shuffle=False) == pytest.approx((10.0, 0.0), abs=1e-9)
    assert M.inception_score(one_hot)[0] > 9.5  # shuffled splits are only nearly balanced
    assert M.inception_score(np.full((1000, 10), 0.1)) == pytest.approx((1.0, 0.0), abs=1e-9)
    assert M.inception_score(np.eye(10)[np.zeros(1000, int)])[0] == pytest.approx(1.0)  # one class only
    with pytest.raises(ValueError, match="logits"):
        M.inception_score(np.random.default_rng(0).normal(size=(100, 10)))


def test_class_fractions_and_confidence():
    probs = np.full((4, 10), 0.01)
    probs[[0, 1, 2, 3], [3, 3, 7, 1]] = 0.91
    probs[3] = 0.1
    fractions = M.class_fractions(probs)
    assert fractions.sum() == pytest.approx(1.0) and fractions[3] == 0.5 and fractions[7] == 0.25
    assert M.confident_fraction(probs) == 0.75


# ---- precision / recall ---------------------------------------------------------------

def test_precision_recall_identical_disjoint_and_collapsed():
    real = correlated_gaussian(600, 8, seed=7)
    assert M.precision_recall(real, real) == (1.0, 1.0)
    assert M.precision_recall(real + 100.0, real) == (0.0, 0.0)
    # A generator that covers one of two real modes: faithful (precision) but not diverse (recall).
    rng = np.random.default_rng(8)
    two_modes = np.concatenate([rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 20])
    one_mode = rng.normal(size=(600, 4))
    precision, recall = M.precision_recall(one_mode, two_modes)
    assert precision > 0.9 and 0.35 < recall < 0.55


# ---- parity with torch-fidelity -------------------------------------------------------

class _Anything:
    """Stands in for any torchvision class or function torch-fidelity names at import time."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getattr__(self, name):
        return _Anything()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


class _TorchvisionStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves empty ``torchvision`` modules: the formulas we compare never touch torchvision,
    but torch_fidelity/__init__ imports it, and PyPI's torchvision can fail to load beside a
    CPU-only torch ("operator torchvision::nms does not exist")."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StubModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


TF_MODULES = ("metric_fid", "metric_kid", "metric_isc", "metric_prc")


def torch_fidelity_formulas() -> dict[str, types.ModuleType]:
    """torch-fidelity's metric modules, imported with torchvision stubbed for the import only."""
    if importlib.util.find_spec("torch_fidelity") is None:
        pytest.skip("torch-fidelity is not installed")
    ours = ("torchvision", "torch_fidelity")
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ours}
    for k in saved:
        del sys.modules[k]
    stub = _TorchvisionStub()
    sys.meta_path.insert(0, stub)
    try:
        return {name: importlib.import_module(f"torch_fidelity.{name}") for name in TF_MODULES}
    finally:  # leave sys.modules as we found it: no other test sees the stub
        sys.meta_path.remove(stub)
        for k in [k for k in sys.modules if k.split(".")[0] in ours]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_parity_with_torch_fidelity():
    import torch

    tf = torch_fidelity_formulas()
    gen, real = correlated_gaussian(1500, 32, seed=10, shift=0.2), correlated_gaussian(2500, 32, seed=11)
    g, r = torch.from_numpy(gen), torch.from_numpy(real)

    theirs = tf["metric_fid"].fid_statistics_to_metric(
        tf["metric_fid"].fid_features_to_statistics(g), tf["metric_fid"].fid_features_to_statistics(r), False)
    assert M.fid(gen, real) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)

    theirs = tf["metric_kid"].kid_features_to_metric(g, r, kid_subsets=10, kid_subset_size=1000, verbose=False)
    mean, std = M.kid(gen, real, subsets=10, subset_size=1000)
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6)

    logits = torch.from_numpy(np.random.default_rng(12).normal(size=(2000, 10)) * 3)
    theirs = tf["metric_isc"].isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=M.DEFAULT_SEED)
    mean, std = M.inception_score(torch.softmax(logits, dim=1).numpy())
    assert mean == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert std == pytest.approx(theirs["inception_score_std"], rel=1e-6)

    precision, recall = tf["metric_prc"].calculate_precision_recall_full(g[:800], r[:800], 3, 10000)
    assert M.precision_recall(gen[:800], real[:800]) == (pytest.approx(precision), pytest.approx(recall))


# ---- the shipped classifier and the report --------------------------------------------

@pytest.fixture(scope="module")
def mnist():
    from studio.data.datasets import open_dataset

    if not MNIST.exists():
        pytest.skip("the shared MNIST digits are not present")
    return open_dataset(MNIST)


@pytest.fixture(scope="module")
def extractor():
    from studio.evaluation.features import DigitFeatureExtractor

    import torch

    torch.set_num_threads(1)
    return DigitFeatureExtractor(CLASSIFIER)


def test_shipped_classifier_reaches_its_accuracy_bar(mnist, extractor):
    stored = extractor.checkpoint_metrics
    assert stored["eval_split"] == "held-out" and stored["eval_images"] == 1000
    assert stored["heldout_accuracy"] >= 0.985
    held = extractor(mnist.images[-1000:])
    measured = float((held.probs.argmax(1) == mnist.labels[-1000:]).mean())
    assert measured >= 0.985
    assert measured == pytest.approx(stored["heldout_accuracy"], abs=0.002)
    assert held.features.shape == (1000, extractor.feature_dim) and 64 <= extractor.feature_dim <= 128
    assert (held.features < 0).any()  # pre-ReLU: a post-ReLU layer would be clamped at 0


def test_fid_does_not_depend_on_the_feature_batch_size(mnist, extractor):
    images = mnist.images[:300]
    reference = M.gaussian_stats(extractor(mnist.images[300:900]).features)
    by_batch = {bs: extractor(images, batch_size=bs) for bs in (1, 7, 300)}
    fids = {bs: M.frechet_distance(M.gaussian_stats(fs.features), reference) for bs, fs in by_batch.items()}
    for bs in (1, 7):
        np.testing.assert_allclose(by_batch[bs].features, by_batch[300].features, rtol=1e-4, atol=1e-4)
        assert fids[bs] == pytest.approx(fids[300], rel=1e-5)


def test_report_and_floor_on_a_small_split(tmp_path, mnist, extractor):
    from studio.evaluation import features as F
    from studio.evaluation.report import evaluate_samples, floor, format_report

    data = tmp_path / "digits.npz"  # 1,500 digits: 1,000 reference, 500 held out
    np.savez(data, images=(mnist.images[:1500, 0] * 255).round().astype(np.uint8), labels=mnist.labels[:1500])
    ref = F.reference_features(extractor, data, cache_dir=tmp_path / "cache", holdout=500)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    F._REFERENCES.clear()  # the second call must come from the disk cache, identical
    again = F.reference_features(extractor, data, cache_dir=tmp_path / "cache", holdout=500)
    np.testing.assert_array_equal(again.train.features, ref.train.features)

    base = floor(ref, kid_subsets=5)
    keys = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "confident_fraction",
            "class_fractions", "warnings", "fid_infinity", "feature_extractor"}
    assert keys <= base.keys() and len(base["class_fractions"]) == 10
    assert base["feature_extractor"].startswith(f"studio digit classifier {extractor.sha256[:12]}")
    assert base["is"] > 8 and base["confident_fraction"] > 0.9 and base["precision"] > 0.5
    assert any("N=500 is below 10*d" in w for w in base["warnings"])
    # The same held-out digits as 32x32 uint8 (padded by 2, as a U-Net emits them) score the same.
    padded = np.pad((mnist.images[1000:1500, 0] * 255).round().astype(np.uint8), ((0, 0), (2, 2), (2, 2)))
    same = evaluate_samples(padded, ref, kid_subsets=5, seed=M.DEFAULT_SEED)
    assert same["fid"] == pytest.approx(base["fid"], rel=1e-6)
    noise = evaluate_samples(np.random.default_rng(0).random((500, 28, 28)), ref, kid_subsets=5,
                             with_precision_recall=False, with_fid_curve=False)
    assert noise["fid"] > 10 * base["fid"] and noise["kid"] > 10 * max(base["kid"], 1e-4)
    assert "FID" in format_report(same)


def test_metrics_leave_the_blas_thread_count_as_they_found_it():
    from studio.evaluation import blas

    api = blas._openblas()
    if api is None:
        pytest.skip("no OpenBLAS found among the loaded libraries (the limit is a no-op here)")
    _set, get = api
    before = get()
    with blas.blas_threads(1):
        assert get() == 1
        M.kid(np.ones((20, 4)), np.zeros((20, 4)), subsets=2)  # nests a second limit
        assert get() == 1
    assert get() == before


def test_classifier_trainer_batches_carry_their_own_labels(tmp_path, mnist):
    from studio.data.datasets import ImageDataset
    from studio.families.classifier.trainer import ClassifierTrainer
    from studio.training.trainer import TrainOptions

    small = ImageDataset(mnist.images[:260], mnist.labels[:260], "mnist-260")
    options = TrainOptions(family="classifier", out=str(tmp_path), steps=3, batch_size=64, holdout=60,
                           checkpoint_every=0, preview_every=0, log_every=0, device="cpu")
    trainer = ClassifierTrainer(options, small)
    flat = small.images[:200].reshape(200, -1)
    for _ in range(5):  # 200 training digits, batches of 64: crosses a reshuffle
        batch = trainer.next_batch()
        rows = [int(np.flatnonzero((flat == b).all(axis=1))[0]) for b in batch.images.numpy().reshape(64, -1)]
        np.testing.assert_array_equal(batch.labels.numpy(), small.labels[rows])
    list(trainer.run())
    metrics = trainer.metrics()
    assert metrics["eval_images"] == 60 and 0.0 <= metrics["heldout_accuracy"] <= 1.0
    grid = trainer.preview()
    assert grid.dtype == np.uint8 and grid.ndim == 2
