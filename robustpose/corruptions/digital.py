"""Digital corruptions: contrast, elastic, pixelate, JPEG (benchmark) and saturate (extra)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .color import adjust_hsv
from .pointwise import contrast_lut
from .warp import elastic_warp, gaussian_filter_2d


def contrast(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Scale each channel about its mean by .4 .3 .2 .1 .05 for severity 1..5 (deterministic).

    ``image``: (H, W, 3) uint8 RGB; returns the same shape and dtype.
    """
    c = [0.4, 0.3, 0.2, 0.1, 0.05][severity - 1]
    return contrast_lut(image, c)


def elastic_transform(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Warp by a smoothed random displacement field (alpha = 250 x .05 .065 .085 .1 .12, sigma = 0.01 (H, W)).

    As in imagecorruptions 1.1.2 (and unlike ImageNet-C) there is no affine part: pixels move by a few pixels.
    The Gaussian smoothing and the bilinear resampling run in :mod:`~robustpose.corruptions.warp`, bit-identical
    with the reference's ``scipy.ndimage.gaussian_filter`` and ``map_coordinates(order=1, mode='reflect')``.
    ``image``: (H, W, 3) uint8 RGB; returns the same shape and dtype.
    """
    h, w = image.shape[:2]
    sigma = (h * 0.01, w * 0.01)
    alpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12][severity - 1]
    max_d = h * 0.005
    fx = gaussian_filter_2d(rng.uniform(-max_d, max_d, size=(h, w)), sigma, truncate=3)
    fy = gaussian_filter_2d(rng.uniform(-max_d, max_d, size=(h, w)), sigma, truncate=3)
    return elastic_warp(image, fy, fx, alpha)


def pixelate(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Box-downsample by .6 .5 .4 .3 .25 and nearest-upsample back (deterministic).

    Sides are kept at least 1 pixel (the reference refuses images under 32 pixels).
    ``image``: (H, W, 3) uint8 RGB; returns the same shape and dtype.
    """
    c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
    # OpenCV's INTER_NEAREST_EXACT picks the same source pixels as Pillow's NEAREST (pixel centres) and writes a
    # NumPy array directly, saving Pillow's full-size export (the fidelity tests hold it bit-identical)
    return cv2.resize(np.asarray(small), (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


def jpeg_compression(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """JPEG round trip at quality 25 18 15 10 7 for severity 1..5 (deterministic).

    The reference saves and reopens with Pillow. OpenCV's encoder is the same libjpeg-turbo with the same settings
    (baseline, 4:2:0, islow DCT, standard tables) and writes the same bytes; its decoder gives the same pixels
    without Pillow's chunked decode and array copy (1.2-1.5x the reference in ``benchmarks/corruptions.py``). The
    fidelity tests hold it to the reference bit for bit.
    ``image``: (H, W, 3) uint8 RGB; returns the same shape and dtype.
    """
    c = [25, 18, 15, 10, 7][severity - 1]
    # cvtColor, not a reversed view: OpenCV copies a negative-stride array slowly (2.7 ms vs 0.04 ms at 640x427)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, c])
    if not ok:
        raise RuntimeError(f"OpenCV could not JPEG-encode a {image.shape} image")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR_RGB)


def saturate(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """HSV saturation S * a + b with (a, b) = (.3,0) (.1,0) (2,0) (5,.1) (20,.2) for severity 1..5.

    Deterministic; computed per pixel by :func:`~robustpose.corruptions.color.adjust_hsv`, bit-identical with
    the reference's scikit-image ``rgb2hsv``/``hsv2rgb`` round trip.
    ``image``: (H, W, 3) uint8 RGB; returns the same shape and dtype.
    """
    a, b = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][severity - 1]
    return adjust_hsv(image, s_scale=a, s_shift=b)
