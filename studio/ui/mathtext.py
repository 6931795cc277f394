"""TeX-like formulas to ink masks with matplotlib's mathtext: no Qt, so it runs in a helper process.

Importing matplotlib and loading its fonts takes about a second of pure-Python
work; in a thread it would hold the GIL and stall the window, so the Explain
panes draw their formulas in a process of their own (``draw_all``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

EQUATION_SIZE = 14.0  # points


class EquationError(ValueError):
    """The formula is not valid mathtext; the message names it."""


@lru_cache(maxsize=512)
def equation_mask(tex: str, size: float = EQUATION_SIZE, dpi: int = 100) -> np.ndarray:
    """A formula (without the $...$) as an ink mask: uint8 (H, W), 255 = ink."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    try:
        parsed = MathTextParser("agg").parse(f"${tex}$", dpi=dpi, prop=FontProperties(size=size))
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EquationError(f"cannot draw the formula {tex!r}: {first}") from None
    return np.array(parsed.image, dtype=np.uint8)


def draw_all(texs: list[str], dpi: int = 100) -> list[np.ndarray | str]:
    """A mask per formula, or the message of one that cannot be drawn (never raises for a formula)."""
    out: list[np.ndarray | str] = []
    for tex in texs:
        try:
            out.append(equation_mask(tex, EQUATION_SIZE, dpi))
        except EquationError as exc:
            out.append(str(exc))
    return out
