"""Walk through every panel of the real app as a student would, and screenshot each step.

    xvfb-run -a python tests/gui_tour.py OUT_DIR

Run by tests/test_gui_smoke.py under Xvfb with Qt's xcb platform (a real X
server, not the offscreen plugin); also how assets/screenshots/ are made.
Prints one JSON line: the Qt platform, and the screenshots written.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(out_dir: str) -> int:
    import numpy as np
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from studio.core.paths import default_mnist
    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow
    from studio.ui.panels import panel_names
    from studio.ui.theme import apply_theme
    from studio.ui.widgets.image_view import to_qimage

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([sys.argv[0]])
    apply_theme(app)
    window = MainWindow(AppContext("onnx", "cpu"), initial="vae", remember=False)
    window.show()
    window.activateWindow()  # shortcuts go to the active window (Xvfb has no window manager to do it)
    window.raise_()
    QTest.qWaitForWindowActive(window, 5000)
    shots: list[str] = []

    def wait(condition, seconds: float, what: str) -> None:
        # Generous: on a loaded 2-core machine a render can queue behind a whole test suite.
        deadline = time.monotonic() + 3 * seconds
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"error: timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.01)

    def settle(seconds: float = 0.4) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def go_to(panel: str) -> None:
        """View > Go to: Alt+N, N the panel's place among the tabs."""
        key = getattr(Qt.Key, f"Key_{panel_names().index(panel) + 1}")
        QTest.keyClick(window, key, Qt.KeyboardModifier.AltModifier)

    def shot(name: str) -> None:
        path = out / f"{name}.png"
        window.grab().save(str(path))
        shots.append(path.name)

    # VAE: the 2-D map, a click on it, a pasted digit and its ELBO, an interpolation.
    vae = window.panels["vae"]
    wait(vae.has_first_image, 60, "the VAE's first picture")
    wait(lambda: vae.state.dim_kl is not None, 60, "the KL per dimension")
    rect = vae.manifold.image_rect()
    QTest.mouseClick(vae.manifold, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.left() + 0.72 * rect.width()),
                                                                            int(rect.top() + 0.3 * rect.height())))
    if default_mnist().exists():
        from studio.data.datasets import open_dataset

        digits = open_dataset(None).images
        QGuiApplication.clipboard().setImage(to_qimage((digits[-3, 0] * 255).astype(np.uint8)))
        QTest.keyClick(window, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        wait(lambda: vae.pair.image() is not None, 30, "the encoded digit")
        wait(lambda: vae.state.elbo is not None and vae.state.elbo.about == "clipboard image", 30, "its ELBO")
    QTest.keyClick(window, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.ControlModifier)  # A = current
    QTest.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # random sample
    QTest.keyClick(window, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)  # B = current
    wait(lambda: vae.strip.image() is not None, 30, "the interpolation strip")
    wait(lambda: vae.explain.drawn_equations() == vae.explain.equations(), 60, "the Explain formulas")
    settle()
    shot("vae_2d")

    # The 16-D model: sliders sorted by KL, the map over its two most used dimensions.
    vae.picker.setCurrentIndex(1)
    wait(lambda: vae.latent_dim == 16 and vae.state.dim_kl is not None, 60, "the 16-D model")
    wait(lambda: vae.results.get("manifold") is not None
         and vae.results["manifold"].request.dims == vae.dims(), 60, "its map")
    wait(lambda: vae.explain.drawn_equations() == vae.explain.equations(), 60, "the Explain formulas")
    settle()
    shot("vae_16d")

    if default_mnist().exists():
        QTest.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)  # encode MNIST digits
        wait(lambda: vae._scatter_data is not None, 120, "the dataset scatter")
        settle(0.8)
        shot("vae_scatter")

    # GANs: the explorer on the next seed, the style-mixing grid with fine layers from B, the noise map.
    go_to("gan")
    gan = window.panels["gan"]
    wait(gan.has_first_image, 60, "the GAN explorer's first picture")
    QTest.mouseClick(gan.next_button, Qt.MouseButton.LeftButton)
    wait(lambda: gan.results.get("image") is not None and gan.results["image"].request.code.seed == 1, 30,
         "the next seed")
    settle()
    shot("gan")
    go_to("style-mixing")
    mixing = window.panels["style-mixing"]
    wait(mixing.has_first_image, 60, "the style-mixing grid")
    QTest.mouseClick(mixing.layers.preset_buttons["fine"], Qt.MouseButton.LeftButton)
    wait(lambda: mixing.last_grid is not None and mixing.last_grid.request.layers == (6, 7), 30,
         "the grid with fine layers from B")
    settle()
    shot("style_mixing")
    go_to("noise")
    noise = window.panels["noise"]
    wait(noise.has_first_image, 60, "the noise panel's picture and map")
    settle()
    shot("noise")

    # Diffusion: a full DDIM run, then its last frame.
    go_to("diffusion")
    diffusion = window.panels["diffusion"]
    wait(diffusion.has_first_image, 60, "the diffusion panel's first frame")
    wait(lambda: not diffusion.running, 180, "the diffusion sample")
    settle()
    shot("diffusion")

    # CycleGAN: a held-out handwritten digit translated to printed and back, then the other way.
    from studio.engine.catalog import shipped

    if shipped("cyclegan"):
        go_to("cyclegan")
        cycle = window.panels["cyclegan"]
        wait(cycle.has_first_image, 60, "the CycleGAN panel's first translation")
        wait(lambda: cycle.explain.drawn_equations() == cycle.explain.equations(), 60, "the Explain formulas")
        settle()
        shot("cyclegan")
        QTest.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)  # swap direction
        wait(lambda: cycle.state.result is not None and cycle.state.result.direction == "BtoA", 30,
             "the printed -> handwritten translation")
        settle()
        shot("cyclegan_back")

    go_to("training")
    training = window.panels["training"]
    wait(training.has_first_image, 30, "the training panel")
    settle()
    shot("training")

    print(json.dumps({"platform": QGuiApplication.platformName(), "screenshots": shots}), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
