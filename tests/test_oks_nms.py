"""OKS-NMS and top-down rescoring against OKS values worked out by hand, on both sides of the thresholds.

HRNet ``lib/nms/nms.py`` (``oks_iou``): ``OKS = mean_k exp(-d_k^2 / (2 (2 sigma_k)^2 ((a_i + a_j) / 2)))`` over all
keypoints, and a person is suppressed when its OKS with a kept one is strictly above the threshold (0.9).
With custom sigmas every OKS below is a closed form; ``d2_for`` inverts it to put a pair just above or just below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustpose.metrics.coco import COCO_SIGMAS
from robustpose.metrics.postprocess import oks_nms, rescore_topdown, topdown_postprocess

PYCOCOTOOLS_SIGMAS = [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]


def d2_for(oks: float, sigma: float, mean_area: float) -> float:
    """Squared distance at which one keypoint's OKS term equals ``oks``: ``-ln(oks) * 2 (2 sigma)^2 mean_area``."""
    return -math.log(oks) * 2 * (2 * sigma) ** 2 * mean_area


def people(offsets: list[float], k: int = 2) -> np.ndarray:
    """(N, k, 3) people whose keypoints all sit at x = offset (y = 0), scores in the third column."""
    out = np.zeros((len(offsets), k, 3))
    out[:, :, 0] = np.asarray(offsets)[:, None]
    out[:, :, 2] = 0.7
    return out


def test_sigmas_are_pycocotools():
    np.testing.assert_allclose(COCO_SIGMAS, np.array(PYCOCOTOOLS_SIGMAS) / 10, rtol=0, atol=0)


@pytest.mark.parametrize(("oks", "kept"), [(0.9 * (1 + 1e-6), [0]), (0.9 * (1 - 1e-6), [0, 1])])
def test_suppression_switches_exactly_at_the_threshold(oks, kept):
    sigma, area = 0.1, 100.0
    d = math.sqrt(d2_for(oks, sigma, area))
    keep = oks_nms(people([0.0, d]), np.array([0.9, 0.8]), np.full(2, area), 0.9, np.full(2, sigma))
    assert keep.tolist() == kept


def test_an_oks_equal_to_the_threshold_is_not_suppressed():
    # HRNet keeps ``ovr <= thresh``: exact duplicates have OKS exactly 1, so a threshold of 1 suppresses nobody
    dup = people([3.0, 3.0, 3.0], k=17)
    assert oks_nms(dup, np.array([0.2, 0.9, 0.5]), np.full(3, 50.0), 1.0).tolist() == [1, 2, 0]
    assert oks_nms(dup, np.array([0.2, 0.9, 0.5]), np.full(3, 50.0), 0.999999).tolist() == [1]


def test_default_threshold_is_0_9_and_default_sigmas_are_cocos():
    area = 5000.0
    # all 17 keypoints moved by the same d: OKS = mean_k exp(-d^2 / (8 sigma_k^2 area))
    def oks_at(d):
        return float(np.mean(np.exp(-d**2 / (8 * (np.array(PYCOCOTOOLS_SIGMAS) / 10) ** 2 * area))))
    lo, hi = 0.0, 50.0
    for _ in range(80):  # bisection for OKS = 0.9
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if oks_at(mid) > 0.9 else (lo, mid)
    a, b = np.zeros((17, 2)), np.zeros((17, 2))
    b[:, 0] = lo * 0.999  # OKS just above 0.9: suppressed
    assert oks_nms(np.stack([a, b]), np.array([1.0, 0.5]), np.full(2, area)).tolist() == [0]
    b[:, 0] = hi * 1.001  # just below: kept
    assert oks_nms(np.stack([a, b]), np.array([1.0, 0.5]), np.full(2, area)).tolist() == [0, 1]


def test_oks_is_the_mean_over_keypoints():
    # keypoint 0 coincides (term 1), keypoint 1 gives term 0.7: OKS = 0.85 (min would be 0.7, max 1)
    sigma, area = 0.1, 100.0
    a = np.zeros((1, 2, 2))
    b = a.copy()
    b[0, 1, 0] = math.sqrt(d2_for(0.7, sigma, area))
    pair = np.concatenate([a, b])
    scores, areas, sigmas = np.array([0.9, 0.8]), np.full(2, area), np.full(2, sigma)
    assert oks_nms(pair, scores, areas, 0.86, sigmas).tolist() == [0, 1]
    assert oks_nms(pair, scores, areas, 0.84, sigmas).tolist() == [0]
    # per-keypoint sigmas: the same displacement on a keypoint with twice the sigma gives exp(ln(0.7) / 4)
    sig2 = np.array([0.1, 0.2])
    oks = (1 + 0.7 ** 0.25) / 2
    assert oks_nms(pair, scores, areas, oks + 1e-6, sig2).tolist() == [0, 1]
    assert oks_nms(pair, scores, areas, oks - 1e-6, sig2).tolist() == [0]


def test_the_scale_is_the_mean_of_the_two_areas():
    # areas 100 and 300: the mean 200 puts OKS at 0.9 exactly for this d; either area alone would not
    sigma = 0.1
    d = math.sqrt(d2_for(0.9, sigma, 200.0))
    for eps, kept in ((1.001, [0]), (0.999, [0, 1])):
        pts = people([0.0, d / math.sqrt(eps)])  # eps > 1: closer, OKS above 0.9
        for order in ([100.0, 300.0], [300.0, 100.0]):
            assert oks_nms(pts, np.array([0.9, 0.8]), np.array(order), 0.9, np.full(2, sigma)).tolist() == kept
    # with 0.9 / 1.001 the OKS under area 100 alone is ~0.81 and under 300 ~0.93: both rules would differ somewhere
    assert math.exp(-d**2 / (8 * sigma**2 * 100)) < 0.85 < 0.9 < math.exp(-d**2 / (8 * sigma**2 * 300))


def test_greedy_order_best_score_first_and_suppressed_people_suppress_nobody():
    # A (best) overlaps B; B overlaps C; A and C are far apart: keep A and C, in score order
    sigma, area = 0.1, 100.0
    step = math.sqrt(d2_for(0.95, sigma, area))  # OKS 0.95 between neighbours, ~0.81 two steps apart
    pts = people([0.0, step, 2 * step])
    keep = oks_nms(pts, np.array([0.9, 0.95, 0.3]), np.full(3, area), 0.9, np.full(2, sigma))
    assert keep.tolist() == [1]  # B has the best score and suppresses both neighbours
    keep = oks_nms(pts, np.array([0.95, 0.9, 0.3]), np.full(3, area), 0.9, np.full(2, sigma))
    assert keep.tolist() == [0, 2]  # A first; B goes; C survives (OKS(A, C) ~ 0.81) although B would suppress it
    keep = oks_nms(pts[::-1], np.array([0.3, 0.9, 0.95]), np.full(3, area), 0.9, np.full(2, sigma))
    assert keep.tolist() == [2, 0]  # indices refer to the input order, best score first
    assert keep.dtype == np.int64


def test_scores_column_and_y_distance_count():
    sigma, area = 0.1, 100.0
    d = math.sqrt(d2_for(0.8, sigma, area))
    a = np.zeros((2, 3))
    b = np.zeros((2, 3))
    b[:, 1] = d  # displaced along y
    b[:, 2] = 99.0  # keypoint scores never enter OKS
    keep = oks_nms(np.stack([a, b]), np.array([0.5, 0.6]), np.full(2, area), 0.79, np.full(2, sigma))
    assert keep.tolist() == [1]
    keep = oks_nms(np.stack([a, b]), np.array([0.5, 0.6]), np.full(2, area), 0.81, np.full(2, sigma))
    assert keep.tolist() == [1, 0]
    assert oks_nms(np.zeros((0, 2, 2)), np.zeros(0), np.zeros(0), 0.9, np.full(2, sigma)).tolist() == []


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="need keypoints"):
        oks_nms(np.zeros((2, 5, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="need keypoints"):
        oks_nms(np.zeros((2, 17, 2)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="need keypoints"):
        oks_nms(np.zeros((2, 17, 2)), np.zeros(2), np.zeros(1))


def test_rescoring_threshold_is_strict_and_the_mean_is_over_passing_keypoints():
    kp = np.array([[0.2, 0.6, 0.9, 0.1], [0.2, 0.2, 0.0, 0.19], [0.21, 1.0, 0.2, 0.2]])
    scores = rescore_topdown(kp, np.array([0.5, 1.0, 2.0]))
    # row 0: (0.6 + 0.9) / 2 * 0.5; row 1: nothing above 0.2 -> 0; row 2: (0.21 + 1.0) / 2 * 2
    np.testing.assert_allclose(scores, [0.375, 0.0, 1.21])
    # threshold 0: row 1's 0.0 still does not pass (strictly above)
    np.testing.assert_allclose(rescore_topdown(kp, np.ones(3), threshold=0.0), [0.45, 0.59 / 3, 1.61 / 4])
    np.testing.assert_allclose(rescore_topdown(kp[:, :1], np.ones(3), threshold=0.205), [0, 0, 0.21])
    with pytest.raises(ValueError, match="keypoint_scores must be"):
        rescore_topdown(kp, np.ones(2))
    with pytest.raises(ValueError, match="keypoint_scores must be"):
        rescore_topdown(kp[0], np.ones(4))


def test_postprocess_rescores_then_suppresses_per_image():
    sigma_kw = {"sigmas": np.full(2, 0.1)}
    d_close = math.sqrt(d2_for(0.95, 0.1, 100.0))

    def person(image_id, x, kp_scores, box_score, **extra):
        flat = [v for s in kp_scores for v in (x, 0.0, s)]
        return {"image_id": image_id, "keypoints": flat, "box_score": box_score, "area": 100.0, **extra}

    raw = [
        person(7, 0.0, [0.9, 0.1], 1.0),               # score 0.9 (only the first keypoint passes 0.2)
        person(7, d_close, [0.5, 0.5], 1.0),           # score 0.5, OKS 0.95 with the first: suppressed
        person(3, 0.0, [0.3, 0.5], 0.5, category_id=2),  # another image: never compared with image 7
    ]
    out = topdown_postprocess(raw, **sigma_kw)
    assert [(r["image_id"], r["category_id"]) for r in out] == [(7, 1), (3, 2)]
    assert [r["score"] for r in out] == pytest.approx([0.9, 0.2])
    assert out[0]["keypoints"] == raw[0]["keypoints"]
    # a higher box score flips which one of the pair survives (rescoring happens before NMS)
    raw[1]["box_score"] = 2.0
    out = topdown_postprocess(raw, **sigma_kw)
    assert [r["score"] for r in out] == pytest.approx([1.0, 0.2])
    assert out[0]["keypoints"][0] == pytest.approx(d_close)
    # no NMS: everybody, in input order per image; a keypoint threshold of 0 averages all scores
    out = topdown_postprocess(raw, keypoint_threshold=0.0, nms_threshold=None, **sigma_kw)
    assert [r["score"] for r in out] == pytest.approx([0.5, 1.0, 0.2])
    # a looser NMS threshold keeps the pair
    assert len(topdown_postprocess(raw, nms_threshold=0.96, **sigma_kw)) == 3
