"""COCO results files: the quick path (typed decode + hotcoco's own parser) scores exactly as the records do, and
every file it does not pass is scored or refused as before, with the file named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustpose.metrics import CocoKeypointEvaluator
from robustpose.metrics import coco as coco_module
from robustpose.metrics.coco import results_file_passes
from robustpose.metrics.synthetic import (
    noisy_keypoint_results,
    synthetic_coco_keypoints,
)


@pytest.fixture(scope="module")
def noisy():
    gt = synthetic_coco_keypoints(n_images=200, n_people=260, crowd_fraction=0.03, seed=5)
    return gt, noisy_keypoint_results(gt, n_results=1500, noise=0.08, seed=6)


def full_path_only(monkeypatch):
    """Make the quick path the only way to score a file (the full path reads with read_results)."""
    def refuse(path):
        raise AssertionError(f"{path} took the full path")

    monkeypatch.setattr(coco_module, "read_results", refuse)


@pytest.mark.parametrize("layout", ["compact", "indented", "extra fields", "integer numbers"])
def test_a_results_file_scores_exactly_as_its_records_through_the_quick_path(tmp_path, monkeypatch, noisy, layout):
    gt, results = noisy
    records = [dict(r) for r in results]
    if layout == "extra fields":  # what other tools write beside the four fields; pycocotools ignores them
        records = [{**r, "bbox": [0, 0, 1, 1], "id": 9, "center": [1, 2]} for r in records]
    if layout == "integer numbers":
        records = [{**r, "keypoints": [round(v) for v in r["keypoints"]], "score": 1} for r in records]
    path = tmp_path / "clean.json"
    path.write_text(json.dumps(records, indent=2 if layout == "indented" else None))
    expected = CocoKeypointEvaluator(gt, backend="pycocotools").evaluate(records)
    assert 0.05 < expected["AP"] < 0.95
    full_path_only(monkeypatch)
    assert CocoKeypointEvaluator(gt).evaluate(path) == expected  # all 10 stats, exactly


def good(n: int = 3) -> list[dict]:
    return [{"image_id": 1, "category_id": 1, "keypoints": [float(i)] * 51, "score": 0.5} for i in range(n)]


def with_record(change) -> list[dict]:
    records = good()
    change(records[1])
    return records


BAD_FILES = {
    "48 keypoint numbers": with_record(lambda r: r.update(keypoints=[1.0] * 48)),
    "54 keypoint numbers": with_record(lambda r: r.update(keypoints=[1.0] * 54)),
    "50 keypoint numbers": with_record(lambda r: r.update(keypoints=[1.0] * 50)),
    "no score": with_record(lambda r: r.pop("score")),
    "no keypoints": with_record(lambda r: r.pop("keypoints")),
    "no category": with_record(lambda r: r.pop("category_id")),
    "no image id": with_record(lambda r: r.pop("image_id")),
    "foreign image id": with_record(lambda r: r.update(image_id=2)),
    "string image id": with_record(lambda r: r.update(image_id="1")),
    "keypoints as a string with 50 commas": with_record(lambda r: r.update(keypoints="," * 50)),
    "keypoints as an object": with_record(lambda r: r.update(keypoints={str(i): 1 for i in range(51)})),
    "a record that is a list": [*good(2), [1, 2, 3]],
    "an empty list": [],
    "an object": {"annotations": good()},
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_the_quick_check_passes_only_complete_records_of_known_images(name):
    assert results_file_passes(json.dumps(good()).encode(), frozenset({1}))
    assert results_file_passes(json.dumps(good(), indent=4).encode(), frozenset({1}))
    assert not results_file_passes(json.dumps(BAD_FILES[name]).encode(), frozenset({1}))


def test_the_quick_check_counts_each_array_not_the_total():
    records = good(4)
    records[1]["keypoints"], records[2]["keypoints"] = [1.0] * 48, [1.0] * 54  # 102 numbers in two records
    assert not results_file_passes(json.dumps(records).encode(), frozenset({1}))
    records[1]["keypoints"] = [[1.0, 2.0]] + [1.0] * 50  # 51 elements, but a nested array's comma counts too
    assert results_file_passes(json.dumps([records[1]]).encode(), frozenset({1})) is False
    assert not results_file_passes(b"[" + json.dumps(good()).encode(), frozenset({1}))  # truncated json
    assert not results_file_passes(json.dumps(good()).replace("0.5", "NaN").encode(), frozenset({1}))


def one_image_gt() -> dict:
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(100, 200, (17, 2)), np.full((17, 1), 2)], axis=1).reshape(-1).tolist()
    return {"images": [{"id": 1, "width": 640, "height": 480, "file_name": "1.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                             "bbox": [100, 100, 100, 100], "area": 6000.0, "keypoints": kp}],
            "categories": [{"id": 1, "name": "person"}]}


@pytest.mark.parametrize("name", ["48 keypoint numbers", "54 keypoint numbers", "no score", "no keypoints",
                                  "no category", "no image id", "foreign image id", "string image id",
                                  "a record that is a list"])
def test_a_bad_file_is_refused_with_its_name_and_the_records_message(tmp_path, name):
    ev = CocoKeypointEvaluator(one_image_gt())
    with pytest.raises(ValueError) as from_records:
        ev.evaluate(BAD_FILES[name])
    path = tmp_path / "frost" / "3.json"
    path.parent.mkdir()
    path.write_text(json.dumps(BAD_FILES[name]))
    with pytest.raises(ValueError) as from_file:
        ev.evaluate(path)
    assert str(from_file.value) == f"{path}: {from_records.value}"


def test_files_the_quick_check_leaves_out_are_scored_as_before(tmp_path):
    ev = CocoKeypointEvaluator(one_image_gt())
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert ev.evaluate(empty) == ev.evaluate([])  # zeros
    gt_kps = one_image_gt()["annotations"][0]["keypoints"]
    nested = tmp_path / "nested.json"  # 51 elements, one an array: check_results passes it, the engine refuses it
    nested.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [[1, 2], *gt_kps[1:]],
                                   "score": 1.0}]))
    with pytest.raises((TypeError, ValueError)):
        ev.evaluate(nested)
    perfect = tmp_path / "perfect.json"
    perfect.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": gt_kps, "score": 1.0}]))
    assert ev.evaluate(perfect)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("backend, rules", [("hotcoco", "ochuman"), ("pycocotools", "coco"),
                                            ("pycocotools", "ochuman")])
def test_other_engines_and_rules_score_a_file_as_its_records(tmp_path, backend, rules):
    gt = one_image_gt()
    kps = gt["annotations"][0]["keypoints"]
    perfect = {"image_id": 1, "category_id": 1, "keypoints": kps, "score": 0.5}
    # a confident false positive whose keypoint scores are all 0: xtcocotools' rules drop it, pycocotools' keep it
    unscored = {"image_id": 1, "category_id": 1, "score": 0.9,
                "keypoints": [v + 80 if i % 3 < 2 else 0.0 for i, v in enumerate(kps)]}
    path = tmp_path / "clean.json"
    path.write_text(json.dumps([perfect, unscored]))
    ev = CocoKeypointEvaluator(gt, backend=backend, rules=rules)
    stats = ev.evaluate(path)
    assert stats == ev.evaluate([perfect, unscored])
    assert stats["AP"] == pytest.approx(1.0) if rules == "ochuman" else stats["AP"] < 1.0


def test_a_ground_truth_without_images_is_refused_before_any_predictions_file(tmp_path):
    from robustpose.report import evaluate_run

    gt = one_image_gt()
    records = [{"image_id": 1, "category_id": 1, "keypoints": gt["annotations"][0]["keypoints"], "score": 1.0}]
    del gt["images"]
    with pytest.raises(KeyError, match="images"):  # the library call: at construction, not at the first file
        CocoKeypointEvaluator(gt)
    ann = tmp_path / "person_keypoints_val.json"
    ann.write_text(json.dumps(gt))
    (tmp_path / "preds").mkdir()
    (tmp_path / "preds" / "clean.json").write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"person_keypoints_val\.json is not a COCO-format annotation file: no "
                                         r"'images' list"):
        evaluate_run(tmp_path / "preds", "coco", ann, partial=True)
