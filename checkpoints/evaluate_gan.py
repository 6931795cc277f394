"""Quality of a GAN checkpoint with the project's evaluation module, next to the real-vs-real floor.

    python checkpoints/evaluate_gan.py studio/checkpoints/dcgan_mnist.safetensors [--n 5000] [--psi 1.0]
    python checkpoints/evaluate_gan.py studio/checkpoints/stylegan_mnist_colour.safetensors --projection 100

DCGAN digits are compared with the MNIST training digits (the first 9,000);
the floor is the 1,000 held-out digits. A StyleGAN trained on recoloured digits
is compared with the same digits recoloured as in its training (the seed in its
checkpoint), and every RGB picture, real or generated, goes to grey the same way
(studio.data.recolour.grey_digits) before the classifier sees it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def samples(path: str, n: int, psi: float) -> tuple[np.ndarray, dict]:
    from studio.engine.runtime import RuntimePool
    from studio.families.stylegan.ops import Code, GanModel, NoiseSpec, Target

    model = GanModel(RuntimePool(), Target(path, "onnx", "cpu"))
    out = []
    rng = np.random.default_rng(2024)
    for start in range(0, n, 500):
        codes = [Code(int(s)) for s in rng.integers(0, 2 ** 31 - 1, min(500, n - start))]
        # Fresh noise per sample, as the generator was trained.
        noise = NoiseSpec(("random",) * model.num_layers) if model.is_style else NoiseSpec()
        out.append(model.render(codes, psi=psi, noise=noise))
    return np.concatenate(out), model.runtime.checkpoint


def reference_for(ckpt, extractor):
    from studio.data.datasets import open_dataset
    from studio.data.recolour import grey_digits, recolour_digits
    from studio.evaluation.features import HOLDOUT, FeatureSet, ReferenceFeatures, reference_features

    if ckpt.family != "stylegan" or not ckpt.config.get("recolour", False):
        return reference_features(extractor)
    seed = int((ckpt.extra.get("options") or {}).get("seed", 0))
    ds = open_dataset(None)
    rgb = recolour_digits(ds.images, seed=seed, size=int(ckpt.config.get("image_size", 32)))
    grey = grey_digits(rgb)
    n_train = len(ds) - HOLDOUT

    def features(x) -> FeatureSet:
        return extractor(x)

    return ReferenceFeatures(extractor, features(grey[:n_train]), features(grey[n_train:]),
                             f"{ds.name} recoloured (seed {seed}), grey by distance from the background")


def projection_labels(path: str, count: int, extractor, space: str = "w") -> dict:
    """Project ``count`` held-out digits (as the panel does, 2 s each at most); how many keep their label."""
    import io

    from PIL import Image

    from studio.data.datasets import open_dataset
    from studio.data.recolour import grey_digits
    from studio.engine.runtime import RuntimePool
    from studio.families.stylegan.ops import GanProject, Target, project

    ds = open_dataset(None)
    held = np.arange(len(ds) - 1000, len(ds))[:count]
    pool = RuntimePool()
    kept, seconds, final_loss = 0, [], []
    for i in held:
        buf = io.BytesIO()
        Image.fromarray((ds.images[i, 0] * 255 + 0.5).astype(np.uint8)).save(buf, format="PNG")
        last = list(project(pool, GanProject(Target(path, "torch", "cpu"), buf.getvalue(), space=space)))[-1]
        right = last.image[:, last.image.shape[1] // 2 + 1:]  # target | projection
        rgb = right.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        label = int(extractor(grey_digits(rgb)).probs.argmax(axis=1)[0])
        kept += label == int(ds.labels[i])
        seconds.append(last.payload.seconds)
        final_loss.append(last.payload.loss[-1])
    return {"projected": int(len(held)), "kept_label": kept / len(held), "space": space,
            "median_seconds": float(np.median(seconds)), "max_seconds": float(np.max(seconds)),
            "median_final_loss": float(np.median(final_loss))}


def fids_of_disjoint_thousands(features: np.ndarray, reference) -> list[float]:
    """FID of each disjoint set of 1,000 samples against the training digits.

    The floor exists only at N = 1,000 (there are 1,000 held-out digits), so models are read
    there too; one draw of 1,000 moves by several FID points from draw to draw, and the mean
    over the draws a run has (5 at N = 5,000) is the steadier figure with the same expectation.
    """
    from studio.evaluation.metrics import frechet_distance, gaussian_stats

    return [frechet_distance(gaussian_stats(features[i:i + 1000]), reference.train_stats)
            for i in range(0, len(features) - 999, 1000)]


def main(argv=None) -> int:
    from studio.data.recolour import grey_digits
    from studio.evaluation.features import load_extractor
    from studio.evaluation.report import evaluate_features, floor, format_report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=5000, help="generated samples (default 5000)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (1: none, the fair setting for FID)")
    p.add_argument("--json", default=None, help="also write both reports here")
    p.add_argument("--write-metrics", action="store_true",
                   help="store the summary in the checkpoint's metrics (its ONNX files are re-stamped)")
    p.add_argument("--projection", type=int, default=0, metavar="N",
                   help="also project N held-out digits and count how many keep their label (StyleGAN)")
    args = p.parse_args(argv)
    if args.n < 1000:  # the floor and the ratio are read at N = 1,000
        p.error(f"--n must be at least 1000 (the figures are read at N = 1,000), not {args.n}")
    images, ckpt = samples(args.checkpoint, args.n, args.psi)
    if images.shape[1] == 3:
        images = grey_digits(images)
    extractor = load_extractor()
    reference = reference_for(ckpt, extractor)
    features = extractor(images)  # once: the report and the disjoint sets below share them
    model = evaluate_features(features, reference, label=Path(args.checkpoint).stem)
    real = floor(reference)
    print(format_report(model))
    print(format_report(real))
    fid_each = fids_of_disjoint_thousands(features.features, reference)
    fid_1000 = float(np.mean(fid_each))
    ratio = fid_1000 / real["fid"]
    spread = f" (mean of {len(fid_each)} disjoint sets of 1000, std {np.std(fid_each):.1f})" if len(fid_each) > 1 else ""
    print(f"FID at N=1000: {fid_1000:.3f}{spread} vs floor {real['fid']:.3f} -> {ratio:.2f}x the floor; "
          f"IS {model['is']:.2f}; smallest class {min(model['class_fractions']):.3f}")
    result = {"model": model, "floor": real, "fid_ratio_n1000": ratio}
    if args.projection:
        result["projection"] = projection_labels(args.checkpoint, args.projection, extractor)
        print("projection " + json.dumps(result["projection"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.write_metrics:
        write_metrics(args.checkpoint, model, real, fid_1000, ratio, result.get("projection"))
    return 0


def write_metrics(path: str, model: dict, real: dict, fid_1000, ratio, projection) -> None:
    from studio.core.checkpoint import load_checkpoint
    from studio.engine.export import export_checkpoint

    ckpt = load_checkpoint(path)
    ckpt.metrics.update({
        "fid_n1000": round(fid_1000, 3), "fid_floor_n1000": round(real["fid"], 3), "fid_ratio_to_floor": round(ratio, 2),
        "fid_n5000": round(model["fid"], 3), "is": round(model["is"], 3), "is_floor": round(real["is"], 3),
        "class_fractions": [round(f, 4) for f in model["class_fractions"]],
        "precision": round(model["precision"], 3), "recall": round(model["recall"], 3),
        "evaluation": f"checkpoints/evaluate_gan.py, {model['n']} samples, psi 1, {model['feature_extractor']}; "
                      "fid_n1000 is the mean over disjoint sets of 1,000",
    })
    if projection:
        ckpt.metrics["projection"] = projection
    for written in export_checkpoint(ckpt, path):
        print(f"wrote {written}")


if __name__ == "__main__":
    sys.exit(main())
