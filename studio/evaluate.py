"""Evaluate generators: ``python -m studio.evaluate --checkpoint FILE... [--n 5000] [--json OUT]``.

Every model draws N samples, which the studio digit classifier reads: FID, KID,
IS, precision/recall, confident share and per-class shares against the
training digits, beside the real-vs-real floor (held-out digits against the
same reference), FID at N = 500, 1000, 2000, 5000 with FID-infinity,
ms/image on each backend, and the likelihood where the family has one.
Diffusion checkpoints are evaluated once per sampler: ``--sampler ddpm ddim
--steps 1000 50`` gives ``NAME/ddpm1000`` and ``NAME/ddim50``; ``--steps`` and
``--spacing`` pair with ``--sampler`` or, given once, apply to every sampler.
"""

from __future__ import annotations

import argparse
import sys
import time

DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m studio.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="FILE",
                   help="generator checkpoints (.safetensors) or run folders")
    p.add_argument("--data", default=None, help="the real digits (default: the shared MNIST digits); "
                   "the last 1,000 are held out, the rest are the reference")
    p.add_argument("--n", type=int, default=5000, help="samples per model (default 5000)")
    p.add_argument("--json", metavar="OUT.json", help="write the report here")
    p.add_argument("--csv", metavar="OUT.csv", help="write the table here")
    p.add_argument("--sampler", nargs="+", choices=["ddpm", "ddim"], default=["ddim"],
                   help="diffusion samplers, one model entry each (default: ddim)")
    p.add_argument("--steps", nargs="+", type=int, default=None,
                   help="steps per sampler, paired with --sampler (default: ddpm 1000, ddim 50)")
    p.add_argument("--spacing", nargs="+", choices=["leading", "trailing", "linspace"], default=["leading"],
                   help="timestep spacing, paired with --sampler (default: leading); "
                        "--sampler ddim ddim --spacing leading trailing compares two")
    p.add_argument("--eta", nargs="+", type=float, default=[0.0],
                   help="DDIM eta (0: deterministic; 1: as stochastic as DDPM), paired with --sampler")
    p.add_argument("--steps-offset", type=int, default=0, help="added to leading timesteps (diffusers' steps_offset)")
    p.add_argument("--no-alpha-to-one", action="store_true",
                   help="DDIM's last step stops at alpha_bar(0), not the clean image (set_alpha_to_one=False)")
    p.add_argument("--clipped-eps", nargs="*", choices=["on", "off"], default=None,
                   help="DDIM steps along the noise that the clipped x0 implies (diffusers' "
                        "use_clipped_model_output); alone: on for every sampler, or on/off paired with --sampler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["onnx", "torch"], default="onnx", help="backend that draws the samples")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="samples per batch (default: the family's)")
    p.add_argument("--no-backend-timing", action="store_true",
                   help="skip timing both backends on a small batch")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--threads", type=int, default=0,
                   help="torch and ONNX Runtime threads for sampling (default 0: all cores but one, as the app)")
    return p


def _paired(values: list, count: int, flag: str) -> list:
    """One value for every sampler, or one per sampler, in order."""
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{flag} gives {len(values)} values for {count} samplers: give one, or one per sampler")
    return values


def sampler_options(args: argparse.Namespace) -> list[dict]:
    """One dict of options per --sampler; --steps, --spacing, --eta and --clipped-eps pair with them
    (or, given once, apply to all)."""
    count = len(args.sampler)
    steps = _paired(args.steps or [DEFAULT_STEPS[s] for s in args.sampler], count, "--steps")
    spacings = _paired(args.spacing, count, "--spacing")
    etas = _paired(args.eta, count, "--eta")
    # --clipped-eps alone (an empty list) means on for every sampler; absent (None) means off.
    clipped = _paired(["on"] if args.clipped_eps == [] else args.clipped_eps or ["off"], count, "--clipped-eps")
    if any(s < 1 for s in steps):
        raise ValueError("--steps must be at least 1")
    variants = []
    if any(not 0.0 <= eta <= 1.0 for eta in etas):
        raise ValueError("--eta must be between 0 and 1")
    for name, n, spacing, eta, clip in zip(args.sampler, steps, spacings, etas, clipped):
        options = {"sampler": name, "steps": n, "spacing": spacing}
        if args.steps_offset:
            options["steps_offset"] = args.steps_offset
        if name == "ddim":
            options["eta"] = eta
            if args.no_alpha_to_one:
                options["set_alpha_to_one"] = False
            if clip == "on":
                options["use_clipped_model_output"] = True
        variants.append(options)
    return variants


def check_checkpoints(paths: list[str]) -> None:
    """Refuse unreadable files and non-generators before anything heavy is imported."""
    from studio.core.checkpoint import CheckpointError, read_metadata
    from studio.core.family import UnknownFamily, get_family

    for path in paths:
        family = read_metadata(path)["family"]
        try:
            generates = bool(get_family(family).sampler)
        except UnknownFamily as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        if not generates:
            raise CheckpointError(f"{path}: '{family}' models generate no images: there is nothing to evaluate")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from studio.core.checkpoint import CheckpointError
    from studio.data.datasets import DatasetError
    from studio.engine.backends import BackendError
    from studio.evaluation.sampling import EvaluationCancelled

    try:
        variants = sampler_options(args)
        check_checkpoints(args.checkpoint)
        from studio.core.threads import configure_torch_threads, set_default_threads
        from studio.evaluation.comparison import (EvaluationPlan, ModelEvaluated, Progress, RealDigits, evaluate,
                                                  jsonable)
        from studio.evaluation.tables import plain_table, write_csv, write_json

        set_default_threads(args.threads)  # torch and every ONNX Runtime session
        configure_torch_threads()  # all cores but one, as the app, unless --threads says otherwise
        plan = EvaluationPlan(
            checkpoints=list(args.checkpoint), n=args.n, samplers=variants, data=args.data,
            seed=args.seed, backend=args.backend, device=args.device, batch_size=args.batch_size,
            time_backends=not args.no_backend_timing, kid_subsets=args.kid_subsets)
        t0 = time.perf_counter()
        partial: dict = {"partial": True, "n": args.n, "floor": None, "models": {}}

        def show(event) -> None:
            if isinstance(event, Progress):
                print(f"[{event.fraction:6.1%} {time.perf_counter() - t0:7.0f} s] {event.message}",
                      file=sys.stderr, flush=True)
            elif isinstance(event, RealDigits):
                partial["floor"] = jsonable(event.floor)
            elif isinstance(event, ModelEvaluated) and args.json:
                # Hours of CPU sampling are not lost to a later failure or Ctrl+C: keep what is done.
                partial["models"][event.label] = jsonable(event.entry)
                write_json(partial, args.json)

        report = evaluate(plan, on_event=show)
    except (CheckpointError, DatasetError, BackendError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EvaluationCancelled):
        print("cancelled", file=sys.stderr)
        return 130
    report["command"] = "python -m studio.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"features: {report['extractor']}; reference: {report['reference']}; N={report['n']}")
    print(plain_table(report))
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.csv:
        print(f"wrote {write_csv(report, args.csv)}")
    failed = [label for label, entry in report["models"].items() if "error" in entry]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
