"""ASR bins and their sampling (Peng et al.'s official code), and the crop geometries the bins stand for.

Scale bins are exponents ``x`` in ``{-0.6, -0.4, ..., 0.6}`` applied as ``scale * 2 ** x``, rotation bins are centres
``{-60, -40, ..., 60}`` degrees. A sample draws a bin from the agent's softmax, then a value inside it from a bounded
Gaussian: ``mu + sigma * N(0, 1)`` clamped to ``[mu - sigma + eps, mu + sigma]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data import CropParams

EPS = 1e-3  # the code's lower-bound offset of the bounded Gaussian


@dataclass(frozen=True)
class Bins:
    """Bin centres ``(K,)`` and the bounded Gaussian's sigma of one ASR head."""

    centers: tuple[float, ...]
    sigma: float

    @property
    def k(self) -> int:
        return len(self.centers)


def even_bins(low: float, high: float, k: int, sigma: float) -> Bins:
    """``k`` centres evenly spaced from ``low`` to ``high`` (the code's: 7 bins, -0.6..0.6 or -60..60)."""
    return Bins(tuple(float(v) for v in np.round(np.linspace(low, high, k), 10)), sigma)


SCALE_BINS = even_bins(-0.6, 0.6, 7, 0.05)  # exponents of 2
ROTATION_BINS = even_bins(-60.0, 60.0, 7, 5.0)  # degrees


def bounded_gaussian(mu: float, sigma: float, rng: np.random.Generator, eps: float = EPS) -> float:
    """``mu + sigma * N(0, 1)`` clamped to ``[mu - sigma + eps, mu + sigma]`` (one draw from ``rng``)."""
    return float(np.clip(mu + sigma * rng.standard_normal(), mu - sigma + eps, mu + sigma))


def sample_bin(probs: np.ndarray, rng: np.random.Generator) -> int:
    """A bin index drawn from the categorical ``probs`` ``(K,)`` (non-negative, summing to 1)."""
    return int(rng.choice(len(probs), p=probs / probs.sum()))


def sample_value(probs: np.ndarray, bins: Bins, rng: np.random.Generator) -> tuple[int, float]:
    """(bin index, value): a bin from ``probs``, then the bounded Gaussian inside it."""
    j = sample_bin(probs, rng)
    return j, bounded_gaussian(bins.centers[j], bins.sigma, rng)


def sample_cells(probs: np.ndarray, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` distinct cells drawn one after another from ``probs`` ``(K,)`` without replacement (each draw
    from the softmax with the cells already drawn removed and the rest renormalised)."""
    p = np.asarray(probs, np.float64).copy()
    cells = []
    for _ in range(count):
        if p.sum() <= 0:  # only zero-probability cells are left: take them uniformly
            p = np.array([0.0 if c in cells else 1.0 for c in range(len(p))])
        j = sample_bin(p, rng)
        cells.append(j)
        p[j] = 0.0
    return cells


def cell_mask(cells: list[int], grid: tuple[int, int]) -> np.ndarray:
    """``(1, gh, gw)`` float32 ones with the given cells (row-major) set to 0."""
    mask = np.ones(grid[0] * grid[1], np.float32)
    mask[list(cells)] = 0.0
    return mask.reshape(1, *grid)


def asr_params(plain: CropParams, exponent: float = 0.0, rotation: float = 0.0, flip: bool = False) -> CropParams:
    """The crop of the un-augmented ``plain`` box at ``scale * 2 ** exponent`` and ``rotation`` degrees; exponent 0,
    rotation 0 and no flip give ``plain`` itself (the standard crop)."""
    return replace(plain, scale=plain.scale * 2.0 ** exponent, rotation=float(rotation), flip=bool(flip))


def grid_for(input_size: tuple[int, int], rows: int = 4) -> tuple[int, int]:
    """The agent's coarse grid for a ``(height, width)`` crop: ``rows`` x ``round(rows * width / height)``, the
    paper's 4 x 4 for square crops and 4 x 3 for the 4:3 (height:width) crops of SimpleBaseline / HRNet."""
    h, w = input_size
    return rows, max(1, round(rows * w / h))
