"""Headless training: ``python -m studio.train FAMILY --data PATH --out RUN_DIR``.

The same code starts a run here, in the app's worker and under torchrun
(``torchrun --nproc-per-node N -m studio.train ...``: rank 0 logs, previews,
saves and holds the run folder's lock). ``--resume`` continues a run from its
newest valid checkpoint with the options it was started with; only ``--steps``
(to extend it), ``--device``, ``--threads`` and ``--workers`` may change.
Usage errors and refusals exit with 2, failures during training with 1,
Ctrl+C saves and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GENERIC = {  # flag -> TrainOptions field, for the options a run saves
    "--data": "data", "--steps": "steps", "--batch-size": "batch_size", "--lr": "lr",
    "--schedule": "schedule", "--checkpoint-every": "checkpoint_every",
    "--preview-every": "preview_every", "--keep": "keep", "--seed": "seed", "--holdout": "holdout",
    "--workers": "workers", "--device": "device", "--threads": "threads", "--init": "init",
}
RESUME_MAY_CHANGE = {"steps", "device", "threads", "workers"}  # the length, and where it runs
DEFAULTS = {"steps": 2000, "batch_size": 128, "schedule": "constant", "checkpoint_every": 500,
            "preview_every": 0, "keep": 3, "seed": 0, "holdout": 0, "workers": 0, "device": "auto",
            "threads": 0}


class UsageError(Exception):
    """A command line that asks for something impossible (exit 2)."""


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def family_flags() -> dict[str, tuple]:
    """Every family's own flags: flag -> (CliOption, families that take it)."""
    from studio.core.family import families

    flags: dict[str, tuple] = {}
    for name, spec in families().items():
        for opt in spec.cli_options:
            first, owners = flags.get(opt.flag, (opt, ()))
            flags[opt.flag] = (first, owners + (name,))
    return flags


def build_parser() -> argparse.ArgumentParser:
    from studio.core.family import trainable_families

    p = argparse.ArgumentParser(prog="python -m studio.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", nargs="?", choices=trainable_families(),
                   help="model family (not needed with --resume: the run knows it)")
    p.add_argument("--data", default=None, help="IDX file or folder, image folder or .npz "
                   "(default: the MNIST digits in ../shared/datasets/mnist)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and log.jsonl")
    p.add_argument("--steps", type=int, default=None, help=f"optimisation steps in total ({DEFAULTS['steps']})")
    p.add_argument("--batch-size", type=int, default=None, help=f"({DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, default=None, help="learning rate (family default if unset)")
    p.add_argument("--schedule", choices=["constant", "cosine"], default=None)
    p.add_argument("--checkpoint-every", type=int, default=None, help=f"({DEFAULTS['checkpoint_every']})")
    p.add_argument("--preview-every", type=int, default=None, help="(0: no previews)")
    p.add_argument("--keep", type=int, default=None, help="numbered checkpoints to keep (3)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--holdout", type=int, default=None,
                   help="keep the last N images out of training and measure the metrics on them")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (0)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: all cores but one)")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR from its newest valid checkpoint, with its saved options")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other model option, e.g. --set width=64")
    p.add_argument("--init", default=None, metavar="FILE.safetensors",
                   help="fine-tune: start from this checkpoint's weights and model options (--set may "
                        "change options that leave the weights' shapes alone); optimisers start fresh")
    p.add_argument("--export", default=None, metavar="FILE.safetensors",
                   help="when done, also write a weights-only checkpoint (and its ONNX graphs) here")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for flag, (opt, owners) in family_flags().items():
        group = groups.get(owners[0]) or groups.setdefault(
            owners[0], p.add_argument_group(f"{owners[0]} options"))
        shared = f" (also {', '.join(owners[1:])})" if len(owners) > 1 else ""
        group.add_argument(flag, type=opt.type, default=None, dest="family_" + opt.key,
                           metavar=opt.key.upper(), help=opt.help + shared)
    return p


def model_from_args(args: argparse.Namespace, family: str) -> dict:
    """The model options given on the command line; a flag of another family is refused."""
    from studio.core.family import get_family

    model = {}
    for flag, (opt, owners) in family_flags().items():
        value = getattr(args, "family_" + opt.key)
        if value is None:
            continue
        if family not in owners:
            raise UsageError(f"{flag} is a {' and '.join(owners)} option; the {family} family does not take it")
        model[opt.key] = value
    for item in args.set:
        if "=" not in item:
            raise UsageError(f"--set expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        model[k.strip().replace("-", "_")] = _parse_value(v)
    from studio.training.runs import trainer_class

    known = trainer_class(family).model_keys()
    unknown = sorted(set(model) - known) if known is not None else []
    if unknown:
        raise UsageError(f"unknown {get_family(family).title} model option "
                         f"{', '.join(unknown)} (valid: {', '.join(sorted(known))})")
    return model


def init_model_options(path: str, family: str) -> dict:
    """The model options ``path`` was trained with, to build a model its weights fit."""
    from studio.core.checkpoint import CheckpointError, read_metadata
    from studio.training.runs import trainer_class

    try:
        meta = read_metadata(path)
    except CheckpointError as exc:
        raise UsageError(f"--init: {exc}") from None
    if meta.get("family") != family:
        raise UsageError(f"--init: {path} holds a '{meta.get('family')}' model, not {family}")
    known = trainer_class(family).model_keys()
    config = dict(meta.get("config") or {})
    return {k: v for k, v in config.items() if known is None or k in known}


def given_options(args: argparse.Namespace) -> dict:
    """TrainOptions fields the command line sets explicitly."""
    return {field: getattr(args, flag[2:].replace("-", "_")) for flag, field in GENERIC.items()
            if getattr(args, flag[2:].replace("-", "_")) is not None}


def options_from_args(args: argparse.Namespace, writer: bool = True):
    """(TrainOptions, checkpoint to resume from or None), after every command-line check.

    ``writer`` False: torchrun's ranks other than 0, which leave the run folder to rank 0.
    """
    from studio.training.lock import busy_message, is_locked
    from studio.training.options import TrainOptions
    from studio.training.runs import TrainingSetupError, holds_run, newest_valid_checkpoint, options_for_resume

    if writer and is_locked(args.out):  # a live writer first: nothing else about the folder matters
        raise UsageError(busy_message(Path(args.out)))
    given = given_options(args)
    if args.resume:
        try:
            opts, last = options_for_resume(args.out, given.get("steps"))
        except TrainingSetupError as exc:
            raise UsageError(f"--resume: {exc}") from exc
        if args.family and args.family != opts.family:
            raise UsageError(f"--resume: {args.out} is a {opts.family} run, not {args.family}")
        model = model_from_args(args, opts.family)
        changed = [f"--{k.replace('_', '-')} {v} (the run has {getattr(opts, k)})"
                   for k, v in given.items() if k not in RESUME_MAY_CHANGE and v != getattr(opts, k)]
        changed += [f"{k}={v} (the run has {opts.model.get(k)})" for k, v in model.items()
                    if opts.model.get(k) != v]
        if changed:
            raise UsageError("--resume continues with the run's saved options; only --steps, --device, "
                             f"--threads and --workers may change, not: {'; '.join(changed)}")
        for k in RESUME_MAY_CHANGE & set(given):
            setattr(opts, k, given[k])
        return opts, last
    if not args.family:
        raise UsageError("name the model family (or continue a run with --resume)")
    if writer and holds_run(args.out):
        found = newest_valid_checkpoint(args.out)
        at = f" (at step {found[1]})" if found else ""
        raise UsageError(f"{args.out} holds a run already{at}; continue it with --resume, "
                         "or choose a new --out folder")
    from studio.core.family import get_family

    lr = get_family(args.family).form_defaults.get("lr")
    model = model_from_args(args, args.family)
    if args.init:
        model = {**init_model_options(args.init, args.family), **model}
    values = {**DEFAULTS, **({"lr": lr} if lr else {}), **given, "family": args.family, "out": args.out,
              "model": model}
    return TrainOptions(**values), None


def _stop_on_signals() -> None:
    """``kill`` (SIGTERM) stops a run as Ctrl+C does: it saves where it got to. And Ctrl+C works even
    when the run was started in the background by a script (which starts it with SIGINT ignored)."""
    import signal

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread (main() called from a test's thread): leave them
        pass


def main(argv: list[str] | None = None) -> int:
    from studio.training.context import RunContext

    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on its own usage errors
    _stop_on_signals()
    writer = RunContext.main_from_env()
    try:
        opts, resume = options_from_args(args, writer)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    from studio.training.lock import RunFolderBusy, RunLock
    from studio.training.runs import TrainingSetupError, prepare_run

    try:
        ctx = RunContext.from_env(opts.device)
        plan = prepare_run(opts, resume, writer=ctx.is_main)
        lock = RunLock(opts.out).acquire() if ctx.is_main else None
    except (TrainingSetupError, RunFolderBusy, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _train(args, plan, ctx, lock is not None)
    finally:
        if lock is not None:
            lock.release()


def _train(args, plan, ctx, main_rank: bool) -> int:
    from studio.core.checkpoint import CheckpointError
    from studio.core.threads import configure_torch_threads
    from studio.data.datasets import DatasetError
    from studio.training.events import CheckpointWritten, Diverged, Finished, Metrics, Progress
    from studio.training.runs import build_trainer, clean_orphans
    from studio.training.trainer import RunFolderError

    say = print if main_rank else (lambda *a, **k: None)
    configure_torch_threads(plan.options.threads or None)
    if main_rank:
        removed = clean_orphans(plan.options.out, lock_held=True)
        if removed:
            say(f"removed {len(removed)} temp file(s) left by a killed run: {', '.join(removed)}")
    for path, why in plan.skipped:
        say(f"skipped {path}: {why}")
    trainer = None
    try:
        trainer = build_trainer(plan.options, plan.resume, ctx, plan.data)
        if plan.resume:
            say(f"resumed at step {trainer.step} from {plan.resume}")
        last_print = 0
        for event in trainer.run():
            if isinstance(event, Progress) and (event.step - last_print >= 100 or event.step == event.total_steps):
                last_print = event.step
                losses = " ".join(f"{k}={v:.4f}" for k, v in event.losses.items())
                say(f"step {event.step}/{event.total_steps} {losses} "
                    f"{event.examples_per_s:.0f} img/s eta {event.eta_s:.0f}s", flush=True)
            elif isinstance(event, CheckpointWritten):
                say(f"checkpoint {event.path}", flush=True)
            elif isinstance(event, Metrics):
                say("metrics " + json.dumps(event.values), flush=True)
            elif isinstance(event, Diverged):
                print(f"error: {event.message}; retry from there with --resume, "
                      "or start a new run with a lower --lr", file=sys.stderr)
                return 1
            elif isinstance(event, Finished):
                say(f"finished at step {event.step}: {event.path}", flush=True)
    except KeyboardInterrupt:
        if trainer is None or not main_rank or trainer.diverged is not None:
            print("interrupted", file=sys.stderr)
            return 130
        try:
            path = trainer.save_run_checkpoint()
        except (RunFolderError, ValueError) as exc:
            print(f"interrupted at step {trainer.step}; not saved: {exc}", file=sys.stderr)
            return 130
        print(f"interrupted at step {trainer.step}; saved {path} (continue with --resume)", file=sys.stderr)
        return 130
    except (RunFolderError, DatasetError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.export and main_rank:
        from studio.engine.export import export_checkpoint

        ckpt = trainer.to_checkpoint(with_training_state=False)
        written = export_checkpoint(ckpt, args.export)
        for p in written:
            say(f"exported {p}")
    return 0


def _run_cli() -> int:
    try:
        return main()
    except BrokenPipeError:
        # Piped into ``head`` or a closed pager: stop quietly. The run's checkpoints are on disk.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1


if __name__ == "__main__":
    sys.exit(_run_cli())
