"""Generators compared side by side: samples, every metric, the floor, timings, likelihood.

``run_evaluation(plan)`` is a generator of events, so the command line and the
panel's background worker drive the same code: ``Progress`` after every batch
of samples, ``RealDigits`` once the floor is known, ``ModelEvaluated`` as each
model and sampler is done, and ``Finished`` with the whole report (the JSON of
``python -m studio.evaluate``). A cancel through ``EvaluationControl`` stops
at the next batch, or at the next denoising step inside a batch.

Every model is scored against the same reference (the training digits), with
the same features and the same N, beside the real-vs-real floor: the held-out
digits scored as if they were samples.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from studio.core.checkpoint import CheckpointError
from studio.core.family import get_family
from studio.core.imaging import image_grid
from studio.evaluation import metrics as M
from studio.evaluation.features import HOLDOUT, DEFAULT_CLASSIFIER, load_extractor, reference_features
from studio.evaluation.report import evaluate_features, floor
from studio.evaluation.sampling import EvaluationCancelled, model_label, sample_images, sampler_function

# The model-quality targets, for every generator at the floor's N.
TARGETS = {"fid_over_floor_max": 2.0, "is_min": 9.0, "confident_min": 0.90, "class_fraction_min": 0.07,
           "class_fraction_max": 0.13}
BACKENDS_TIMED = ("onnx", "torch")
DEFAULT_BATCH = 100


@dataclass
class EvaluationPlan:
    checkpoints: list[str]
    n: int = 1000
    # One dict of sampler options per variant (e.g. {"sampler": "ddim", "steps": 50});
    # each family takes the options its sampler accepts and ignores the rest.
    samplers: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    data: str | None = None  # None: the shared MNIST digits
    seed: int = 0
    backend: str = "onnx"
    device: str = "auto"
    batch_size: int | None = None  # None: the family sampler's own default
    time_backends: bool = True  # also time both backends on a small batch
    timing_images: int = 16
    kid_subsets: int = M.KID_SUBSETS
    classifier: str | None = None
    cache_features: bool = True  # keep the real digits' features on disk between runs
    preview: int = 64  # samples shown in each grid

    def check(self) -> None:
        if not self.checkpoints:
            raise ValueError("name at least one checkpoint to evaluate")
        if self.n < 2:
            raise ValueError(f"N must be at least 2, got {self.n}")
        if self.backend not in BACKENDS_TIMED:
            raise ValueError(f"unknown backend '{self.backend}' (choose {', '.join(BACKENDS_TIMED)})")


@dataclass
class Progress:
    fraction: float
    message: str


@dataclass
class RealDigits:
    grid: np.ndarray  # uint8 grid of held-out digits
    floor: dict[str, Any]


@dataclass
class ModelEvaluated:
    label: str
    entry: dict[str, Any]
    grid: np.ndarray | None  # uint8 grid of the first samples


@dataclass
class Finished:
    report: dict[str, Any]


class EvaluationControl:
    """Shared by the evaluation (a worker thread) and whoever watches it: cancel and live progress."""

    def __init__(self):
        self._cancel = threading.Event()
        self.fraction = 0.0
        self.message = ""

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise EvaluationCancelled("evaluation cancelled")


@dataclass
class _Job:
    checkpoint: str
    runtime: Any
    options: dict[str, Any]
    label: str
    weight: float  # share of the total work, for the progress bar


def prepare_jobs(plan: EvaluationPlan) -> list[_Job]:
    """Load every checkpoint first: a bad file stops the run before any sampling (CheckpointError)."""
    from studio.engine.runtime import ModelRuntime
    from studio.evaluation.sampling import accepted_options

    plan.check()
    jobs, seen = [], set()
    for path in plan.checkpoints:
        runtime = ModelRuntime(path)
        try:
            fn = sampler_function(runtime.family)
        except CheckpointError as exc:
            raise CheckpointError(f"{runtime.path}: {exc}") from None
        for options in plan.samplers or [{}]:
            accepted = accepted_options(fn, options)
            label = model_label(runtime.path, accepted)
            if label in seen:  # a VAE under two diffusion samplers is one model
                continue
            seen.add(label)
            cost = plan.n * max(1, int(accepted.get("steps") or 1))  # steps dominate a diffusion run
            jobs.append(_Job(str(runtime.path), runtime, accepted, label, cost))
    total = sum(j.weight for j in jobs)
    for j in jobs:
        j.weight /= total
    return jobs


def _batch_size(runtime, plan: EvaluationPlan) -> int:
    if plan.batch_size:
        return int(plan.batch_size)
    param = inspect.signature(sampler_function(runtime.family)).parameters.get("batch_size")
    return int(param.default) if param is not None and isinstance(param.default, int) else DEFAULT_BATCH


def _chunk_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _fid_sizes(n: int) -> list[int]:
    return sorted({s for s in M.FID_SIZES if s < n} | {int(n)})


def _time_backends(job: _Job, plan: EvaluationPlan, control: EvaluationControl) -> dict[str, Any]:
    """ms per image on each backend, both on the same small batch, so they compare."""
    from studio.engine.backends import BackendError

    out: dict[str, Any] = {"images": plan.timing_images}
    for backend in BACKENDS_TIMED:
        try:
            _, ms = sample_images(job.runtime, plan.timing_images, 12345, job.options, backend, plan.device,
                                  progress=lambda *_: control.check(), batch_size=plan.timing_images)
            out[backend] = ms
        except (BackendError, ValueError) as exc:
            out[backend] = None
            out[f"{backend}_error"] = str(exc)
    return out


def check_targets(entry: dict[str, Any], floor_report: dict[str, Any]) -> dict[str, Any]:
    """Which of the issue's quality targets this model meets, at the floor's N."""
    fid_at = None
    curve = entry.get("fid_vs_n") or {}
    if floor_report["n"] in curve.get("n", []):
        fid_at = curve["fid"][curve["n"].index(floor_report["n"])]
    elif entry["n"] == floor_report["n"]:
        fid_at = entry["fid"]
    ratio = None if fid_at is None or floor_report["fid"] <= 0 else fid_at / floor_report["fid"]
    fractions = entry["class_fractions"]
    return {
        "fid_at_floor_n": fid_at,
        "fid_over_floor": ratio,
        "fid_within_2x_floor": None if ratio is None else ratio <= TARGETS["fid_over_floor_max"],
        "is_at_least_9": entry["is"] >= TARGETS["is_min"],
        "confident_at_least_90pct": entry["confident_fraction"] >= TARGETS["confident_min"],
        "every_class_7_to_13pct": bool(min(fractions) >= TARGETS["class_fraction_min"]
                                       and max(fractions) <= TARGETS["class_fraction_max"]),
    }


def _tidy(entry: dict[str, Any]) -> dict[str, Any]:
    for key in ("feature_extractor", "reference", "feature_dim"):  # stated once, at the top of the report
        entry.pop(key, None)
    return entry


def run_evaluation(plan: EvaluationPlan, control: EvaluationControl | None = None) -> Iterator[Any]:
    """Evaluate every checkpoint under every sampler variant; yields the events described above."""
    from studio.data.datasets import open_dataset
    from studio.engine.backends import BackendError

    control = control or EvaluationControl()
    jobs = prepare_jobs(plan)

    def progress(fraction: float, message: str) -> Progress:
        control.fraction, control.message = fraction, message
        return Progress(fraction, message)

    yield progress(0.0, "reading the real digits")
    extractor = load_extractor(plan.classifier or DEFAULT_CLASSIFIER)
    from studio.core.paths import cache_dir

    reference = reference_features(extractor, plan.data,
                                   cache_dir=cache_dir() / "evaluation" if plan.cache_features else None)
    heldout_images = open_dataset(plan.data).images[-HOLDOUT:]
    floor_n = min(plan.n, len(reference.heldout))
    base = _tidy(floor(reference, n=floor_n, seed=plan.seed, kid_subsets=plan.kid_subsets,
                       fid_sizes=_fid_sizes(floor_n)))
    warnings = list(base["warnings"])
    if plan.n > floor_n:
        warnings.append(f"the floor holds N={floor_n} (every held-out digit), the models N={plan.n}: compare "
                        f"each model's FID at N={floor_n} (its FID-vs-N curve) with the floor, not its FID at N={plan.n}")
    yield RealDigits(image_grid(heldout_images[: plan.preview]), base)

    entries: dict[str, dict[str, Any]] = {}
    likelihoods: dict[str, Any] = {}
    done_weight = 0.0
    for job in jobs:
        control.check()
        batch = _batch_size(job.runtime, plan)
        parts, sampled, ms_total = [], 0, 0.0

        def within(done: int, total: int, start: int = 0, size: int = 1) -> None:
            control.check()  # a cancel lands at the next denoising step
            share = (start + size * done / max(total, 1)) / plan.n
            control.fraction = done_weight + job.weight * 0.9 * share

        try:
            for index, start in enumerate(range(0, plan.n, batch)):
                size = min(batch, plan.n - start)
                chunk, ms = sample_images(job.runtime, size, _chunk_seed(plan.seed, index), job.options,
                                          plan.backend, plan.device, batch_size=size,
                                          progress=lambda d, t, s=start, z=size: within(d, t, s, z))
                parts.append(chunk)
                sampled += size
                ms_total += ms * size
                yield progress(done_weight + job.weight * 0.9 * sampled / plan.n,
                               f"{job.label}: {sampled} of {plan.n} samples")
        except (ValueError, BackendError) as exc:  # e.g. more steps than the model was trained with
            entries[job.label] = {"checkpoint": job.checkpoint, "sampler": dict(job.options), "error": str(exc)}
            warnings.append(f"{job.label}: not evaluated ({exc})")
            done_weight += job.weight
            yield progress(done_weight, f"{job.label}: failed")
            continue
        images = np.concatenate(parts)
        yield progress(done_weight + job.weight * 0.9, f"{job.label}: features and metrics")
        entry = _tidy(evaluate_features(extractor(images), reference, label=job.label, seed=plan.seed,
                                        kid_subsets=plan.kid_subsets, fid_sizes=_fid_sizes(plan.n)))
        entry.update(checkpoint=job.checkpoint, family=job.runtime.family, sampler=dict(job.options),
                     backend=plan.backend, device=plan.device, ms_per_image=ms_total / plan.n,
                     sampling_batch=batch)
        if plan.time_backends:
            yield progress(control.fraction, f"{job.label}: timing both backends")
            entry["ms_per_image_by_backend"] = _time_backends(job, plan, control)
        entry["likelihood"] = _likelihood(job, heldout_images, plan.seed, likelihoods, entry["warnings"])
        entry["targets"] = check_targets(entry, base)
        entries[job.label] = entry
        warnings += entry["warnings"]
        done_weight += job.weight
        yield progress(done_weight, f"{job.label}: done")
        yield ModelEvaluated(job.label, entry, image_grid(images[: plan.preview]))

    report = {
        "extractor": extractor.name,
        "classifier": {"file": extractor.path.name,
                       "heldout_accuracy": extractor.checkpoint_metrics.get("heldout_accuracy")},
        "reference": reference.describe(),
        "n": plan.n,
        "seed": plan.seed,
        "floor": base,
        "models": entries,
        "warnings": warnings,
        "targets": dict(TARGETS),
    }
    yield Finished(jsonable(report))


def _likelihood(job: _Job, heldout: np.ndarray, seed: int, cache: dict, warnings: list[str]):
    spec = get_family(job.runtime.family)
    if not spec.likelihood:
        return None
    if job.checkpoint not in cache:
        try:
            cache[job.checkpoint] = spec.load("likelihood")(job.runtime, heldout, seed=seed)
        except ValueError as exc:  # e.g. the data does not fit the model
            cache[job.checkpoint] = None
            warnings.append(f"{job.label}: no likelihood ({exc})")
    return cache[job.checkpoint]


def evaluate(plan: EvaluationPlan, control: EvaluationControl | None = None, on_event=None) -> dict[str, Any]:
    """Run ``run_evaluation`` to the end and return the report (``on_event`` sees every event)."""
    for event in run_evaluation(plan, control):
        if on_event is not None:
            on_event(event)
        if isinstance(event, Finished):
            return event.report
    raise EvaluationCancelled("evaluation ended without a report")


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays, tuples and paths as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, Path):
        return str(value)
    return value

