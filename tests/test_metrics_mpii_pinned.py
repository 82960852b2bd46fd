"""MPII PCKh pinned by hand on a three-person file: the threshold boundary, joints seen once or never, the +1 of
prediction files, float64 arrays, and the messages for malformed inputs."""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest
from scipy.io import savemat

from robustpose.metrics import load_mpii_ground_truth, load_mpii_predictions, pckh_table
from robustpose.metrics.mpii import pckh_per_joint

# head box [0, 0, 30, 40]: diagonal 50, head size 0.6 * 50 = 30 px, so PCKh@0.5 accepts errors up to 15 px
HEADBOX = [0, 0, 30, 40]


def people() -> list[dict]:
    out = []
    for i in range(3):
        joints = [[100 + 10 * j + i, 50 + 5 * j] for j in range(16)]  # integers on purpose
        vis = [1] * 16
        out.append({"image": f"{i}.jpg", "joints": joints, "joints_vis": vis, "headbox": HEADBOX})
    out[0]["joints_vis"][9] = 0  # head top: seen by person 2 only
    out[1]["joints_vis"][9] = 0
    for p in out:
        p["joints_vis"][15] = 0  # l_wrist never visible
    out[1]["joints_vis"][14] = 0
    out[2]["joints_vis"][14] = 0  # l_elbow: person 0 only (seen exactly once)
    return out


@pytest.fixture()
def ann(tmp_path):
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(people()))
    return path


def test_ground_truth_arrays_are_float64_and_visibility_is_strict(ann):
    gt = load_mpii_ground_truth(ann)
    assert gt.joints.dtype == np.float64 and gt.headboxes.dtype == np.float64 and gt.visible.dtype == bool
    assert gt.joints.shape == (3, 16, 2) and gt.headboxes.shape == (3, 2, 2) and len(gt) == 3
    assert gt.visible.sum(axis=0).tolist() == [3] * 9 + [1] + [3] * 4 + [1, 0]
    assert gt.images == ("0.jpg", "1.jpg", "2.jpg")


def test_boundary_error_counts_and_rare_joints(ann):
    gt = load_mpii_ground_truth(ann)
    pred = gt.joints.copy()
    pred[0, 0] += [9, 12]        # r_ankle of person 0 off by exactly 15 px = 0.5 head: still correct
    pred[1, 0] += [9, 12.001]    # just beyond: wrong
    pred[0, 14] += [30, 0]       # the only visible l_elbow: wrong (1.0 head)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the never-visible joint's 0 / 0 must not warn
        pck, count = pckh_per_joint(pred, gt, 0.5)
    assert count.tolist() == [3] * 9 + [1] + [3] * 4 + [1, 0]
    assert pck[0] == pytest.approx(200 / 3) and pck[14] == 0.0 and pck[9] == 100.0
    assert math.isnan(pck[15]) and pck.dtype == np.float64
    table = pckh_table(pred, gt)
    assert table["Ankle"] == pytest.approx((200 / 3 + 100) / 2) and table["Head"] == 100.0
    # Mean: all joints but pelvis and thorax, weighted by visible counts; l_wrist (never seen) drops out
    weights = np.array([3] * 6 + [0, 0] + [3, 1, 3, 3, 3, 3, 1, 0], float)
    values = np.where(weights > 0, np.nan_to_num(pck), 0)
    assert table["Mean"] == pytest.approx(float((values * weights).sum() / weights.sum()))
    # by hand: 35 visible instances counted (6 x 3 legs/hips, 3 neck, 1 head, 4 x 3 arms, 1 elbow), 33 correct
    assert table["Mean"] == pytest.approx(100 * 33 / 35)
    assert math.isnan(table["Wrist"])  # mean of 100 and NaN, as HRNet's table


def test_prediction_files_are_zero_based_and_checked(ann, tmp_path):
    gt = load_mpii_ground_truth(ann)
    path = tmp_path / "pred.json"
    entries = [{"person": i, "image": f"{i}.jpg", "joints": (gt.joints[i] - 1).astype(int).tolist()}
               for i in range(3)]
    path.write_text(json.dumps(entries))
    pred = load_mpii_predictions(path, gt)
    np.testing.assert_array_equal(pred, gt.joints)  # 0-based + 1 = the 1-based annotation
    assert pckh_table(pred, gt)["Mean"] == 100.0

    def fails(content, message):
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError) as exc:
            load_mpii_predictions(path, gt)
        assert str(exc.value) == f"{path}: {message}"

    fails({"person": 0}, "expected a JSON list of {'person': index, 'joints': 16 x [x, y]}")
    for bad in (-1, 3, "1", None):
        fails([dict(entries[0], person=bad)], f"person index {bad!r} is not in 0..2")
    fails([entries[0], entries[0]], "person 0 predicted twice")
    fails([dict(entries[1], image="x.jpg")], "person 1 is on '1.jpg' in the annotations, not 'x.jpg'")
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"image": f"{i}.jpg", "joints": [[1, 1]] * 16, "joints_vis": [1] * 16,
                                 "headbox": HEADBOX} for i in range(8)]))
    big = load_mpii_ground_truth(many)
    path.write_text(json.dumps([{"person": 7, "joints": [[0, 0]] * 16}]))
    with pytest.raises(ValueError) as exc:
        load_mpii_predictions(path, big)
    assert str(exc.value) == f"{path}: no prediction for 7 people, e.g. [0, 1, 2, 3, 4]"


def test_malformed_ground_truth_is_named(tmp_path, ann):
    path = tmp_path / "bad.json"
    expected = f"{path}: expected a non-empty JSON list of MPII people (HRNet annot/valid.json format)"
    for content in ([], {"image": "a.jpg"}):
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError) as exc:
            load_mpii_ground_truth(path)
        assert str(exc.value) == expected
    boxless = people()
    for i in (0, 2):
        del boxless[i]["headbox"]
    path.write_text(json.dumps(boxless))
    with pytest.raises(ValueError) as exc:
        load_mpii_ground_truth(path)
    assert str(exc.value) == (f"{path}: people [0, 2] have no 'headbox' [x1, y1, x2, y2]; add it, or pass the "
                              "official gt_valid.mat (eval --headboxes)")
    six = [dict(people()[0], image=f"{i}.jpg") for i in range(7)]
    for p in six:
        del p["headbox"]
    path.write_text(json.dumps(six))
    with pytest.raises(ValueError, match=re.escape("people [0, 1, 2, 3, 4] have no")):
        load_mpii_ground_truth(path)
    short = people()
    for p in short:
        p["joints"] = p["joints"][:15]
        p["joints_vis"] = p["joints_vis"][:15]
    path.write_text(json.dumps(short))
    with pytest.raises(ValueError) as exc:
        load_mpii_ground_truth(path)
    assert str(exc.value) == f"{path}: joints must be 16 x 2 per person, got (15, 2)"
    gt = load_mpii_ground_truth(ann)
    with pytest.raises(ValueError) as exc:
        pckh_per_joint(np.zeros((2, 16, 2)), gt, 0.5)
    assert str(exc.value) == "pred must be (3, 16, 2) (people, joints, xy), got (2, 16, 2)"


def test_gt_valid_mat_is_read_as_float64_and_checked(tmp_path, ann):
    src = people()
    pos = np.transpose(np.array([p["joints"] for p in src], np.int32), (1, 2, 0))  # 16 x 2 x N, integers
    missing = np.transpose(1 - np.array([p["joints_vis"] for p in src], np.int32))
    boxes = np.transpose(np.array([np.reshape(HEADBOX, (2, 2))] * 3, np.int32), (1, 2, 0))
    mat = tmp_path / "gt_valid.mat"
    savemat(mat, {"pos_gt_src": pos, "jnt_missing": missing, "headboxes_src": boxes})
    gt = load_mpii_ground_truth(ann, mat)
    assert gt.joints.dtype == np.float64 and gt.headboxes.dtype == np.float64
    np.testing.assert_array_equal(gt.joints, np.array([p["joints"] for p in src], float))
    np.testing.assert_array_equal(gt.headboxes[1], [[0, 0], [30, 40]])
    assert gt.visible.sum() == load_mpii_ground_truth(ann).visible.sum()
    savemat(mat, {"pos_gt_src": pos})
    with pytest.raises(ValueError) as exc:
        load_mpii_ground_truth(ann, mat)
    assert str(exc.value) == f"{mat}: lacks jnt_missing, headboxes_src; expected HRNet's annot/gt_valid.mat"
    savemat(mat, {"pos_gt_src": pos[..., :2], "jnt_missing": missing[:, :2], "headboxes_src": boxes[..., :2]})
    with pytest.raises(ValueError) as exc:
        load_mpii_ground_truth(ann, mat)
    assert str(exc.value) == (f"{mat} holds 2 people but {ann} lists 3; pass the annotation json of the same split "
                              "(HRNet: annot/valid.json)")
