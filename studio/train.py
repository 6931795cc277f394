"""Headless training: ``python -m studio.train FAMILY --data PATH --out RUN_DIR``.

The same trainer code runs here, in the app's worker process and under torchrun.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    from studio.core.family import trainable_families

    p = argparse.ArgumentParser(prog="python -m studio.train", description=__doc__)
    p.add_argument("family", choices=trainable_families())
    p.add_argument("--data", default=None, help="IDX file or folder, image folder or .npz "
                   "(default: the MNIST digits in ../shared/datasets/mnist)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and log.jsonl")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="learning rate (family default if unset)")
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--preview-every", type=int, default=0)
    p.add_argument("--keep", type=int, default=3, help="numbered checkpoints to keep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", type=int, default=0,
                   help="keep the last N images out of training and measure the metrics on them")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores but one)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.safetensors")
    p.add_argument("--latent-dim", type=int, default=None, help="VAE latent size")
    p.add_argument("--beta", type=float, default=None, help="beta-VAE KL weight")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other model option, e.g. --set width=64")
    p.add_argument("--export", default=None, metavar="FILE.safetensors",
                   help="when done, also write a weights-only checkpoint (and its ONNX graphs) here")
    return p


def options_from_args(args: argparse.Namespace):
    from studio.training.trainer import TrainOptions

    model = {}
    if args.latent_dim is not None:
        model["latent_dim"] = args.latent_dim
    if args.beta is not None:
        model["beta"] = args.beta
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        model[k.strip().replace("-", "_")] = _parse_value(v)
    opts = TrainOptions(
        family=args.family, out=args.out, data=args.data, steps=args.steps,
        batch_size=args.batch_size, schedule=args.schedule,
        checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
        keep=args.keep, holdout=args.holdout, seed=args.seed, device=args.device, threads=args.threads, model=model,
    )
    if args.lr is not None:
        opts.lr = args.lr
    return opts


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from studio.data.datasets import DatasetError, open_dataset
    from studio.core.threads import configure_torch_threads
    from studio.core.checkpoint import CheckpointError
    from studio.training.events import CheckpointWritten, Finished, Progress
    from studio.training.runs import trainer_class

    configure_torch_threads(args.threads or None)
    opts = options_from_args(args)
    try:
        dataset = open_dataset(opts.data)
        trainer = trainer_class(opts.family)(opts, dataset)
        if args.resume:
            last = Path(opts.out) / "last.safetensors"
            if not last.exists():
                print(f"error: --resume: {last} does not exist", file=sys.stderr)
                return 2
            trainer.resume_from(last)
            print(f"resumed at step {trainer.step}")
    except (DatasetError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    last_print = 0
    for event in trainer.run():
        if isinstance(event, Progress) and (event.step - last_print >= 100 or event.step == event.total_steps):
            last_print = event.step
            losses = " ".join(f"{k}={v:.4f}" for k, v in event.losses.items())
            print(f"step {event.step}/{event.total_steps} {losses} "
                  f"{event.examples_per_s:.0f} img/s eta {event.eta_s:.0f}s", flush=True)
        elif isinstance(event, CheckpointWritten):
            print(f"checkpoint {event.path}", flush=True)
        elif isinstance(event, Finished):
            print(f"finished at step {event.step}: {event.path}", flush=True)
    if args.export:
        from studio.engine.export import export_checkpoint

        ckpt = trainer.to_checkpoint(with_training_state=False)
        written = export_checkpoint(ckpt, args.export)
        print("metrics " + json.dumps(ckpt.metrics))
        for p in written:
            print(f"exported {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
