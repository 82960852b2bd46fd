"""Keypoint corruptions: per-sample seeding, what each corruption does (checked against its definition), and
severity ordering."""

from __future__ import annotations

import numpy as np
import pytest

from robustpose.lift.corruptions import CORRUPTIONS, LEFT, RIGHT, corrupt_keypoints, person_size


def _poses(n: int = 50) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-0.3, 0.3, (n, 16, 2))


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_seeded_per_sample(name) -> None:
    x = _poses()
    full = corrupt_keypoints(x, name, 3, seed=7)
    part = corrupt_keypoints(x[[9, 3]], name, 3, seed=7, index=np.array([9, 3]))
    np.testing.assert_array_equal(part, full[[9, 3]])  # independent of batch composition and order
    assert not np.array_equal(corrupt_keypoints(x, name, 3, seed=8), full)
    assert not np.array_equal(x, full)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_orders_the_damage(name) -> None:
    x = _poses(400)
    damage = [np.linalg.norm(corrupt_keypoints(x, name, s) - x, axis=-1).mean() for s in range(1, 6)]
    assert damage == sorted(damage) and damage[0] > 0


def test_jitter_std_is_relative_to_person_size() -> None:
    x = _poses(2000)
    sizes = np.array([person_size(p) for p in x])
    noise = (corrupt_keypoints(x, "jitter", 5) - x) / sizes[:, None, None]
    assert noise.std() == pytest.approx(0.10, rel=0.03)


def test_swap_exchanges_whole_pairs_only() -> None:
    x = _poses(200)
    y = corrupt_keypoints(x, "swap", 5)
    center = [j for j in range(16) if j not in LEFT + RIGHT]
    np.testing.assert_array_equal(y[:, center], x[:, center])
    for left, right in zip(LEFT, RIGHT):
        same = np.all(y[:, [left, right]] == x[:, [left, right]], axis=(1, 2))
        swapped = np.all(y[:, [left, right]] == x[:, [right, left]], axis=(1, 2))
        assert np.all(same | swapped) and 0.35 < swapped.mean() < 0.65  # p = 0.5


def test_dropout_moves_lost_joints_onto_the_hip() -> None:
    x = _poses(300)
    y = corrupt_keypoints(x, "dropout", 5)
    moved = np.any(y != x, axis=-1)
    assert not moved[:, 0].any()
    np.testing.assert_array_equal(y[moved], np.repeat(x[:, :1], 16, axis=1)[moved])
    assert moved[:, 1:].mean() == pytest.approx(0.4, abs=0.04)


def test_shift_scale_is_a_similarity() -> None:
    x = _poses(20)
    y = corrupt_keypoints(x, "shift-scale", 4)
    for a, b in zip(x, y):
        d_a, d_b = np.linalg.norm(a[:, None] - a[None], axis=-1), np.linalg.norm(b[:, None] - b[None], axis=-1)
        factor = d_b[d_a > 0] / d_a[d_a > 0]
        np.testing.assert_allclose(factor, factor[0])
        assert factor[0] == pytest.approx(np.exp(0.2)) or factor[0] == pytest.approx(np.exp(-0.2))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown keypoint corruption"):
        corrupt_keypoints(_poses(), "fog", 1)
    with pytest.raises(ValueError, match="severity must be 1-5"):
        corrupt_keypoints(_poses(), "jitter", 6)
