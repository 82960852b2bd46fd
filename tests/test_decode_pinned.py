"""Heatmap decoding pinned by hand: the quarter rule at every border, degenerate DARK steps, and DARK against an
independent re-derivation of its documented recipe (zero-padded Gaussian blur of radius ``int(3 sigma + 0.5)``,
rescaled to the map's peak, clipped to [1e-3, 50], log, Newton step from +-1 / +-2 differences, each component
clipped to one pixel, skipped unless the Hessian is negative definite and ``1 < x < W - 2``, ``1 < y < H - 2``)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

from robustpose.inference.decode import DECODERS, argmax_refined, dark_refined, decode_heatmaps, fuse_flipped

H, W = 12, 14


def one_map(values: dict[tuple[int, int], float], background: float = 0.0) -> np.ndarray:
    """(1, 1, H, W) float32 map with ``values`` at (x, y)."""
    hm = np.full((H, W), background, np.float32)
    for (x, y), v in values.items():
        hm[y, x] = v
    return hm[None, None]


@pytest.mark.parametrize(("x", "y", "refined"), [
    (2, 5, True), (W - 2, 5, True), (6, 2, True), (6, H - 2, True),
    (1, 5, False), (W - 1, 5, False), (6, 1, False), (6, H - 1, False), (0, 0, False),
])
def test_quarter_rule_applies_exactly_for_1_lt_px_lt_w_minus_1(x, y, refined):
    # right and lower neighbours larger: +0.25 in x and y when refined
    values = {(x, y): 1.0}
    for dx, dy, v in ((1, 0, 0.6), (-1, 0, 0.3), (0, 1, 0.7), (0, -1, 0.2)):
        if 0 <= x + dx < W and 0 <= y + dy < H:
            values[x + dx, y + dy] = v
    coords, maxvals = argmax_refined(one_map(values))
    np.testing.assert_array_equal(coords[0, 0], [x + 0.25, y + 0.25] if refined else [x, y])
    assert maxvals[0, 0] == 1.0 and maxvals.dtype == np.float64 and coords.dtype == np.float64


def test_quarter_rule_moves_towards_the_larger_adjacent_neighbour_only():
    # left neighbour larger than the right one, though the pixel two to the left is the smallest of all
    hm = one_map({(6, 5): 1.0, (5, 5): 0.8, (7, 5): 0.5, (4, 5): 0.1, (8, 5): 0.9, (6, 4): 0.4, (6, 6): 0.4})
    coords, _ = argmax_refined(hm)
    np.testing.assert_array_equal(coords[0, 0], [5.75, 5.0])  # -0.25 in x, tie in y: 0


def test_a_peak_of_exactly_zero_is_no_peak():
    hm = one_map({(5, 4): 0.0}, background=-1.0)
    for decode in (argmax_refined, dark_refined):
        coords, maxvals = decode(hm)
        np.testing.assert_array_equal(coords[0, 0], [0, 0])
        assert maxvals[0, 0] == 0.0


def test_float64_maps_are_decoded_as_float32():
    # neighbours that differ only below float32 precision are a tie, as for the network's float32 output
    hm = one_map({(6, 5): 1.0, (5, 5): 0.5, (7, 5): 0.5, (6, 4): 0.5, (6, 6): 0.5}).astype(np.float64)
    hm[0, 0, 5, 7] += 1e-12
    np.testing.assert_array_equal(argmax_refined(hm)[0][0, 0], [6, 5])
    rng = np.random.default_rng(0)
    maps = rng.random((2, 3, H, W)) ** 6
    np.testing.assert_array_equal(dark_refined(maps)[0], dark_refined(maps.astype(np.float32))[0])


def test_defaults():
    rng = np.random.default_rng(1)
    hm = (rng.random((2, 3, H, W)) ** 8).astype(np.float32)
    np.testing.assert_array_equal(decode_heatmaps(hm)[0], argmax_refined(hm)[0])
    np.testing.assert_array_equal(decode_heatmaps(hm, "dark")[0], dark_refined(hm, 2.0)[0])
    np.testing.assert_allclose(dark_refined(hm)[0], dark_reference(hm, 2.0), atol=2e-5)
    assert not np.array_equal(dark_refined(hm, 3.0)[0], dark_refined(hm)[0])
    assert DECODERS == ("quarter", "dark")
    with pytest.raises(ValueError, match=re.escape("unknown heatmap decoder 'udp'; choose one of quarter, dark")):
        decode_heatmaps(hm, "udp")
    h, f = torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4)
    f[0, 0, :, 2] = 1.0  # mirrored to column 1, shifted to column 2 by default
    assert fuse_flipped(h, f, [])[0, 0, 0].tolist() == [0, 0, 0.5, 0]


# ---------------------------------------------------------------- DARK against a re-derivation


def blur(m: np.ndarray, sigma: float) -> np.ndarray:
    """Separable zero-padded Gaussian blur of one (H, W) map, kernel radius int(3 sigma + 0.5), normalised."""
    if sigma == 0:
        return m.astype(np.float64)
    r = int(3 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    def conv(v):
        return np.convolve(v, k)[r:r + len(v)]  # zero padding, output aligned with the input

    rows = np.stack([conv(row) for row in m.astype(np.float64)])
    return np.stack([conv(col) for col in rows.T]).T


def dark_reference(hm: np.ndarray, sigma: float, lo: float = 1e-3, hi: float = 50.0) -> np.ndarray:
    n, j, h, w = hm.shape
    out = np.zeros((n, j, 2))
    for a in range(n):
        for b in range(j):
            m = hm[a, b].astype(np.float32)
            y, x = np.unravel_index(int(np.argmax(m)), m.shape)
            if m[y, x] <= 0:
                continue
            out[a, b] = x, y
            if not (1 < x < w - 2 and 1 < y < h - 2):
                continue
            bl = blur(m, sigma)
            bl *= m.max() / bl.max()
            lg = np.log(np.clip(bl, lo, hi))

            def f(dx, dy):
                return lg[y + dy, x + dx]

            g = np.array([f(1, 0) - f(-1, 0), f(0, 1) - f(0, -1)]) / 2
            hxx = (f(2, 0) - 2 * f(0, 0) + f(-2, 0)) / 4
            hyy = (f(0, 2) - 2 * f(0, 0) + f(0, -2)) / 4
            hxy = (f(1, 1) - f(-1, 1) - f(1, -1) + f(-1, -1)) / 4
            hess = np.array([[hxx, hxy], [hxy, hyy]])
            if np.linalg.det(hess) > 0 and hxx < 0:
                out[a, b] -= np.clip(np.linalg.solve(hess, g), -1, 1)
    return out


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_dark_equals_the_re_derived_recipe_on_irregular_maps(sigma):
    rng = np.random.default_rng(int(sigma * 10))
    # sparse spikes and blobs: tails, zero padding, near-empty neighbourhoods and very different peaks per map
    hm = np.zeros((3, 4, 20, 24), np.float32)
    for a in range(3):
        for b in range(4):
            for _ in range(rng.integers(1, 4)):
                y, x = rng.integers(0, 20), rng.integers(0, 24)
                hm[a, b, y, x] += rng.uniform(0.1, 1.0) * 10.0 ** rng.integers(-1, 3)
    hm[0, 0, 8, 10], hm[0, 0, 8, 17] = 80.0, 60.0  # two peaks 7 px apart: the kernel radius shows
    hm[1, 1, 9, 9] = 3e-3  # a faint map: blurred values fall below the 1e-3 clip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log(0), no 0/0 on empty maps
        coords, _ = dark_refined(hm, sigma)
    np.testing.assert_allclose(coords, dark_reference(hm, sigma), atol=2e-5)


def test_dark_clip_bounds_on_hand_stencils():
    # sigma 0 (no blur): the peak (100) and one neighbour (50.5) are clipped to 50; in the second map two stencil
    # values (5e-4, 2e-4) are clipped up to 1e-3. Either bound moved changes the step.
    v = {(0, 0): 100, (1, 0): 50.5, (-1, 0): 30, (2, 0): 10, (-2, 0): 5, (0, 1): 40, (0, -1): 40, (0, 2): 10,
         (0, -2): 10, (1, 1): 20, (-1, -1): 20, (1, -1): 15, (-1, 1): 15}
    high = one_map({(6 + a, 5 + b): c for (a, b), c in v.items()}, background=1.0)
    low = one_map({(6, 5): 1.0, (7, 5): 0.5, (5, 5): 0.2, (8, 5): 5e-4, (4, 5): 0.1, (6, 4): 0.4, (6, 6): 0.4,
                   (6, 3): 0.1, (6, 7): 2e-4, (7, 6): 0.2, (5, 4): 0.2, (7, 4): 0.1, (5, 6): 0.1}, background=0.0)
    for hm in (high, low):
        expected = dark_reference(hm, 0.0)
        np.testing.assert_allclose(dark_refined(hm, 0.0)[0], expected, atol=1e-6)
        with np.errstate(divide="ignore"):
            for lo, hi in ((1e-3, 51.0), (1e-3, np.inf), (0.0, 50.0)):
                other = dark_reference(hm, 0.0, lo, hi)
                assert np.array_equal(other, expected) or np.abs(other - expected).max() > 1e-3
            assert np.abs(dark_reference(hm, 0.0, 1e-3, 51.0) - expected).max() > 1e-3 or hm is low
            assert np.abs(dark_reference(hm, 0.0, 0.0, 50.0) - expected).max() > 1e-3 or hm is high


def test_dark_takes_no_step_when_the_hessian_is_exactly_singular():
    # logs: peak 0, edge and +-2 neighbours L = log 0.5, diagonals (1, 1), (-1, -1) L and the others 2L (0.25):
    # hxx = hyy = L / 2, hxy = (L + L - 2L - 2L) / 4 = -L / 2, so det = 0 exactly (float32 log(0.25) = 2 log(0.5))
    assert np.log(np.float32(0.25)) == 2 * np.log(np.float32(0.5))
    values = {(6, 5): 1.0}
    for d in ((1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (-2, 0), (0, 2), (0, -2), (1, 1), (-1, -1)):
        values[6 + d[0], 5 + d[1]] = 0.5
    values[7, 4] = values[5, 6] = 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coords, _ = dark_refined(one_map(values, background=0.01), 0.0)
    np.testing.assert_array_equal(coords[0, 0], [6, 5])


@pytest.mark.parametrize(("axis", "sign"), [(0, 1), (0, -1), (1, 1), (1, -1)])
def test_a_long_newton_step_is_clipped_to_one_pixel(axis, sign):
    # steep on one side, almost flat curvature: the step -g / h ~ 34 px is cut to exactly one pixel
    along = {1: 0.99, -1: 0.5, 2: 0.98, -2: 0.98}
    across = {1: 0.9, -1: 0.9, 2: 0.9, -2: 0.9}
    values = {(6, 5): 1.0}
    for k, v in along.items():
        d = (sign * k, 0) if axis == 0 else (0, sign * k)
        values[6 + d[0], 5 + d[1]] = v
    for k, v in across.items():
        d = (0, k) if axis == 0 else (k, 0)
        values[6 + d[0], 5 + d[1]] = v
    for d in ((1, 1), (-1, -1), (1, -1), (-1, 1)):
        values[6 + d[0], 5 + d[1]] = 0.8
    coords, _ = dark_refined(one_map(values, background=0.01), 0.0)
    expected = np.array([6.0, 5.0])
    expected[axis] += sign
    np.testing.assert_allclose(coords[0, 0], expected, atol=1e-9)


def test_maps_without_a_peak_decode_quietly():
    hm = np.zeros((2, 3, H, W), np.float32)
    hm[1, 2, 4, 5] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0 / 0 when rescaling a map whose blurred peak is 0
        coords, maxvals = dark_refined(hm)
    assert coords[0].tolist() == [[0, 0]] * 3 and maxvals[0].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(coords[1, 2], [5, 4])  # a lone pixel: the blurred log-map is symmetric
