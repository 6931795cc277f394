"""Large pictures through a model trained on small squares: overlapping tiles, blended back.

The picture is covered by tiles of the model's size placed ``tile - overlap`` apart (the last
row and column flush with the far edges, so no padding is invented); each translated tile is
weighted by a window that falls off linearly across the overlap, and the weighted sum is
divided by the summed weights, so seams fade instead of showing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TILES = 4096  # beyond this a picture is scaled down first (a 2048x2048 picture in 32x32 tiles)


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def _starts(length: int, tile: int, step: int) -> tuple[int, ...]:
    if length <= tile:
        return (0,)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return tuple(dict.fromkeys(starts))


def tile_grid(height: int, width: int, tile: int, overlap: int) -> TileGrid:
    if not 0 <= overlap < tile:
        raise ValueError(f"the tile overlap must be in [0, {tile}), not {overlap}")
    if height < tile or width < tile:
        raise ValueError(f"a {width}x{height} picture is smaller than one {tile}x{tile} tile")
    step = tile - overlap
    return TileGrid(height, width, tile, overlap, _starts(height, tile, step), _starts(width, tile, step))


def split(image: np.ndarray, grid: TileGrid) -> np.ndarray:
    """(C, H, W) -> (count, C, tile, tile), row by row."""
    t = grid.tile
    return np.stack([image[:, y: y + t, x: x + t] for y in grid.ys for x in grid.xs])


def _window(tile: int, overlap: int) -> np.ndarray:
    """Weights of one tile: 1 in the middle, a linear ramp over ``overlap`` pixels at each edge."""
    ramp = np.ones(tile, np.float32)
    if overlap:
        edge = (np.arange(overlap, dtype=np.float32) + 1.0) / (overlap + 1.0)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.outer(ramp, ramp)


def blend(tiles: np.ndarray, grid: TileGrid) -> np.ndarray:
    """(count, C, tile, tile) -> (C, H, W): the weighted average where tiles overlap."""
    c, t = tiles.shape[1], grid.tile
    total = np.zeros((c, grid.height, grid.width), np.float32)
    weight = np.zeros((grid.height, grid.width), np.float32)
    window = _window(t, grid.overlap)
    k = 0
    for y in grid.ys:
        for x in grid.xs:
            total[:, y: y + t, x: x + t] += tiles[k] * window
            weight[y: y + t, x: x + t] += window
            k += 1
    return total / np.maximum(weight, 1e-8)
