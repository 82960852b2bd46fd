"""COCO keypoint scoring around the engines: result checks and their messages, the OCHuman visibility rule, engine
choice, no output on stdout, and the caller's ground truth left untouched."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

from robustpose.metrics import STAT_NAMES, CocoKeypointEvaluator, evaluate_keypoints
from robustpose.metrics.coco import check_results, drop_zero_score_results, read_results, visibility_ignore_gt


def gt_with(flags_per_person: list[list[int]]) -> dict:
    anns = []
    for i, flags in enumerate(flags_per_person, 1):
        kp = []
        for j, v in enumerate(flags):
            kp += [100.0 + 10 * j + 200 * i, 50.0 + 5 * j, v]
        anns.append({"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 8000.0,
                     "bbox": [90.0 + 200 * i, 40.0, 180, 120], "keypoints": kp, "num_keypoints": 17})
    return {"images": [{"id": 1, "width": 900, "height": 300, "file_name": "1.jpg"}, {"id": 2, "width": 9,
                        "height": 9, "file_name": "2.jpg"}],
            "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


def as_result(ann: dict, score: float = 1.0, kp_score: float = 0.9) -> dict:
    kp = np.asarray(ann["keypoints"], float).reshape(-1, 3)
    kp[:, 2] = kp_score
    return {"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": score}


def test_visibility_rule_counts_every_flag_above_zero():
    gt = gt_with([[2] * 17, [1] * 17, [0] * 17, [0] * 16 + [1]])
    counts = [a["num_keypoints"] for a in visibility_ignore_gt(gt)["annotations"]]
    assert counts == [17, 17, 0, 1]  # flag 1 (labelled, not visible) counts: xtcocotools tests v > 0
    assert [a["num_keypoints"] for a in gt["annotations"]] == [17] * 4  # the input is not modified


def test_ochuman_rules_ignore_persons_without_flags_and_results_without_scores():
    gt = gt_with([[1] * 17, [0] * 17])
    results = [as_result(gt["annotations"][0])]
    # the flagless person is ignored under ochuman rules: the one matched prediction gives AP 1
    assert evaluate_keypoints(gt, results, rules="ochuman")["AP"] == pytest.approx(1.0)
    zero = as_result(gt["annotations"][0], kp_score=0.0)
    assert drop_zero_score_results([zero, results[0]]) == [results[0]]
    assert evaluate_keypoints(gt, [zero], rules="ochuman") == dict.fromkeys(STAT_NAMES, 0.0)
    half = as_result(gt["annotations"][0], kp_score=0.0)
    half["keypoints"][2] = 0.5
    assert drop_zero_score_results([half]) == [half]


@pytest.mark.parametrize("backend", ["hotcoco", "pycocotools"])
def test_empty_results_score_zero_everywhere(backend):
    stats = CocoKeypointEvaluator(gt_with([[2] * 17]), backend=backend).evaluate([])
    assert stats == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "APM": 0.0, "APL": 0.0, "AR": 0.0, "AR50": 0.0,
                     "AR75": 0.0, "ARM": 0.0, "ARL": 0.0}
    assert all(type(v) is float for v in stats.values())


@pytest.mark.parametrize("backend", ["hotcoco", "pycocotools"])
def test_scoring_prints_nothing_and_leaves_the_ground_truth_alone(backend, capfd):
    gt = gt_with([[2] * 17, [2] * 17])
    before = copy.deepcopy(gt)
    ev = CocoKeypointEvaluator(gt, backend=backend)
    assert ev.backend == backend and ev.rules == "coco"
    stats = ev.evaluate([as_result(a) for a in gt["annotations"]])
    assert stats["AP"] == pytest.approx(1.0)
    assert gt == before
    out = capfd.readouterr()
    assert out.out == ""


def test_each_engine_is_the_one_that_runs(monkeypatch):
    gt = gt_with([[2] * 17])
    results = [as_result(gt["annotations"][0])]
    import hotcoco
    import pycocotools.cocoeval

    def refuse(*args, **kwargs):
        raise AssertionError("the other engine ran")

    with monkeypatch.context() as m:
        m.setattr(pycocotools.cocoeval, "COCOeval", refuse)
        assert evaluate_keypoints(gt, results)["AP"] == pytest.approx(1.0)  # hotcoco by default
        with pytest.raises(AssertionError, match="other engine"):
            evaluate_keypoints(gt, results, backend="pycocotools")
    with monkeypatch.context() as m:
        m.setattr(hotcoco, "COCOeval", refuse)
        assert evaluate_keypoints(gt, results, backend="pycocotools")["AP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=re.escape("unknown metric backend 'rust'; choose one of hotcoco, pycocotools")):
        evaluate_keypoints(gt, results, backend="rust")
    with pytest.raises(ValueError, match=re.escape("unknown rules 'crowd'; choose one of coco, ochuman")):
        evaluate_keypoints(gt, results, rules="crowd")


def test_result_checks_name_what_is_wrong():
    gt = gt_with([[2] * 17])
    good = as_result(gt["annotations"][0])
    check_results(gt, [good])
    lacking = {k: v for k, v in good.items() if k not in ("score", "category_id")}
    with pytest.raises(ValueError) as exc:
        check_results(gt, [good, lacking])
    assert str(exc.value) == ("result 1 lacks category_id, score; COCO keypoint results need image_id, category_id, "
                              "keypoints, score")
    short = dict(good, keypoints=good["keypoints"][:-3])
    with pytest.raises(ValueError) as exc:
        check_results(gt, [short])
    assert str(exc.value) == "result 0 has 48 keypoint numbers, expected 51 (x, y, score per keypoint)"
    check_results(gt, [dict(good, keypoints=good["keypoints"][:48])], num_keypoints=16)
    foreign = [dict(good, image_id=i) for i in (9, 3, 8, 7, 6, 5, 4)]
    with pytest.raises(ValueError) as exc:
        check_results(gt, foreign)
    assert str(exc.value) == ("results name 7 image id(s) not in the annotation file, e.g. [3, 4, 5, 6, 7]; "
                              "the predictions were made for another annotation file")


def test_results_files_are_read_and_checked_with_their_name(tmp_path):
    gt = gt_with([[2] * 17])
    good = as_result(gt["annotations"][0])
    path = tmp_path / "preds.json"
    path.write_text(json.dumps([good]))
    assert read_results(path) == [good]
    assert evaluate_keypoints(gt, path)["AP"] == pytest.approx(1.0)
    assert evaluate_keypoints(gt, str(path))["AP"] == pytest.approx(1.0)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: cannot read COCO results \("):
        read_results(path)
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError) as exc:
        read_results(path)
    assert str(exc.value) == f"{path}: COCO results must be a JSON list of {{image_id, category_id, keypoints, score}}"
    path.write_text(json.dumps([dict(good, image_id=5)]))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: results name 1 image id"):
        evaluate_keypoints(gt, path)


def test_bulk_result_checks_locate_the_first_bad_record_of_any_kind():
    gt = gt_with([[2] * 17])
    good = as_result(gt["annotations"][0])
    cases = [([good, good, [1, 2]], "result 2 is a list, not an object with image_id, category_id, keypoints, score"),
             ([good, dict(good, keypoints=7)],
              "result 1 has keypoints of type int, expected 51 (x, y, score per keypoint)"),
             ([good] * 5 + [dict(good, keypoints=[0.0] * 54)] + [good],
              "result 5 has 54 keypoint numbers, expected 51 (x, y, score per keypoint)")]
    for results, message in cases:
        with pytest.raises(ValueError) as exc:
            check_results(gt, results)
        assert str(exc.value) == message
    check_results(gt, [good] * 1000)  # the bulk path passes a clean list


def test_a_result_without_keypoints_and_foreign_ids_of_mixed_types_are_named():
    gt = gt_with([[2] * 17])
    good = as_result(gt["annotations"][0])
    no_keypoints = {k: v for k, v in good.items() if k != "keypoints"}
    with pytest.raises(ValueError) as exc:
        check_results(gt, [good, no_keypoints])
    assert str(exc.value) == ("result 1 lacks keypoints; COCO keypoint results need image_id, category_id, "
                              "keypoints, score")
    # ids of another file may be strings (OCHuman-style) mixed with ints: listed in text order, never a TypeError
    mixed = [dict(good, image_id=i) for i in ("b7", 12, "a1", 9)]
    with pytest.raises(ValueError) as exc:
        check_results(gt, mixed)
    assert str(exc.value) == ("results name 4 image id(s) not in the annotation file, e.g. [12, 9, 'a1', 'b7']; "
                              "the predictions were made for another annotation file")
