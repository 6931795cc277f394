"""Translate pictures with a CycleGAN, without the GUI:

    python -m studio.translate --checkpoint FILE [--direction AtoB|BtoA] [--tile] INPUT... -o OUTDIR

Each input is a picture or a folder (walked; its layout is kept under OUTDIR); every
picture becomes OUTDIR/NAME.png, translated in batches. A file that cannot be translated
gets one line on stderr naming it and saying why, and the others go on. The last line
says how many were translated and how fast (images/s).

Exit status: 0 when every file was translated, 1 when any failed, 2 for a usage error or
a checkpoint that cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FITS = ("pad", "crop", "stretch")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m studio.translate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="pictures and folders of pictures")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="where the translations go (made if missing)")
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a CycleGAN checkpoint (.safetensors) or run folder")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default) translates domain A into B with G_AB; BtoA the other way")
    p.add_argument("--tile", action="store_true",
                   help="translate each whole picture in overlapping model-sized tiles, blended back "
                        "(default: fit it to one model-sized square)")
    p.add_argument("--fit", choices=FITS, default=None,
                   help="how a picture becomes one square without --tile: pad (default, keeps the aspect), crop "
                        "or stretch; a digit model frames digits as MNIST does whatever this says")
    p.add_argument("--overlap", type=int, default=8, help="tile overlap in pixels (--tile; default 8)")
    p.add_argument("--cycle", action="store_true", help="also write each round trip as NAME.cycle.png")
    p.add_argument("--batch-size", type=int, default=64, help="pictures per batch (default 64)")
    p.add_argument("--backend", choices=["onnx", "torch"], default="onnx")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    return p


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _checked_checkpoint(path: str):
    """What the panel reads of the checkpoint (ModelFacts); CheckpointError (one line) unless it is a
    usable CycleGAN checkpoint."""
    from studio.core.checkpoint import CheckpointError, check_fits_model, newest_checkpoint, read_checkpoint_file

    p = Path(path)
    if p.is_dir():
        newest = newest_checkpoint(p)
        if newest is None:
            raise CheckpointError(f"{p}: the folder holds no checkpoint")
        p = newest
    ckpt, digest = read_checkpoint_file(p)
    if ckpt.family != "cyclegan":
        raise CheckpointError(f"{p}: a '{ckpt.family}' checkpoint, not a CycleGAN model")
    check_fits_model(ckpt, digest)
    from studio.families.cyclegan.facts import ModelFacts

    return ModelFacts.from_metadata(str(p), ckpt.metadata())


def _line(name: str, reason: str) -> str:
    """One stderr line that starts with the file's name."""
    reason = " ".join(str(reason).split())
    return reason if reason.startswith(name) else f"{name}: {reason}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2
    if args.tile and args.fit:
        parser.error("--tile and --fit choose the fitting twice: give one")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    fit = "tile" if args.tile else (args.fit or "pad")

    from studio.engine.setup import configure_process

    configure_process()
    from studio.core.checkpoint import CheckpointError
    from studio.engine.backends import BackendError

    try:
        model = _checked_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        return _fail(str(exc))
    size = model.image_size
    if args.tile and not 0 <= args.overlap < size:
        parser.error(f"--overlap must be in [0, {size}) pixels for this {size}x{size} model")

    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool
    from studio.families.cyclegan.ops import translate_folder

    a, b = model.domain_a, model.domain_b
    label = f"{a} -> {b}" if args.direction == "AtoB" else f"{b} -> {a}"
    target = Target(str(args.checkpoint), args.backend, args.device)
    last, reported = None, 0
    try:
        for progress in translate_folder(RuntimePool(), target, args.inputs, args.out, args.direction, fit,
                                         args.overlap, args.batch_size, args.cycle):
            for name, reason in progress.failed[reported:]:
                print(_line(name, reason), file=sys.stderr, flush=True)
            reported, last = len(progress.failed), progress
    except (ValueError, CheckpointError, BackendError) as exc:
        return _fail(" ".join(str(exc).split()))
    except KeyboardInterrupt:
        return _fail("interrupted; the pictures written so far are complete", 130)
    if last is None or last.total == 0:
        return _fail(f"nothing to translate: no files in {', '.join(args.inputs)}", 1)
    written = last.done - len(last.failed)
    failed = f"; {len(last.failed)} failed (listed above)" if last.failed else ""
    print(f"translated {written} of {last.total} pictures ({label}, {fit}) into {args.out} in {last.seconds:.1f} s: "
          f"{last.images_per_s:.1f} images/s{failed}", flush=True)
    return 1 if last.failed else 0


if __name__ == "__main__":
    sys.exit(main())
