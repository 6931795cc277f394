"""One evaluation report for a set of generated digits, and the real-vs-real floor.

A metric alone says little: FID 3.1 is good or bad only next to what real digits
score against the same reference with the same N. ``floor`` measures that: the
1,000 held-out digits (never seen by a model trained on the first 9,000) against
the 9,000 training digits, with every figure computed exactly as for samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.evaluation import metrics as M
from studio.evaluation.features import DigitFeatureExtractor, FeatureSet, ReferenceFeatures


def evaluate_features(samples: FeatureSet, reference: ReferenceFeatures, *, label: str = "samples",
                      seed: int = M.DEFAULT_SEED, kid_subsets: int = M.KID_SUBSETS,
                      with_precision_recall: bool = True, with_fid_curve: bool = True) -> dict[str, Any]:
    """Every metric for features already extracted (see ``evaluate_samples``)."""
    n = len(samples)
    stats = M.gaussian_stats(samples.features)
    ref_stats = reference.train_stats
    warnings = M.reliability_warnings(stats, label) + M.reliability_warnings(ref_stats, "reference")
    kid_mean, kid_std = M.kid(samples.features, reference.train.features, subsets=kid_subsets, seed=seed)
    subset = min(M.KID_SUBSET_SIZE, n, len(reference.train))
    if subset < M.KID_SUBSET_SIZE:
        warnings.append(f"{label}: KID subsets hold {subset} samples, fewer than the usual "
                        f"{M.KID_SUBSET_SIZE}; expect a larger spread")
    is_mean, is_std = M.inception_score(samples.probs, seed=seed)
    fractions = M.class_fractions(samples.probs)
    missing = [int(c) for c in np.flatnonzero(fractions == 0)]
    if missing:
        warnings.append(f"{label}: no sample is read as digit(s) {missing}: the model drops those modes")
    report: dict[str, Any] = {
        "label": label,
        "n": n,
        "fid": M.frechet_distance(stats, ref_stats),
        "kid": kid_mean,
        "kid_std": kid_std,
        "is": is_mean,
        "is_std": is_std,
        "precision": None,
        "recall": None,
        "confident_fraction": M.confident_fraction(samples.probs),
        "class_fractions": [float(f) for f in fractions],
        "fid_vs_n": None,
        "fid_infinity": None,
        "warnings": warnings,
        "feature_extractor": reference.extractor.name,
        "feature_dim": int(samples.features.shape[1]),
        "reference": reference.describe(),
    }
    if with_precision_recall:
        real, radii = reference.manifold(n, M.PR_NEIGHBOURS, seed)
        report["precision"], report["recall"] = M.precision_recall(samples.features, real, real_radii=radii)
    if with_fid_curve:
        curve = M.fid_vs_n(samples.features, ref_stats, seed=seed)
        report["fid_vs_n"] = {"n": curve.sizes, "fid": curve.fids}
        report["fid_infinity"] = curve.fid_infinity
    return report


def evaluate_samples(samples, reference: ReferenceFeatures, extractor: DigitFeatureExtractor | None = None,
                     **options) -> dict[str, Any]:
    """Metrics of generated digits against the training digits.

    ``samples``: uint8 in [0, 255] or floats in [0, 1], shaped (N, H, W), (N, 1, H, W)
    or (N, H, W, 1); 28x28, or 32x32 (centre-cropped). ``reference`` comes from
    ``features.reference_features``; the samples go through the same classifier.
    Returns fid, kid, kid_std, is, is_std, precision, recall, confident_fraction,
    class_fractions (one per digit), fid_vs_n, fid_infinity, warnings and the name
    of the feature extractor.
    """
    extractor = extractor or reference.extractor
    if extractor.sha256 != reference.extractor.sha256:
        raise ValueError("the samples and the reference must go through the same classifier")
    return evaluate_features(extractor(samples), reference, **options)


def floor(reference: ReferenceFeatures, n: int | None = None, seed: int = M.DEFAULT_SEED,
          **options) -> dict[str, Any]:
    """Real-vs-real floor: ``n`` held-out digits (default all 1,000) scored as if generated.

    Compare a model with the floor at the same N (a model's ``fid_vs_n`` holds its
    FID at N = 1,000); the floor is what a perfect generator would score, not zero.
    """
    held = reference.heldout
    n = len(held) if n is None else int(n)
    if not 2 <= n <= len(held):
        raise ValueError(f"the floor needs 2..{len(held)} held-out digits, got n={n}")
    chosen = held if n == len(held) else held.take(np.sort(np.random.RandomState(seed).choice(len(held), n, replace=False)))
    out = evaluate_features(chosen, reference, label="held-out real digits", seed=seed, **options)
    out["kind"] = "real-vs-real floor"
    return out


def format_report(report: dict[str, Any]) -> str:
    """A few readable lines, for logs and the command line."""
    def fmt(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    lines = [
        f"{report['label']}: N={report['n']}  ({report['feature_extractor']}; vs {report['reference']})",
        f"  FID {fmt(report['fid'])}   FID-inf {fmt(report['fid_infinity'])}   "
        f"KID {fmt(report['kid'], '.5f')} ± {fmt(report['kid_std'], '.5f')}",
        f"  IS {fmt(report['is'])} ± {fmt(report['is_std'])}   precision {fmt(report['precision'])}   "
        f"recall {fmt(report['recall'])}   confident {fmt(report['confident_fraction'])}",
        "  classes " + " ".join(f"{d}:{f:.2f}" for d, f in enumerate(report["class_fractions"])),
    ]
    if report.get("fid_vs_n"):
        pairs = zip(report["fid_vs_n"]["n"], report["fid_vs_n"]["fid"])
        lines.append("  FID vs N " + "  ".join(f"{n}:{f:.3f}" for n, f in pairs))
    lines += [f"  warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
