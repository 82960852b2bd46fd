"""Heatmap post-processing: flip-test fusion, argmax, and the sub-pixel refinement of the peak.

Two refinements, by name in :data:`DECODERS`: ``quarter`` (HRNet's quarter-offset rule, the default everywhere) and
``dark`` (DARK's Taylor step on the log of the modulated heatmap, Zhang et al., CVPR 2020), which is what a model
trained on sub-pixel (unbiased) Gaussian targets at a low heatmap resolution should be decoded with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from robustpose.datasets.keypoints import flip_permutation


def fuse_flipped(heatmaps: torch.Tensor, flipped: torch.Tensor, flip_pairs: Sequence[tuple[int, int]],
                 shift: bool = True) -> torch.Tensor:
    """Average heatmaps with those of the horizontally flipped input, HRNet ``flip_back`` + ``SHIFT_HEATMAP``.

    ``flipped`` (the model's output on the flipped crops, ``(B, J, H, W)``) is mirrored back along the width and its
    left/right channels swapped; with ``shift`` every column j >= 1 then takes column j - 1 (column 0 is kept),
    compensating the half-pixel offset of flipping an even-width map. Returns ``(heatmaps + unflipped) / 2``.
    """
    perm = flip_permutation(flipped.shape[1], tuple(flip_pairs))
    back = flipped.flip(-1)[:, perm]
    if shift:
        back = torch.cat([back[..., :1], back[..., :-1]], dim=-1)
    return (heatmaps + back) * 0.5


def _peaks(hm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax (x, y) ``(N, J, 2)`` float64 and peak values ``(N, J)``; maps whose peak is <= 0 give (0, 0)."""
    n, j, h, w = hm.shape
    flat = hm.reshape(n, j, h * w)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0].astype(np.float64)
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
    coords *= (maxvals > 0)[..., None]
    return coords, maxvals


def argmax_refined(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HRNet ``get_max_preds`` + the quarter-offset rule of ``get_final_preds``.

    ``heatmaps`` ``(N, J, H, W)`` float. Peak (x, y) per map; maps whose peak is <= 0 give (0, 0). Then, with
    px, py the peak rounded (floor(x + 0.5)), **only if 1 < px < W - 1 and 1 < py < H - 1**, x moves 0.25 towards the
    larger horizontal neighbour and y towards the larger vertical one (sign of the difference, 0 on ties).

    Returns ``coords`` ``(N, J, 2)`` float64 heatmap pixels and ``maxvals`` ``(N, J)`` float64.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    h, w = hm.shape[2:]
    coords, maxvals = _peaks(hm)
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    ni, ji = np.nonzero(inside)
    pxi, pyi = px[ni, ji], py[ni, ji]
    dx = hm[ni, ji, pyi, pxi + 1] - hm[ni, ji, pyi, pxi - 1]
    dy = hm[ni, ji, pyi + 1, pxi] - hm[ni, ji, pyi - 1, pxi]
    coords[ni, ji, 0] += np.sign(dx) * 0.25
    coords[ni, ji, 1] += np.sign(dy) * 0.25
    return coords, maxvals


def dark_refined(heatmaps: np.ndarray, sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Argmax refined by DARK (Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020).

    Each map is modulated (Gaussian blur of standard deviation ``sigma`` with zero padding, rescaled to its original
    peak value), clipped to [1e-3, 50] and log-transformed; at the integer peak (x, y) the second-order Taylor step
    ``-H^-1 g`` of the log-map (central differences, the Hessian from +-2 pixel differences, as MMPose) moves the
    estimate. The step is taken only where it is defined, ``1 < x < W - 2`` and ``1 < y < H - 2``, and where the
    Hessian is negative definite (a maximum): elsewhere the integer peak is kept. Each component of the step is
    clipped to one pixel (MMPose does not clip; it matters only for nearly flat maps).

    Parameters
    ----------
    heatmaps : (N, J, H, W) float
    sigma : float
        The training targets' Gaussian standard deviation in heatmap pixels.

    Returns
    -------
    coords : (N, J, 2) float64 heatmap pixels
    maxvals : (N, J) float64, the peaks of the unmodulated maps (the same scores as :func:`argmax_refined`)
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    h, w = hm.shape[2:]
    coords, maxvals = _peaks(hm)
    blurred = gaussian_filter(hm, sigma=(0, 0, sigma, sigma), mode="constant", cval=0.0, truncate=3.0)
    peak = blurred.max(axis=(2, 3), keepdims=True)
    blurred *= np.divide(hm.max(axis=(2, 3), keepdims=True), peak, out=np.zeros_like(peak), where=peak > 0)
    logh = np.log(np.clip(blurred, 1e-3, 50.0))
    px, py = coords[..., 0].astype(np.int64), coords[..., 1].astype(np.int64)
    ni, ji = np.nonzero((px > 1) & (px < w - 2) & (py > 1) & (py < h - 2))  # peakless maps sit at (0, 0)
    x, y = px[ni, ji], py[ni, ji]

    def at(dy: int, dx: int) -> np.ndarray:
        return logh[ni, ji, y + dy, x + dx].astype(np.float64)

    gx, gy = 0.5 * (at(0, 1) - at(0, -1)), 0.5 * (at(1, 0) - at(-1, 0))
    hxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    hyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    hxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = hxx * hyy - hxy**2
    ok = (det > 0) & (hxx < 0)
    safe = np.where(ok, det, 1.0)
    # -H^-1 g for the 2x2 symmetric Hessian [[hxx, hxy], [hxy, hyy]]; the integer peak is the largest sample, so the
    # maximum lies within a pixel of it: a longer step (a nearly flat direction) is clipped
    coords[ni, ji, 0] -= np.clip(np.where(ok, (hyy * gx - hxy * gy) / safe, 0.0), -1, 1)
    coords[ni, ji, 1] -= np.clip(np.where(ok, (hxx * gy - hxy * gx) / safe, 0.0), -1, 1)
    return coords, maxvals


DECODERS = ("quarter", "dark")


def decode_heatmaps(heatmaps: np.ndarray, method: str = "quarter", sigma: float = 2.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Peak coordinates ``(N, J, 2)`` (heatmap pixels) and scores ``(N, J)`` by ``method`` (one of
    :data:`DECODERS`): ``quarter`` is :func:`argmax_refined`, ``dark`` is :func:`dark_refined` with ``sigma``."""
    if method == "quarter":
        return argmax_refined(heatmaps)
    if method == "dark":
        return dark_refined(heatmaps, sigma)
    raise ValueError(f"unknown heatmap decoder {method!r}; choose one of {', '.join(DECODERS)}")
