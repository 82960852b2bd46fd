"""3D metrics, computed outside the code under test: hand values, similarity transforms, an independent
Procrustes (scipy's orthogonal_procrustes + the closed-form scale), and the rPC direction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from robustpose.lift.metrics import auc3d, error_robustness, mpjpe, pa_mpjpe, pck3d


def test_mpjpe_by_hand() -> None:
    gt = np.zeros((2, 2, 3))
    pred = np.array([[[3, 4, 0], [0, 0, 1]], [[0, 0, 0], [1, 2, 2]]], float)  # distances 5, 1, 0, 3
    assert mpjpe(pred, gt) == pytest.approx(9 / 4)


def test_pa_mpjpe_of_a_similarity_transformed_gt_is_zero() -> None:
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(6, 16, 3))
    r = Rotation.random(6, random_state=2).as_matrix()
    pred = 0.7 * np.einsum("nij,nkj->nki", r, gt) + rng.normal(size=(6, 1, 3))
    assert mpjpe(pred, gt) > 0.5
    assert pa_mpjpe(pred, gt) < 1e-9


def test_pa_mpjpe_excludes_reflections() -> None:
    gt = np.random.default_rng(3).normal(size=(4, 16, 3))
    mirrored = gt * np.array([-1, 1, 1])
    assert pa_mpjpe(mirrored, gt) > 0.1


def _reference_pa(pred: np.ndarray, gt: np.ndarray) -> float:
    """Independent: scipy's orthogonal Procrustes for the rotation, then the least-squares scale."""
    errors = []
    for p, g in zip(pred, gt):
        p0, g0 = p - p.mean(0), g - g.mean(0)
        r, _ = orthogonal_procrustes(p0, g0)
        assert np.linalg.det(r) > 0  # these random poses need no reflection handling
        rotated = p0 @ r
        scale = (rotated * g0).sum() / (rotated * rotated).sum()
        errors.append(np.linalg.norm(scale * rotated - g0, axis=-1).mean())
    return float(np.mean(errors))


def test_pa_mpjpe_matches_an_independent_procrustes() -> None:
    rng = np.random.default_rng(4)
    gt = rng.normal(size=(20, 16, 3))
    pred = gt + 0.3 * rng.normal(size=gt.shape)
    assert pa_mpjpe(pred, gt) == pytest.approx(_reference_pa(pred, gt), rel=1e-9)
    assert pa_mpjpe(pred, gt) <= mpjpe(pred, gt)


def test_pck_and_auc_by_hand() -> None:
    gt = np.zeros((1, 4, 3))
    pred = np.array([[[10, 0, 0], [0, 100, 0], [0, 0, 150], [200, 0, 0]]], float)
    assert pck3d(pred, gt) == pytest.approx(75.0)  # 150 counts (<=)
    # thresholds 0, 50, 100, 150: fractions 0, 1/4, 2/4, 3/4
    assert auc3d(pred, gt, thresholds=(0, 50, 100, 150)) == pytest.approx(100 * (0 + 0.25 + 0.5 + 0.75) / 4)


def test_rpc_direction_for_errors() -> None:
    cells_mild = {("jitter", 1): 60.0, ("jitter", 2): 80.0}
    cells_bad = {("jitter", 1): 100.0, ("jitter", 2): 140.0}
    mild, bad = error_robustness(50.0, cells_mild), error_robustness(50.0, cells_bad)
    assert mild.mpc == pytest.approx(70.0) and mild.rpc == pytest.approx(100 * 50 / 70)
    assert bad.rpc < mild.rpc < 100  # more degradation, lower rPC
    assert error_robustness(50.0, {("jitter", 1): 50.0}).rpc == pytest.approx(100.0)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same shape|one shape"):
        mpjpe(np.zeros((2, 16, 3)), np.zeros((2, 17, 3)))
