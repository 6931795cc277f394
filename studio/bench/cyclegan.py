"""CycleGAN: a dropped digit to its translation on screen, in the real panel.

The Qt part is studio.families.cyclegan.ui.measure (it drives the panel's widgets).
"""

from __future__ import annotations

from studio.engine.catalog import shipped


def bench(quick: bool) -> dict:
    found = shipped("cyclegan")
    if not found:
        return {"error": "no shipped CycleGAN checkpoint"}
    from studio.families.cyclegan.ui import measure

    return measure.drop_to_result_ms(str(found[0]), drops=10 if quick else 40)
