"""Peng et al.'s agent targets: hardness targets for pre-training, the reward/penalty rule of joint training, the KL
loss, and the per-person scores that say how hard a crop was.

All target functions work on NumPy ``float64`` distributions ``(K,)`` or batches ``(B, K)`` summing to 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from robustpose.datasets.keypoints import KeypointSet
from robustpose.inference.decode import decode_heatmaps
from robustpose.metrics.coco import COCO_SIGMAS

REWARD, PENALTY = 0.2, 0.5  # the code's: +20 % of the sampled bin's mass when harder, -50 % otherwise
MPII_NECK, MPII_HEAD_TOP = 8, 9


def project(p: np.ndarray, cap: float, passes: int | None = None) -> np.ndarray:
    """The code's projection of a moved distribution ``p`` ``(K,)``: cap every bin at ``cap``, floor at 0, spread
    the excess evenly over the bins below the cap (a deficit over the bins above 0), clamp at 0, renormalise.

    The code makes one pass; a pass can push a bin just under the cap over it, so this repeats the pass until every
    bin lies in ``[0, cap]`` (at most ``K`` passes; the same result whenever one pass is enough).
    """
    p = np.asarray(p, np.float64).copy()
    for _ in range(passes or len(p)):
        excess = np.clip(p - cap, 0, None).sum()
        p = np.minimum(p, cap)
        below = p < cap
        if excess > 0 and below.any():
            p[below] += excess / below.sum()
        deficit = np.clip(-p, 0, None).sum()
        p = np.maximum(p, 0)
        above = p > 0
        if deficit > 0 and above.any():
            p[above] -= deficit / above.sum()
        p = np.clip(p, 0, None)
        p /= p.sum()
        if p.max() <= cap * (1 + 1e-12) and p.min() >= 0:
            break
    return p


def move_target(p: np.ndarray, chosen: list[int] | int, harder: bool, cap_factor: float = 2.0) -> np.ndarray:
    """The reward/penalty target for one sample: ``p`` ``(K,)`` the agent's prediction, ``chosen`` the sampled
    bin (or cells), ``harder`` whether the agent's augmentation was strictly harder than the random one.

    Reward: every chosen bin ``j`` gains ``0.2 p_j``; penalty (ties included): it loses ``0.5 p_j``; the other bins
    share the opposite change evenly. Then :func:`project` with the cap ``cap_factor / K``. With one chosen bin this
    is the code's rule; for K = 7 and a uniform ``p`` the chosen bin becomes 0.1714 (reward) or 0.0714 (penalty).
    """
    p = np.asarray(p, np.float64)
    k = len(p)
    idx = np.atleast_1d(np.asarray(chosen, int))
    rate = REWARD if harder else -PENALTY
    delta = rate * p[idx]
    out = p.copy()
    others = np.ones(k, bool)
    others[idx] = False
    out[idx] += delta
    if others.any():
        out[others] -= delta.sum() / others.sum()
    return project(out, cap_factor / k)


def hardness_targets(scores: np.ndarray) -> np.ndarray:
    """Pre-training targets from per-bin scores ``(B, K)`` in [0, 1] (the code's ``1 - PCKh``): ``1 - score``
    normalised over the bins, uniform for a row whose ``1 - score`` is 0 everywhere."""
    hard = 1.0 - np.asarray(scores, np.float64)
    hard = np.clip(hard, 0, None)
    total = hard.sum(axis=1, keepdims=True)
    uniform = np.full_like(hard, 1.0 / hard.shape[1])
    return np.where(total > 0, hard / np.where(total > 0, total, 1), uniform)


def joint_votes(joints: np.ndarray, visible: np.ndarray, heatmap_size: tuple[int, int], grid: tuple[int, int]
                ) -> np.ndarray:
    """The paper's AHO pre-training target: each visible joint votes for the grid cell it lies in, counts
    normalised (uniform when no joint is visible).

    Parameters
    ----------
    joints : (B, J, 2) float, heatmap pixels (x, y)
    visible : (B, J) bool
    heatmap_size, grid : (height, width)

    Returns
    -------
    (B, gh * gw) float64, rows summing to 1 (cells row-major).
    """
    (h, w), (gh, gw) = heatmap_size, grid
    col = np.clip(np.floor(joints[..., 0] * gw / w), 0, gw - 1).astype(int)
    row = np.clip(np.floor(joints[..., 1] * gh / h), 0, gh - 1).astype(int)
    inside = visible & (joints[..., 0] >= 0) & (joints[..., 0] < w) & (joints[..., 1] >= 0) & (joints[..., 1] < h)
    counts = np.zeros((len(joints), gh * gw))
    for b in range(len(joints)):
        np.add.at(counts[b], (row[b] * gw + col[b])[inside[b]], 1.0)
    total = counts.sum(axis=1, keepdims=True)
    return np.where(total > 0, counts / np.where(total > 0, total, 1), 1.0 / (gh * gw))


def kl_loss(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``KL(target || softmax(logits))`` per sample, averaged over the batch (``0 log 0 = 0``).

    ``target`` and ``logits`` are ``(B, K)``; the target carries no gradient.
    """
    target = target.detach().to(logits.dtype)
    log_q = F.log_softmax(logits, dim=1)
    log_t = torch.where(target > 0, target.clamp_min(1e-30).log(), torch.zeros_like(target))
    return (target * (log_t - log_q)).sum(dim=1).mean()


def person_scores(pred: np.ndarray, target: np.ndarray, weight: np.ndarray, kset: KeypointSet, areas: np.ndarray,
                  decode: str = "dark", sigma: float = 2.0) -> np.ndarray:
    """How well each person of a batch of crops is predicted, in [0, 1]: per-person OKS on COCO-format keypoints,
    PCKh@0.5 on MPII.

    The reference positions are the target heatmaps decoded by the same decoder as the predictions (the annotated
    joints to the decoder's precision), so no other geometry is needed.

    Parameters
    ----------
    pred, target : (B, J, h, w) float heatmaps
    weight : (B, J) float, 1 for the joints that count
    areas : (B,) float, the person's box area in heatmap pixels squared (OKS scale)

    Returns
    -------
    (B,) float64; a person without a counted joint scores 1 (nothing to get wrong).
    """
    xy, _ = decode_heatmaps(np.asarray(pred, np.float32), decode, sigma)
    gt, _ = decode_heatmaps(np.asarray(target, np.float32), decode, sigma)
    d2 = ((xy - gt) ** 2).sum(axis=-1)
    w = np.asarray(weight) > 0
    if kset.name == "mpii":
        head = np.linalg.norm(gt[:, MPII_NECK] - gt[:, MPII_HEAD_TOP], axis=-1)
        has_head = w[:, MPII_NECK] & w[:, MPII_HEAD_TOP]
        # without both head joints: a sixth of the box's side (square root of its area) stands in for the head
        head = np.where(has_head, head, np.sqrt(areas) / 6)
        hit = (np.sqrt(d2) <= 0.5 * np.maximum(head, 1e-6)[:, None]).astype(np.float64)
    else:
        k2 = (2 * COCO_SIGMAS[None, : d2.shape[1]]) ** 2
        hit = np.exp(-d2 / (2 * np.maximum(areas, 1e-6)[:, None] * k2))
    counted = w.sum(axis=1)
    return np.where(counted > 0, (hit * w).sum(axis=1) / np.maximum(counted, 1), 1.0)
