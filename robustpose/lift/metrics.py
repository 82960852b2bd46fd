"""3D pose metrics: MPJPE, PA-MPJPE (Procrustes alignment with scale), 3D-PCK and its AUC, and the robustness
summary of an error metric (mPC and rPC where lower errors are better).

All functions take ``(N, J, 3)`` arrays in one unit (robustpose reports millimetres) and return values in that unit;
none of them moves the root: pass root-relative poses for the usual Human3.6M protocol #1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in np.linspace(0, 150, 31))  # 0, 5, ..., 150 mm (3DHP's evaluation)


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must be (N, J, 3) arrays of one shape, got {pred.shape} and {gt.shape}")
    return pred, gt


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N, J)`` Euclidean distance of each joint."""
    pred, gt = _check(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error: the mean Euclidean joint distance over all samples and joints."""
    return float(joint_errors(pred, gt).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` mapped onto ``gt`` by the similarity transform (rotation, uniform scale, translation) that minimises
    the squared joint distances, per sample (Umeyama's closed form; reflections excluded)."""
    pred, gt = _check(pred, gt)
    mu_p, mu_g = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    u, s, vt = np.linalg.svd(np.einsum("nji,njk->nik", p, g))  # H = P^T G, (N, 3, 3)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]  # flip the smallest singular direction when the best rotation would reflect
    r = np.einsum("nij,njk->nik", u, vt)  # p @ r ~ g
    var = (p ** 2).sum(axis=(1, 2))
    scale = s.sum(axis=1) / np.where(var > 0, var, 1.0)
    return scale[:, None, None] * np.einsum("nji,nik->njk", p, r) + mu_g


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after :func:`procrustes_align` (protocol #2)."""
    return mpjpe(procrustes_align(pred, gt), gt)


def pck3d(pred: np.ndarray, gt: np.ndarray, threshold: float = PCK_THRESHOLD_MM) -> float:
    """Percentage of joints within ``threshold`` (same unit as the poses), in percent."""
    return float(100.0 * (joint_errors(pred, gt) <= threshold).mean())


def auc3d(pred: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] = AUC_THRESHOLDS_MM) -> float:
    """Mean of :func:`pck3d` over ``thresholds`` (default 0-150 mm in 5 mm steps), in percent."""
    err = joint_errors(pred, gt)
    return float(np.mean([100.0 * (err <= t).mean() for t in thresholds]))


def pose_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """MPJPE, PA-MPJPE, PCK@150 and AUC of millimetre poses."""
    return {"MPJPE": mpjpe(pred, gt), "PA-MPJPE": pa_mpjpe(pred, gt), "PCK": pck3d(pred, gt),
            "AUC": auc3d(pred, gt)}


def per_joint(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """``(J,)`` MPJPE and PA-MPJPE of each joint."""
    return {"MPJPE": joint_errors(pred, gt).mean(axis=0),
            "PA-MPJPE": joint_errors(procrustes_align(pred, gt), gt).mean(axis=0)}


@dataclass(frozen=True)
class ErrorRobustness:
    """mPC and rPC of an error metric (lower is better).

    ``mpc`` is the mean error over the corruption cells; ``rpc = 100 * clean / mpc`` (percent), so that, as for
    accuracy metrics, 100 means the corruptions cost nothing and smaller values mean a less robust model.
    """

    metric: str
    clean: float
    mpc: float
    rpc: float
    per_corruption: dict[str, float] = field(default_factory=dict)
    per_severity: dict[int, float] = field(default_factory=dict)


def error_robustness(clean: float, cells: Mapping[tuple[str, int], float], metric: str = "MPJPE"
                     ) -> ErrorRobustness:
    """Aggregate ``(corruption, severity) -> error`` cells; raises ``ValueError`` when there are none."""
    if not cells:
        raise ValueError("no corruption cell to aggregate")
    values = {k: float(v) for k, v in cells.items()}
    mpc = float(np.mean(list(values.values())))
    names = sorted({c for c, _ in values})
    severities = sorted({s for _, s in values})
    return ErrorRobustness(
        metric, float(clean), mpc, 100.0 * float(clean) / mpc if mpc > 0 else float("nan"),
        {c: float(np.mean([v for (cc, _), v in values.items() if cc == c])) for c in names},
        {s: float(np.mean([v for (_, ss), v in values.items() if ss == s])) for s in severities})
