"""Digit-classifier features for the metrics: images -> (penultimate features, softmax).

The real-data side of every metric is the same for all models, so its features
are computed once per (classifier, dataset) and cached: in memory always, and on
disk when a cache folder is given, keyed by the classifier file's sha256 and the
dataset's path, size and modification time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from studio.data.datasets import open_dataset
from studio.evaluation.metrics import GaussianStats, gaussian_stats, knn_radii
from studio.core.checkpoint import CheckpointError, load_checkpoint
from studio.core.family import get_family
from studio.core.paths import shipped_checkpoint_dir

DEFAULT_CLASSIFIER = shipped_checkpoint_dir() / "digit_classifier.safetensors"
HOLDOUT = 1000  # the last 1,000 shared MNIST digits; the first 9,000 are the training split
BATCH = 500
CACHE_VERSION = 1


@dataclass
class FeatureSet:
    """Penultimate features and class probabilities of one set of images, float64."""

    features: np.ndarray  # (N, d)
    probs: np.ndarray  # (N, classes)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def take(self, index) -> "FeatureSet":
        return FeatureSet(self.features[index], self.probs[index])


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def images_to_tensor(images) -> torch.Tensor:
    """uint8 in [0, 255] or floats in [0, 1]; (N, H, W), (N, C, H, W) or (N, H, W, C)."""
    x = torch.as_tensor(np.asarray(images))
    if x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)  # channels last -> first
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    x = x.float()
    if x.numel() and (float(x.min()) < -0.5 or float(x.max()) > 1.5):
        raise ValueError("float images must be in [0, 1] (got values outside [-0.5, 1.5]: "
                         "rescale [-1, 1] samples with (x + 1) / 2, or pass uint8)")
    return x.clamp_(0.0, 1.0)  # samplers overshoot a little; the classifier was trained on [0, 1]


class DigitFeatureExtractor:
    """The shipped digit classifier, frozen, as a feature extractor."""

    def __init__(self, checkpoint: str | os.PathLike = DEFAULT_CLASSIFIER, batch_size: int = BATCH):
        ckpt = load_checkpoint(checkpoint, family="classifier")
        self.path = Path(ckpt.path)
        self.sha256 = file_sha256(self.path)
        self.batch_size = batch_size
        self.checkpoint_metrics = dict(ckpt.metrics)
        self.model = get_family("classifier").build_model(ckpt.config)
        try:
            self.model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()})
        except RuntimeError as exc:
            raise CheckpointError(f"{self.path}: weights do not fit the classifier ({exc})") from exc
        self.model.eval()  # batch norm on running statistics: features independent of batching
        self.feature_dim = int(self.model.cfg.feature_dim)

    @property
    def name(self) -> str:
        return (f"studio digit classifier {self.sha256[:12]}, penultimate pre-ReLU, "
                f"d={self.feature_dim}")

    @torch.inference_mode()
    def __call__(self, images, batch_size: int | None = None) -> FeatureSet:
        x = images_to_tensor(images)
        bs = batch_size or self.batch_size
        feats, probs = [], []
        for i in range(0, len(x), bs):
            f, logits = self.model.features_and_logits(x[i: i + bs])
            feats.append(f.double())
            probs.append(torch.softmax(logits.double(), dim=1))  # float64 so IS sees exact zeros rarely
        if not feats:
            raise ValueError("no images to extract features from")
        return FeatureSet(torch.cat(feats).numpy(), torch.cat(probs).numpy())


_EXTRACTORS: dict[tuple[str, int], DigitFeatureExtractor] = {}


def load_extractor(checkpoint: str | os.PathLike = DEFAULT_CLASSIFIER) -> DigitFeatureExtractor:
    """A shared extractor per checkpoint file (rebuilt when the file changes)."""
    path = Path(checkpoint).resolve()
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = DigitFeatureExtractor(path)
    return _EXTRACTORS[key]


@dataclass
class ReferenceFeatures:
    """Real digits seen through the classifier: the 9,000 training and 1,000 held-out ones."""

    extractor: DigitFeatureExtractor
    train: FeatureSet
    heldout: FeatureSet
    data_name: str
    _stats: GaussianStats | None = field(default=None, repr=False)
    _radii: dict = field(default_factory=dict, repr=False)

    @property
    def train_stats(self) -> GaussianStats:
        if self._stats is None:
            self._stats = gaussian_stats(self.train.features)
        return self._stats

    def manifold(self, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` training features (a seeded subset) and their k-NN radii, cached.

        Precision/recall compares sets of equal size, so the real side is drawn to the
        size of the sample set; its radii are the expensive part and do not change.
        """
        n = min(n, len(self.train))
        key = (n, k, seed)
        if key not in self._radii:
            feats = self.train.features
            if n < len(feats):
                feats = feats[np.sort(np.random.RandomState(seed).choice(len(feats), n, replace=False))]
            self._radii[key] = (feats, knn_radii(feats, k))
        return self._radii[key]

    def describe(self) -> str:
        return f"{len(self.train)} training digits of {self.data_name}"


_REFERENCES: dict[tuple, ReferenceFeatures] = {}


def _data_signature(path: Path) -> str:
    """Path, size and mtime of the dataset's files: changes when the data does."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    parts = [str(path.resolve())] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def reference_features(extractor: DigitFeatureExtractor | None = None, data: str | os.PathLike | None = None,
                       cache_dir: str | os.PathLike | None = None, holdout: int = HOLDOUT) -> ReferenceFeatures:
    """Features of the real digits split as in training (last ``holdout`` held out), cached."""
    from studio.core.paths import default_mnist

    extractor = extractor or load_extractor()
    data_path = Path(data) if data is not None else default_mnist()
    signature = _data_signature(data_path)
    key = (extractor.sha256, signature, holdout)
    if key in _REFERENCES:
        return _REFERENCES[key]
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"digit-features-v{CACHE_VERSION}-{extractor.sha256[:16]}-{signature[:16]}-{holdout}.npz"
    ref = _load_cached(cache_file, extractor) if cache_file else None
    if ref is None:
        ds = open_dataset(data_path)
        if not 0 < holdout < len(ds):
            raise ValueError(f"holdout {holdout} must be between 0 and the dataset size {len(ds)}")
        n_train = len(ds) - holdout
        ref = ReferenceFeatures(extractor, extractor(ds.images[:n_train]), extractor(ds.images[n_train:]), ds.name)
        if cache_file:
            _save_cached(cache_file, ref)
    _REFERENCES[key] = ref
    return ref


def _save_cached(path: Path, ref: ReferenceFeatures) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")  # write then rename: no half-written cache
    np.savez(tmp, train_features=ref.train.features, train_probs=ref.train.probs,
             heldout_features=ref.heldout.features, heldout_probs=ref.heldout.probs,
             data_name=np.array(ref.data_name))
    os.replace(tmp, path)


def _load_cached(path: Path, extractor: DigitFeatureExtractor) -> ReferenceFeatures | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return ReferenceFeatures(extractor, FeatureSet(z["train_features"], z["train_probs"]),
                                     FeatureSet(z["heldout_features"], z["heldout_probs"]), str(z["data_name"]))
    except (OSError, KeyError, ValueError):
        return None  # unreadable cache: recompute and overwrite
