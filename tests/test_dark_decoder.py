"""DARK on anisotropic, rotated peaks, against the analytic maximum.

For a heatmap ``h(p) = exp(-(p - mu)^T S^-1 (p - mu) / 2)`` the log-map is exactly quadratic, so one Newton step
``-H^-1 g`` from any integer pixel lands on ``mu`` -- and central differences (gradient from +-1, Hessian diagonal
from +-2, cross term from the four diagonal neighbours) are exact on a quadratic. With ``sigma=0`` the modulation
is the identity and the decoder must return ``mu`` to float32 precision; the covariances below have a cross term,
so the off-diagonal Hessian entry and its sign matter. With a blur (``sigma > 0``) the blurred continuous Gaussian
has covariance ``S + sigma^2 I`` and the same mean, so the answer is still ``mu`` up to sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest

from robustpose.inference.decode import argmax_refined, dark_refined, decode_heatmaps


def rotated_cov(angle_deg: float, major: float, minor: float) -> np.ndarray:
    """Covariance with standard deviations ``major`` / ``minor`` along axes rotated by ``angle_deg``."""
    t = np.deg2rad(angle_deg)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return r @ np.diag([major**2, minor**2]) @ r.T


def gaussian_map(mu: np.ndarray, cov: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``exp(-d^T cov^-1 d / 2)`` sampled on the (H, W) pixel grid, ``d = (x, y) - mu``, float64."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.stack([xs - mu[0], ys - mu[1]], axis=-1)
    q = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    return np.exp(-0.5 * q)


# (mu (x, y), covariance): strong positive and negative correlations, rotated ellipses, an axis-aligned control
PEAKS = [
    (np.array([14.37, 11.71]), np.array([[4.0, 2.4], [2.4, 3.0]])),
    (np.array([9.62, 13.28]), np.array([[2.0, -1.2], [-1.2, 1.5]])),
    (np.array([20.45, 8.55]), rotated_cov(30, 2.5, 1.0)),
    (np.array([11.2, 14.9]), rotated_cov(-55, 2.0, 0.9)),
    (np.array([17.8, 10.3]), rotated_cov(100, 1.8, 1.1)),
    (np.array([12.5, 12.5]), np.diag([1.5, 3.0])),
]
SIZE = (24, 32)  # (H, W)


def _batch(peaks=PEAKS) -> tuple[np.ndarray, np.ndarray]:
    """All peaks as joints of one (2, J, H, W) batch, the second sample mirrored in order, and their (2, J, 2) mus."""
    maps = np.stack([gaussian_map(mu, cov, SIZE) for mu, cov in peaks]).astype(np.float32)
    mus = np.stack([mu for mu, _ in peaks])
    return np.stack([maps, maps[::-1]]), np.stack([mus, mus[::-1]])


def test_taylor_step_lands_on_the_analytic_maximum_of_rotated_peaks():
    hm, mus = _batch()
    coords, maxvals = dark_refined(hm, sigma=0.0)
    np.testing.assert_allclose(coords, mus, atol=1e-4)
    np.testing.assert_array_equal(maxvals, hm.max(axis=(2, 3)))


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_modulated_dark_keeps_the_mean_of_rotated_peaks(sigma):
    hm, mus = _batch()
    coords, maxvals = dark_refined(hm, sigma=sigma)
    np.testing.assert_allclose(coords, mus, atol=0.01)
    np.testing.assert_array_equal(maxvals, hm.max(axis=(2, 3)).astype(np.float64))  # unmodulated peaks
    np.testing.assert_allclose(decode_heatmaps(hm, "dark", sigma)[0], coords)
    # the quarter rule cannot get there: it is off by more than a tenth of a pixel somewhere
    assert np.abs(argmax_refined(hm)[0] - mus).max() > 0.1


def test_the_cross_term_is_what_moves_the_estimate_off_axis():
    # The same peak decoded as if it were axis-aligned (cross term dropped, by hand) misses mu by far more than DARK
    mu, cov = np.array([14.37, 11.71]), np.array([[4.0, 2.4], [2.4, 3.0]])
    x0, y0 = 15, 12  # the integer argmax (checked below): the correlation pulls it off the rounded mean
    hm = gaussian_map(mu, cov, SIZE)
    assert np.unravel_index(hm.argmax(), hm.shape) == (y0, x0)
    p = np.linalg.inv(cov)
    g = -p @ np.array([x0 - mu[0], y0 - mu[1]])
    diagonal_only = np.array([x0, y0]) - g / -np.diag(p)
    coords, _ = dark_refined(hm[None, None].astype(np.float32), sigma=0.0)
    assert np.abs(diagonal_only - mu).max() > 0.1
    np.testing.assert_allclose(coords[0, 0], mu, atol=1e-4)


@pytest.mark.parametrize(("x", "y", "refined"), [
    (2, 12, True), (29, 12, True), (16, 2, True), (16, 21, True),     # 1 < x < W - 2 and 1 < y < H - 2
    (1, 12, False), (30, 12, False), (16, 1, False), (16, 22, False),  # one pixel further out: integer peak
])
def test_taylor_step_is_taken_exactly_inside_the_margin(x, y, refined):
    mu = np.array([x + 0.3, y - 0.2])
    hm = gaussian_map(mu, rotated_cov(20, 1.6, 1.2), SIZE).astype(np.float32)[None, None]
    assert np.unravel_index(hm[0, 0].argmax(), SIZE) == (y, x)
    coords, _ = dark_refined(hm, sigma=0.0)
    np.testing.assert_allclose(coords[0, 0], mu if refined else [x, y], atol=1e-4)


def _patch(centre: tuple[int, int], values: dict[tuple[int, int], float]) -> np.ndarray:
    """A (1, 1, H, W) map of 0.01 with given values at offsets (dx, dy) from ``centre`` (x, y)."""
    hm = np.full(SIZE, 0.01, np.float32)
    for (dx, dy), v in values.items():
        hm[centre[1] + dy, centre[0] + dx] = v
    return hm[None, None]


def test_no_step_where_the_log_map_is_a_saddle():
    # Peak 1 with falling neighbours along both axes (hxx, hyy < 0) but a cross term so strong that the Hessian is
    # indefinite: hxy = (log .9 - log .1 - log .1 + log .9) / 4 = log 9 / 2 ~ 1.10, hxx = hyy = log .5 / 2 ~ -0.35
    values = {(0, 0): 1.0, (1, 0): 0.8, (-1, 0): 0.8, (0, 1): 0.8, (0, -1): 0.8, (2, 0): 0.5, (-2, 0): 0.5,
              (0, 2): 0.5, (0, -2): 0.5, (1, 1): 0.9, (-1, -1): 0.9, (1, -1): 0.1, (-1, 1): 0.1}
    coords, _ = dark_refined(_patch((10, 12), values), sigma=0.0)
    np.testing.assert_array_equal(coords[0, 0], [10, 12])
    # the same patch with a weak cross term is a maximum: the Newton step of the log-map, by hand, is taken
    values[(1, 0)] = 0.9
    values[(1, 1)], values[(-1, -1)], values[(1, -1)], values[(-1, 1)] = 0.6, 0.6, 0.5, 0.5
    f = {k: np.log(v) for k, v in values.items()}
    g = np.array([f[1, 0] - f[-1, 0], f[0, 1] - f[0, -1]]) / 2
    hxy = (f[1, 1] - f[1, -1] - f[-1, 1] + f[-1, -1]) / 4
    hess = np.array([[f[2, 0] - 2 * f[0, 0] + f[-2, 0], 0], [0, f[0, 2] - 2 * f[0, 0] + f[0, -2]]]) / 4
    hess[0, 1] = hess[1, 0] = hxy
    expected = np.array([10, 12]) - np.linalg.solve(hess, g)
    assert expected[0] > 10.1 and abs(expected[1] - 12) > 0.02  # moves in x, and the cross term moves y too
    coords, _ = dark_refined(_patch((10, 12), values), sigma=0.0)
    np.testing.assert_allclose(coords[0, 0], expected, atol=1e-5)


def test_no_step_along_a_flat_direction():
    h, w = SIZE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    ridge = np.exp(-0.5 * (xs - 10.3) ** 2).astype(np.float32)[None, None]  # det = 0
    coords, _ = dark_refined(ridge, sigma=0.0)
    assert coords[0, 0, 0] == 10 and coords[0, 0, 1] == 0  # argmax takes the first row; nothing moves


def test_no_step_at_a_minimum_of_the_modulated_map():
    # A one-pixel spike (the raw argmax) inside a bright ring: blurred, the spike fades below the ring, so the
    # log-map has a minimum there (hxx, hyy > 0, det > 0). A Newton step would jump to the minimum; DARK must not.
    h, w = SIZE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(xs - 10.4, ys - 12.3)
    hm = 0.9 * np.exp(-0.5 * (r - 5) ** 2)
    hm[12, 10] = 1.0
    coords, _ = dark_refined(hm.astype(np.float32)[None, None], sigma=2.0)
    np.testing.assert_array_equal(coords[0, 0], [10, 12])
