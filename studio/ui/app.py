"""Launch the app: ``python main.py`` or the ``studio`` command."""

from __future__ import annotations

import argparse
import sys
import time

from studio.ui.panels import panel_for_family, panel_names

_T0 = time.perf_counter()
FORMULAS_WAIT_S = 15.0  # --screenshot waits at most this long for the Explain formulas after the first image


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python main.py",
        description="Generative Studio: explore and train generative image models.",
        epilog="panels: " + ", ".join(panel_names()),
    )
    p.add_argument("--backend", choices=["onnx", "torch"],
                   help="inference engine (default: the last one used, else onnx)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="(default: the last one used, else auto)")
    p.add_argument("--checkpoint", help="a .safetensors checkpoint or a run folder (its newest checkpoint)")
    p.add_argument("--panel", choices=panel_names(), help="the panel to show first")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="save the window once the visible panel shows its first image, then exit "
                        "(works without a display)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds --screenshot waits at most")
    return p


def _check_checkpoint(path: str) -> str:
    """Validate before any window opens: the file, its metadata, and that its weights fit the model
    its config describes. Returns the family; exits 2 with a one-line message on a bad file."""
    from studio.core.checkpoint import CheckpointError, check_fits_model, read_checkpoint_file

    try:
        ckpt, digest = read_checkpoint_file(path)
        check_fits_model(ckpt, digest)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return ckpt.family


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    family = _check_checkpoint(args.checkpoint) if args.checkpoint else None
    from studio.ui.display import display_problem

    problem = display_problem(offscreen_ok=bool(args.screenshot))
    if problem:  # before Qt, which would abort with a core dump
        print(problem, file=sys.stderr)
        return 2

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import saved_backend
    from studio.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Generative Studio")
    apply_theme(app)
    remember = not args.screenshot  # a screenshot shows the defaults and leaves the user's settings alone
    last_backend, last_device = saved_backend() if remember else (None, None)
    context = AppContext(args.backend or last_backend or "onnx", args.device or last_device or "auto")
    if family:
        if panel_for_family(family) is None:
            print(f"error: {args.checkpoint}: no panel shows '{family}' models yet", file=sys.stderr)
            return 2
        context.checkpoints[family] = args.checkpoint
    panel_name = args.panel or (panel_for_family(family) if family else None)
    window = MainWindow(context, initial=panel_name, remember=remember)
    window.show()

    def first_image_shown():
        # Deferred: this is called from inside a paint event, where grabbing would repaint recursively.
        QTimer.singleShot(0, finish_if_ready)

    shown_at: list[float] = []

    def formulas_drawn() -> bool:
        return all(not p.has_explain() or not p.explain.is_expanded()
                   or p.explain.drawn_equations() == p.explain.equations() for p in window.visible_panels())

    def finish_if_ready():
        if all(p.has_first_image() for p in window.visible_panels()):
            if not shown_at:
                shown_at.append(time.perf_counter())
                print(f"first image on screen after {(shown_at[0] - _T0) * 1000:.0f} ms", flush=True)
            if args.screenshot:
                # The Explain formulas are drawn in a helper process once the picture is up: wait for them
                # (a little), so the screenshot shows what a user sees a moment later.
                if not formulas_drawn() and time.perf_counter() - shown_at[0] < FORMULAS_WAIT_S:
                    QTimer.singleShot(50, finish_if_ready)
                    return
                window.grab().save(args.screenshot)
                print(f"saved {args.screenshot}", flush=True)
                app.exit(0)

    for panel in window.panels.values():
        panel.firstImage.connect(first_image_shown)
    if args.screenshot:
        def give_up():
            print(f"error: no image on screen within {args.timeout:.0f} s", file=sys.stderr)
            app.exit(3)
        QTimer.singleShot(int(args.timeout * 1000), give_up)
    code = app.exec()
    context.bridge.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
