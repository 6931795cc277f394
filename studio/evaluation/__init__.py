"""Sample-quality evaluation: FID, KID, IS, precision/recall on digit-classifier features.

metrics    — the formulas, numpy only
features   — the classifier as a feature extractor, with cached real-digit features
report     — evaluate_samples / floor: every figure for a sample set, with warnings
sampling   — samples of any generator through its family descriptor's ``sampler``
comparison — generators side by side: the runner behind ``python -m studio.evaluate`` and the panel
tables     — a report as rows: the panel's table, CSV, Markdown
labels     — predict_labels: digit labels for data that has none
speed      — the timing behind the benchmark key evaluation.metrics_5000_ms
"""
