"""Sample-quality metrics on feature vectors: FID, KID, IS, precision/recall and friends.

Pure numpy in float64, no torch and no Qt, so the formulas can be read, tested
and reused on any features. The defaults follow torch-fidelity (the seed 2020,
100 KID subsets of 1,000, 10 IS splits) so figures agree with it on the same
features; tests/test_metrics.py checks that parity.

Conventions: ``features`` are (N, d) arrays; ``probs`` are (N, classes) softmax
outputs whose rows sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.evaluation.blas import blas_threads

DEFAULT_SEED = 2020  # torch-fidelity's rng_seed: same KID subsets and IS shuffles as it draws
FID_SIZES = (500, 1000, 2000, 5000)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
PR_NEIGHBOURS = 3
CONFIDENT_PROB = 0.9
SAMPLES_PER_DIM = 10  # below N = 10 d the covariance estimate, hence FID, is unreliable
_CHUNK = 1024  # rows of a pairwise-distance block: bounded memory for k-NN work


def as_features(x: np.ndarray, name: str = "features") -> np.ndarray:
    """A float64 (N, d) array; raises on the wrong shape or non-finite values."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (N, d) array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return a


# ---- FID ------------------------------------------------------------------------------

@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a feature set: all FID needs, and cheap to cache."""

    mean: np.ndarray
    cov: np.ndarray
    n: int

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def gaussian_stats(features: np.ndarray) -> GaussianStats:
    f = as_features(features)
    if len(f) < 2:
        raise ValueError("a covariance needs at least 2 feature vectors")
    # np.cov uses N-1 (unbiased), as TTUR's and torch-fidelity's FID do.
    return GaussianStats(f.mean(axis=0), np.cov(f, rowvar=False), len(f))


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr sqrt(cov1 cov2) from the eigenvalues of cov1 cov2.

    cov1 cov2 is similar to the PSD matrix cov1^1/2 cov2 cov1^1/2, so its eigenvalues
    are real and >= 0 in exact arithmetic; rounding adds tiny imaginary parts and
    tiny negatives, which we drop and clip. No scipy.linalg.sqrtm: its iterative
    matrix square root is slow and can fail on near-singular covariances.
    """
    eig = np.linalg.eigvals(cov1 @ cov2)
    return float(np.sqrt(np.clip(eig.real, 0.0, None)).sum())


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)."""
    if a.dim != b.dim:
        raise ValueError(f"feature dimensions differ: {a.dim} vs {b.dim}")
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt_product(a.cov, b.cov))


def fid(features_a: np.ndarray, features_b: np.ndarray | GaussianStats) -> float:
    b = features_b if isinstance(features_b, GaussianStats) else gaussian_stats(features_b)
    return frechet_distance(gaussian_stats(features_a), b)


@dataclass
class FidCurve:
    """FID measured at growing N, and its extrapolation to infinitely many samples."""

    sizes: list[int] = field(default_factory=list)
    fids: list[float] = field(default_factory=list)
    fid_infinity: float | None = None  # None with fewer than two sizes

    def to_dict(self) -> dict:
        return {"n": self.sizes, "fid": self.fids, "fid_infinity": self.fid_infinity}


def fid_vs_n(features: np.ndarray, reference: GaussianStats, sizes=FID_SIZES,
             seed: int = DEFAULT_SEED) -> FidCurve:
    """FID of random subsets of ``features`` of each size N available, and FID-infinity.

    FID is biased upwards by roughly c/N, with c depending on the model (Chong &
    Forsyth 2020, "Effectively Unbiased FID"), so comparing models at one N can
    rank them wrongly. A straight-line fit of FID against 1/N, read at 1/N = 0,
    removes that bias.
    """
    f = as_features(features)
    rng = np.random.RandomState(seed)
    curve = FidCurve()
    for n in sorted(s for s in sizes if 2 <= s <= len(f)):
        subset = f[rng.choice(len(f), n, replace=False)] if n < len(f) else f
        curve.sizes.append(int(n))
        curve.fids.append(frechet_distance(gaussian_stats(subset), reference))
    if len(curve.sizes) >= 2:
        _slope, intercept = np.polyfit(1.0 / np.asarray(curve.sizes, float), curve.fids, 1)
        curve.fid_infinity = float(intercept)
    return curve


# ---- KID ------------------------------------------------------------------------------

def _poly_kernel_sum(x: np.ndarray, y: np.ndarray) -> float:
    """Sum over all pairs of k(x, y) = (x.y / d + 1)^3, without a third temporary."""
    k = x @ y.T
    k *= 1.0 / x.shape[1]
    k += 1.0
    return float(np.vdot(k * k, k))  # sum of k^3 as one BLAS dot


def _poly_kernel_diag_sum(x: np.ndarray) -> float:
    return float((((x * x).sum(axis=1) / x.shape[1] + 1.0) ** 3).sum())


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018).

    The within-set sums leave out the diagonal k(x_i, x_i), which is what makes the
    estimate unbiased, and also why it can come out negative for equal distributions.
    """
    m, n = len(x), len(y)
    kxx = _poly_kernel_sum(x, x) - _poly_kernel_diag_sum(x)
    kyy = _poly_kernel_sum(y, y) - _poly_kernel_diag_sum(y)
    kxy = _poly_kernel_sum(x, y)
    return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2.0 * kxy / (m * n)


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of MMD^2 over random equal-size subsets."""
    a, b = as_features(features_a, "features_a"), as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors in each set")
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    with blas_threads(1):  # many small products: threads cost more in waiting than they add
        for i in range(subsets):
            # Draw order a, then b, as torch-fidelity does, so the subsets are the same.
            sa = a[rng.choice(len(a), m, replace=False)]
            sb = b[rng.choice(len(b), m, replace=False)]
            mmds[i] = mmd2_unbiased(sa, sb)
    return float(mmds.mean()), float(mmds.std())


# ---- IS and the classifier's view of the samples --------------------------------------

def as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs: expected a non-empty (N, classes) array, got shape {p.shape}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probs: rows must be probability vectors (softmax outputs), not logits")
    return p


def inception_score(probs: np.ndarray, splits: int = IS_SPLITS, seed: int = DEFAULT_SEED,
                    shuffle: bool = True) -> tuple[float, float]:
    """exp E_x[KL(p(y|x) || p(y))], mean and std over ``splits`` chunks.

    High when each sample is confidently one class (sharp p(y|x)) and the classes
    are used evenly (flat p(y)); 1 at worst, the number of classes at best.
    """
    p = as_probs(probs)
    n = len(p)
    if shuffle:  # chunks of a class-sorted batch would each see one class only
        p = p[np.random.RandomState(seed).permutation(n)]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits: (i + 1) * n // splits]
        if len(chunk) == 0:
            continue
        marginal = chunk.mean(axis=0)
        positive = chunk > 0  # 0 log 0 = 0
        logs = np.log(np.where(positive, chunk, 1.0)) - np.log(np.where(positive, marginal, 1.0))
        kl = (chunk * logs).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_fractions(probs: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Fraction of samples predicted as each class: mode dropping shows as near-zero bins."""
    p = as_probs(probs)
    k = num_classes or p.shape[1]
    return np.bincount(p.argmax(axis=1), minlength=k)[:k] / len(p)


def confident_fraction(probs: np.ndarray, threshold: float = CONFIDENT_PROB) -> float:
    """Share of samples the classifier reads as one digit with max p > ``threshold``."""
    return float((as_probs(probs).max(axis=1) > threshold).mean())


# ---- precision and recall (Kynkäänniemi et al. 2019) ----------------------------------

def _squared_distances(a: np.ndarray, b: np.ndarray, b_sqnorm: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(axis=1)[:, None] + b_sqnorm[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def knn_radii(features: np.ndarray, k: int = PR_NEIGHBOURS) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point.

    Each point's ball of that radius, united over the set, estimates the set's manifold.
    """
    f = as_features(features)
    if len(f) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {len(f)}")
    sq = (f * f).sum(axis=1)
    radii = np.empty(len(f))
    with blas_threads(1):  # block-wise products: one thread wins on a busy small machine
        for i in range(0, len(f), _CHUNK):
            d2 = _squared_distances(f[i: i + _CHUNK], f, sq)
            radii[i: i + _CHUNK] = np.partition(d2, k, axis=1)[:, k]  # index 0 is the point itself
    return radii


def manifold_coverage(queries: np.ndarray, support: np.ndarray, support_radii: np.ndarray) -> float:
    """Fraction of ``queries`` inside at least one k-NN ball around the ``support`` points."""
    q, s = as_features(queries, "queries"), as_features(support, "support")
    sq = (s * s).sum(axis=1)
    inside = 0
    with blas_threads(1):
        for i in range(0, len(q), _CHUNK):
            d2 = _squared_distances(q[i: i + _CHUNK], s, sq)
            inside += int((d2 <= support_radii[None, :]).any(axis=1).sum())
    return inside / len(q)


def precision_recall(generated: np.ndarray, real: np.ndarray, k: int = PR_NEIGHBOURS,
                     real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Precision: share of generated samples on the real manifold (fidelity).
    Recall: share of real samples on the generated manifold (diversity).

    Use sets of equal size: k-NN balls shrink as a set grows, which would tilt the two.
    """
    g, r = as_features(generated, "generated"), as_features(real, "real")
    if real_radii is None:
        real_radii = knn_radii(r, k)
    precision = manifold_coverage(g, r, real_radii)
    recall = manifold_coverage(r, g, knn_radii(g, k))
    return precision, recall


# ---- warnings -------------------------------------------------------------------------

def reliability_warnings(stats: GaussianStats, label: str) -> list[str]:
    """Why a covariance-based figure for this set should not be trusted, if it should not."""
    out = []
    if stats.n < SAMPLES_PER_DIM * stats.dim:
        out.append(f"{label}: N={stats.n} is below 10*d={SAMPLES_PER_DIM * stats.dim} (d={stats.dim}); "
                   f"the covariance is poorly estimated and FID is biased upwards — compare FID-infinity")
    rank = int(np.linalg.matrix_rank(stats.cov))
    if rank < stats.dim:
        out.append(f"{label}: the feature covariance is rank-deficient (rank {rank} of {stats.dim}); "
                   f"FID is ill-conditioned — use more samples or check for constant features")
    return out
