"""Sample-quality evaluation: FID, KID, IS, precision/recall on digit-classifier features.

metrics  — the formulas, numpy only
features — the classifier as a feature extractor, with cached real-digit features
report   — evaluate_samples / floor: every figure for a sample set, with warnings
speed    — the timing behind the benchmark key evaluation.metrics_5000_ms
"""
