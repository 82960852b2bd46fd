"""Keypoint corruptions for lifters: the 2D-input counterpart of the image -C sets.

Five corruptions x five severities, applied to the lifter's 2D input. Magnitudes are relative to the person's size
``s`` (the longer side of the keypoints' bounding box), so they mean the same at any image resolution:

| name | what | severities 1..5 |
|---|---|---|
| ``jitter`` | Gaussian noise on every joint, std ``sigma * s`` | sigma 0.02, 0.04, 0.06, 0.08, 0.10 |
| ``dropout`` | each non-root joint lost with probability p and placed on the hip (a lifter has no visibility input) | p 0.05, 0.1, 0.2, 0.3, 0.4 |
| ``swap`` | each left/right joint pair exchanged with probability p | p 0.1, 0.2, 0.3, 0.4, 0.5 |
| ``detector`` | a detector-like error model: small jitter everywhere, and per joint with probability q a gross error, half of them an inversion (the joint lands on its left/right counterpart, a centre joint on a random other joint) and half a miss (moved 0.1-0.5 s in a random direction) | jitter 0.005-0.025 s, q 0.03, 0.06, 0.1, 0.15, 0.2 |
| ``shift-scale`` | the whole pose scaled about its hip by ``exp(+-a)`` and shifted by ``b * s`` in a random direction | a 0.05, 0.1, 0.15, 0.2, 0.3; b 0.05, 0.1, 0.2, 0.3, 0.4 |

Sample ``i`` of a cell draws from ``default_rng([seed, corruption key, severity, i])`` (the key is the CRC-32 of the
name): a sample's corruption does not depend on the batch, the order or the other samples.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from .skeleton import FLIP, LEFT, NUM_JOINTS, RIGHT

SEVERITIES = (1, 2, 3, 4, 5)
PARAMS = {
    "jitter": {"sigma": (0.02, 0.04, 0.06, 0.08, 0.10)},
    "dropout": {"p": (0.05, 0.1, 0.2, 0.3, 0.4)},
    "swap": {"p": (0.1, 0.2, 0.3, 0.4, 0.5)},
    "detector": {"sigma": (0.005, 0.01, 0.015, 0.02, 0.025), "q": (0.03, 0.06, 0.1, 0.15, 0.2)},
    "shift-scale": {"a": (0.05, 0.1, 0.15, 0.2, 0.3), "b": (0.05, 0.1, 0.2, 0.3, 0.4)},
}
CORRUPTIONS = tuple(PARAMS)


def person_size(pose: np.ndarray) -> float:
    """Longer side of the bounding box of ``(J, 2)`` keypoints."""
    return float((pose.max(axis=0) - pose.min(axis=0)).max())


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([np.cos(a), np.sin(a)], axis=-1)


def _jitter(x: np.ndarray, rng: np.random.Generator, s: float, sigma: float) -> np.ndarray:
    return x + rng.normal(0, sigma * s, x.shape)


def _dropout(x: np.ndarray, rng: np.random.Generator, s: float, p: float) -> np.ndarray:
    lost = rng.random(NUM_JOINTS) < p
    lost[0] = False
    out = x.copy()
    out[lost] = x[0]
    return out


def _swap(x: np.ndarray, rng: np.random.Generator, s: float, p: float) -> np.ndarray:
    out = x.copy()
    for left, right, hit in zip(LEFT, RIGHT, rng.random(len(LEFT)) < p):
        if hit:
            out[[left, right]] = x[[right, left]]
    return out


def _detector(x: np.ndarray, rng: np.random.Generator, s: float, sigma: float, q: float) -> np.ndarray:
    out = x + rng.normal(0, sigma * s, x.shape)
    gross, inversion = rng.random(NUM_JOINTS) < q, rng.random(NUM_JOINTS) < 0.5
    other = rng.integers(0, NUM_JOINTS - 1, NUM_JOINTS)
    radius, direction = rng.uniform(0.1, 0.5, NUM_JOINTS) * s, _unit(rng, NUM_JOINTS)
    for j in np.flatnonzero(gross):
        if inversion[j]:
            out[j] = x[FLIP[j] if FLIP[j] != j else other[j] + (other[j] >= j)]
        else:
            out[j] = out[j] + radius[j] * direction[j]
    return out


def _shift_scale(x: np.ndarray, rng: np.random.Generator, s: float, a: float, b: float) -> np.ndarray:
    factor = np.exp(a if rng.random() < 0.5 else -a)
    return (x - x[0]) * factor + x[0] + b * s * _unit(rng, 1)[0]


FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "jitter": _jitter, "dropout": _dropout, "swap": _swap, "detector": _detector, "shift-scale": _shift_scale}


def corruption_key(name: str) -> int:
    """Stable integer key of a corruption name (CRC-32), part of each sample's seed."""
    return zlib.crc32(name.encode())


def corrupt_keypoints(pose2d: np.ndarray, name: str, severity: int, seed: int = 0,
                      index: np.ndarray | None = None) -> np.ndarray:
    """Corrupt ``(N, 16, 2)`` keypoints (any unit) with ``name`` at ``severity`` 1-5.

    ``index`` (default ``arange(N)``) are the samples' ids in their split: sample ``index[i]`` draws from
    ``default_rng([seed, corruption_key(name), severity, index[i]])``. Returns a new float array.
    """
    if name not in FUNCTIONS:
        raise ValueError(f"unknown keypoint corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1-5, got {severity}")
    pose2d = np.asarray(pose2d, np.float64)
    index = np.arange(len(pose2d)) if index is None else np.asarray(index)
    params = {k: v[severity - 1] for k, v in PARAMS[name].items()}
    key = corruption_key(name)
    out = np.empty_like(pose2d)
    for i, (x, idx) in enumerate(zip(pose2d, index)):
        rng = np.random.default_rng([seed, key, severity, int(idx)])
        out[i] = FUNCTIONS[name](x, rng, person_size(x), **params)
    return out
