"""COCO keypoint AP/AR (the 10 stats of pycocotools ``COCOeval(iouType='keypoints')``) with a selectable engine.

Two engines compute the same numbers: ``pycocotools`` (the reference) and ``hotcoco`` (a Rust port, the default,
tested to give pycocotools' 10 stats exactly; see ``docs/metrics.md``). Two rule sets decide which ground truths and
results take part:

``coco``
    pycocotools: a ground truth is ignored when it is a crowd region or its ``num_keypoints`` field is 0.
``ochuman``
    xtcocotools (how MMPose scores OCHuman): results whose keypoint scores are all <= 0 are dropped, and a ground
    truth is ignored when it is a crowd region or none of its visibility flags is > 0 (``num_keypoints`` is not read).
    Both rules are applied here, in front of the engine.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping, Sequence
from operator import methodcaller
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

BACKENDS = ("hotcoco", "pycocotools")
DEFAULT_BACKEND = "hotcoco"
RULES = ("coco", "ochuman")

# pycocotools' COCOeval.stats order for keypoints; names as in published_results.csv.
STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")

# COCO's 17 per-keypoint OKS sigmas (pycocotools' kpt_oks_sigmas).
COCO_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown metric backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def visibility_ignore_gt(gt: Mapping[str, Any]) -> dict:
    """Copy of a COCO ground-truth dict whose ``num_keypoints`` counts the visibility flags > 0.

    pycocotools ignores a ground truth when ``num_keypoints == 0``; xtcocotools when no visibility flag is > 0.
    Rewriting the field makes any pycocotools-compatible engine follow xtcocotools' rule.
    """
    out = dict(gt)
    anns = []
    for ann in gt["annotations"]:
        ann = dict(ann)
        if "keypoints" in ann:
            ann["num_keypoints"] = int(np.count_nonzero(np.asarray(ann["keypoints"], dtype=float)[2::3] > 0))
        anns.append(ann)
    out["annotations"] = anns
    return out


def drop_zero_score_results(results: Sequence[Mapping[str, Any]]) -> list:
    """The results that have at least one keypoint score > 0 (xtcocotools drops the others before matching)."""
    return [r for r in results if np.any(np.asarray(r["keypoints"], dtype=float)[2::3] > 0)]


RESULT_FIELDS = ("image_id", "category_id", "keypoints", "score")


def check_results(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], num_keypoints: int = 17) -> None:
    """Raise ValueError unless ``results`` is a list of COCO keypoint results for images of ``gt``.

    Each result needs ``image_id``, ``category_id``, ``keypoints`` (``3 * num_keypoints`` numbers x, y, score) and
    ``score``. Checked in bulk (one pass per check at C speed: COCO val's 30k-result files take milliseconds); the
    first bad record is then located for the message.
    """
    required = frozenset(RESULT_FIELDS)
    try:
        complete = all(required <= r.keys() for r in results)
        counts = np.fromiter(map(len, (r["keypoints"] for r in results)), np.int64, len(results)) if complete \
            else None
    except (AttributeError, TypeError):  # a record that is not an object, keypoints that are not a list
        complete, counts = False, None
    if not complete or bool((counts != 3 * num_keypoints).any()):
        _raise_first_bad_result(results, num_keypoints)
    foreign = sorted({r["image_id"] for r in results} - {img["id"] for img in gt["images"]}, key=str)
    if foreign:
        raise ValueError(f"results name {len(foreign)} image id(s) not in the annotation file, e.g. {foreign[:5]}; "
                         "the predictions were made for another annotation file")


def _raise_first_bad_result(results: Sequence[Any], num_keypoints: int) -> None:
    """The ValueError naming the first result that lacks a field or has the wrong number of keypoint numbers."""
    for i, r in enumerate(results):
        if not isinstance(r, Mapping):
            raise ValueError(f"result {i} is a {type(r).__name__}, not an object with image_id, category_id, "  # noqa: TRY004
                             "keypoints, score")
        missing = [k for k in RESULT_FIELDS if k not in r]
        if missing:
            raise ValueError(f"result {i} lacks {', '.join(missing)}; COCO keypoint results need "
                             "image_id, category_id, keypoints, score")
        kps = r["keypoints"]
        if not isinstance(kps, (list, tuple)) or len(kps) != 3 * num_keypoints:
            got = f"{len(kps)} keypoint numbers" if isinstance(kps, (list, tuple)) else f"keypoints of type " \
                f"{type(kps).__name__}"
            raise ValueError(f"result {i} has {got}, expected {3 * num_keypoints} (x, y, score per keypoint)")
    raise AssertionError("no bad result found")  # unreachable: the bulk check found one


class _ResultShape(msgspec.Struct):
    """The fields :func:`check_results` requires, typed; ``keypoints`` stays JSON text (hotcoco parses the numbers)."""

    image_id: int
    category_id: int
    keypoints: msgspec.Raw
    score: float


_RESULT_SHAPES = msgspec.json.Decoder(list[_ResultShape])


def results_file_passes(data: bytes, image_ids: frozenset, num_keypoints: int = 17) -> bool:
    """Whether ``data`` (a results json's bytes) is a non-empty list that :func:`check_results` accepts for a ground
    truth with these image ids, decided without one Python number per keypoint: the records are decoded with a
    typed schema (msgspec) that keeps each ``keypoints`` array as its JSON text, whose numbers are counted by their
    commas. False also for files that :func:`check_results` may accept but this schema does not (ids that
    are not integers, for one): the caller then takes the full path, which names what is wrong.

    An array passes the count only if it has exactly ``3 * num_keypoints`` elements or holds a non-number (a nested
    array or string), which the numeric parser that reads the file next rejects.
    """
    try:
        shapes = _RESULT_SHAPES.decode(data)
    except msgspec.DecodeError:  # also msgspec.ValidationError: a missing field, a wrong type, not a list
        return False
    if not shapes or not {s.image_id for s in shapes} <= image_ids:
        return False
    # per array: it opens with "[" and holds 3K - 1 commas (a C-speed count per array beats one numpy pass over all)
    texts = [bytes(s.keypoints) for s in shapes]
    commas = np.fromiter(map(methodcaller("count", b","), texts), np.int64, len(texts))
    return all(map(methodcaller("startswith", b"["), texts)) and bool((commas == 3 * num_keypoints - 1).all())


class CocoKeypointEvaluator:
    """Scores COCO keypoint results against one ground truth; built once, called per results list.

    Parameters
    ----------
    gt : dict
        COCO keypoints ground truth (``images``, ``annotations``, ``categories``), as loaded from the json.
    backend : {'hotcoco', 'pycocotools'}
        Engine; both give the same 10 stats.
    rules : {'coco', 'ochuman'}
        Which results and ground truths take part (see the module docstring).

    Examples
    --------
    >>> ev = CocoKeypointEvaluator(gt)                            # doctest: +SKIP
    >>> ev.evaluate(results)["AP"]                                # doctest: +SKIP
    0.731
    """

    def __init__(self, gt: Mapping[str, Any], backend: str = DEFAULT_BACKEND, rules: str = "coco") -> None:
        _check_backend(backend)
        if rules not in RULES:
            raise ValueError(f"unknown rules {rules!r}; choose one of {', '.join(RULES)}")
        self.backend = backend
        self.rules = rules
        self._gt_dict = visibility_ignore_gt(gt) if rules == "ochuman" else copy.deepcopy(dict(gt))
        # a ground truth without images fails here, where the error names the annotation file
        self._image_ids = frozenset(img["id"] for img in self._gt_dict["images"])
        with contextlib.redirect_stdout(io.StringIO()):
            if backend == "hotcoco":
                import hotcoco

                self._gt = hotcoco.COCO(self._gt_dict)
            else:
                from pycocotools.coco import COCO

                self._gt = COCO()
                self._gt.dataset = self._gt_dict
                self._gt.createIndex()

    def evaluate(self, results: Sequence[Mapping[str, Any]] | str | Path) -> dict[str, float]:
        """The 10 keypoint stats of ``results``.

        Parameters
        ----------
        results : list of dict, or path to a json of it
            COCO keypoint results: ``image_id``, ``category_id``, ``keypoints`` (51 floats: x, y, score per
            keypoint, pixels), ``score``. Checked with :func:`check_results`.

        Returns
        -------
        dict
            :data:`STAT_NAMES` -> float in [0, 1] (pycocotools' ``stats``; -1 where no ground truth falls in an
            area range). An empty results list scores 0 everywhere (pycocotools cannot load one).
        """
        if isinstance(results, (str, Path)):
            path = Path(results)
            fast = self._evaluate_file(path)
            if fast is not None:
                return fast
            results = read_results(path)
            try:
                check_results(self._gt_dict, results)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from err
        else:
            check_results(self._gt_dict, results)
        if self.rules == "ochuman":
            results = drop_zero_score_results(results)
        if not results:
            return dict.fromkeys(STAT_NAMES, 0.0)
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' loadRes prints
            # pycocotools writes area/id/bbox into the records: hand it shallow copies
            dt = self._gt.load_res(list(results)) if self.backend == "hotcoco" else \
                self._gt.loadRes([dict(r) for r in results])
        return self._stats(dt)

    def _evaluate_file(self, path: Path) -> dict[str, float] | None:
        """The stats of a results file read by hotcoco's own parser after :func:`results_file_passes`, or None
        for the full path (another engine or rule set, an unreadable file, one the quick check does not pass,
        one hotcoco cannot parse): the same stats, several times faster on COCO-val-sized files (docs/metrics.md)."""
        if self.backend != "hotcoco" or self.rules != "coco":
            return None
        try:
            if not results_file_passes(path.read_bytes(), self._image_ids):
                return None
            dt = self._gt.load_res(str(path))
        except (OSError, ValueError):
            return None
        return self._stats(dt)

    def _stats(self, dt: Any) -> dict[str, float]:
        """The 10 stats of loaded results ``dt`` (the engine's own results object)."""
        with contextlib.redirect_stdout(io.StringIO()):
            if self.backend == "hotcoco":
                import hotcoco

                ev = hotcoco.COCOeval(self._gt, dt, "keypoints")
            else:
                from pycocotools.cocoeval import COCOeval

                ev = COCOeval(self._gt, dt, "keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {name: float(v) for name, v in zip(STAT_NAMES, ev.stats)}


def read_results(path: Path) -> list:
    """A COCO results json (a list of dicts), with an error naming the file when it is not one. Parsed with orjson
    (about 3x Python's json on COCO val's 15 MB result files: the largest part of ``eval --preds`` otherwise)."""
    try:
        results = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read COCO results ({err})") from err
    if not isinstance(results, list):
        raise ValueError(f"{path}: COCO results must be a JSON list of {{image_id, category_id, keypoints, score}}")
    return results


def evaluate_keypoints(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]] | str | Path,
    backend: str = DEFAULT_BACKEND,
    rules: str = "coco",
) -> dict[str, float]:
    """One-off :meth:`CocoKeypointEvaluator.evaluate`; build the evaluator once when scoring many result lists."""
    return CocoKeypointEvaluator(gt, backend=backend, rules=rules).evaluate(results)
