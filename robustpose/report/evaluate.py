"""Score a predictions directory: every cell's metrics, the robustness summary, and the report files.

:func:`evaluate_run` is the one library call behind ``robustpose eval --preds``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.datasets.readers import AnnotationError, image_names, load_json
from robustpose.metrics import (
    DEFAULT_BACKEND,
    PCKH_COLUMNS,
    CocoKeypointEvaluator,
    MissingCellError,
    load_mpii_ground_truth,
    load_mpii_predictions,
    pckh_table,
    summarize_robustness,
)
from robustpose.pool import imap_unordered

from .layout import DATASETS, UNKNOWN, RunResult, discover_cells, read_run_meta

# Report names of HRNet's PCKh columns (those of published_results.csv).
PCKH_NAMES = {c: f"PCKh@0.5_{c.lower()}" for c in PCKH_COLUMNS[:-2]}
PCKH_NAMES.update({"Mean": "PCKh@0.5_mean", "Mean@0.1": "PCKh@0.1_mean"})
HEADLINE = {"coco": "AP", "ochuman": "AP", "mpii": "PCKh@0.5_mean"}

Progress = Callable[[Iterable, int], Iterable]




_SCHEMA_ERRORS = (KeyError, TypeError, IndexError, AttributeError, ValueError)


def _schema_detail(err: Exception) -> str:
    return f"missing field {err}" if isinstance(err, KeyError) else (str(err).splitlines() or [type(err).__name__])[0]


def _scorer(dataset: str, ann: Path, backend: str, headboxes: Path | None) -> Callable[[Path], dict[str, float]]:
    """A function from one predictions file to its metrics in percent.

    The annotation file is checked here, before any predictions file is scored; every failure (annotation or
    predictions) is a ``ValueError`` naming the file.
    """
    image_names(dataset, ann, ann.parent)  # the file's format, with a hint when it is the other dataset's
    if dataset == "mpii":
        try:
            gt = load_mpii_ground_truth(ann, headboxes)
        except _SCHEMA_ERRORS as err:
            raise AnnotationError(f"{ann} is not a valid HRNet-style MPII annotation file ({_schema_detail(err)})"
                                  ) from err
        score = lambda path: {PCKH_NAMES[k]: v for k, v in pckh_table(load_mpii_predictions(path, gt), gt).items()}
    else:
        if headboxes is not None:
            raise ValueError("headboxes (gt_valid.mat) only apply to --dataset mpii")
        gt = load_json(ann)
        if not isinstance(gt.get("annotations"), list):
            raise AnnotationError(f"{ann} is not a COCO-format keypoint annotation file: no 'annotations' list")
        try:
            evaluator = CocoKeypointEvaluator(gt, backend=backend, rules="ochuman" if dataset == "ochuman" else "coco")
        except _SCHEMA_ERRORS as err:
            raise AnnotationError(f"{ann} is not a valid COCO-format keypoint annotation file "
                                  f"({_schema_detail(err)})") from err
        # pycocotools' -1 (no ground truth in that area range) becomes NaN: not a score
        score = lambda path: {k: 100.0 * v if v >= 0 else math.nan for k, v in evaluator.evaluate(path).items()}

    def checked(path: Path) -> dict[str, float]:
        try:
            return score(path)
        except _SCHEMA_ERRORS as err:
            if str(path) in str(err):  # already names the file
                raise
            raise ValueError(f"{path} is not a valid {dataset} predictions file ({_schema_detail(err)}); the "
                             "format is in docs/metrics.md") from err

    return checked


@lru_cache(maxsize=1)
def _worker_scorer(dataset: str, ann: Path, backend: str, headboxes: Path | None) -> Callable[[Path], dict]:
    """One scorer per worker process, built on its first cell (the ground truth is read once per process)."""
    return _scorer(dataset, ann, backend, headboxes)


def _score_in_worker(task: tuple) -> tuple:
    """``(key, metrics)`` of a ``(scorer setup, key, path)`` task."""
    setup, key, path = task
    return key, _worker_scorer(*setup)(path)


def evaluate_run(
    preds_dir: str | Path,
    dataset: str,
    ann: str | Path,
    out: str | Path | None = None,
    backend: str = DEFAULT_BACKEND,
    partial: bool = False,
    headboxes: str | Path | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
) -> RunResult:
    """Score ``clean.json`` and every ``<corruption>/<severity>.json`` of ``preds_dir``; write the report to ``out``.

    Parameters
    ----------
    preds_dir : path
        Predictions directory (layout in :mod:`robustpose.report.layout` and ``docs/metrics.md``).
    dataset : {'coco', 'ochuman', 'mpii'}
        COCO keypoint AP (pycocotools rules), OCHuman (xtcocotools rules) or MPII PCKh.
    ann : path
        Ground truth: COCO-format keypoints json, or the MPII annotation json.
    out : path, optional
        Where ``results.csv``, ``summary.json``, ``report.md`` and the plots go; nothing is written when None.
    backend : {'hotcoco', 'pycocotools'}
        COCO engine (same numbers).
    partial : bool
        Report what exists when benchmark cells are missing (summary marked incomplete) instead of failing.
    headboxes : path, optional
        MPII only: HRNet's ``gt_valid.mat``.
    progress : callable, optional
        ``progress(iterable, total)`` wraps the loop over files (e.g. a rich progress bar).
    jobs : int
        Score the files in this many processes (0: one per CPU core); the numbers do not depend on it.

    Raises
    ------
    MissingCellError
        A benchmark cell file is missing (named in the message) and ``partial`` is False.
    ValueError
        Bad layout, annotation or predictions file (named in the message).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    preds_dir = Path(preds_dir)
    meta = read_run_meta(preds_dir)
    if meta.dataset not in (UNKNOWN, dataset):
        raise ValueError(f"{preds_dir / 'run.json'} says dataset {meta.dataset!r} but --dataset is {dataset!r}")
    meta = replace(meta, dataset=dataset)
    clean_path, cell_paths = discover_cells(preds_dir)
    missing = [f"{preds_dir / c / f'{s}.json'}" for c in corruption_names("benchmark") for s in SEVERITIES
               if (c, s) not in cell_paths]
    if missing and not partial:
        raise MissingCellError(f"{len(missing)} benchmark cell(s) missing: {', '.join(missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''}; add them or pass --partial")
    if jobs < 0:
        raise ValueError(f"jobs must be >= 0 (0: one per CPU core), got {jobs}")
    # built here even when worker processes score: a bad annotation file fails before any of them starts
    score = _scorer(dataset, Path(ann), backend, Path(headboxes) if headboxes is not None else None)
    items = [(None, clean_path), *cell_paths.items()]
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(items) > 1:
        setup = (dataset, Path(ann), backend, Path(headboxes) if headboxes is not None else None)
        done = imap_unordered(_score_in_worker, [(setup, *item) for item in items], min(jobs, len(items)))
        finished = dict(progress(done, len(items)) if progress else done)
        scored = {key: finished[key] for key, _ in items}
    else:
        scored = {key: score(path) for key, path in (progress(items, len(items)) if progress else items)}
    clean = scored.pop(None)
    metric = HEADLINE[dataset]
    summary = summarize_robustness(clean[metric], {k: v[metric] for k, v in scored.items()}, metric=metric,
                                   partial=partial)
    result = RunResult(meta, dataset, backend, clean, scored, summary)
    if out is not None:
        from .render import write_report

        write_report(result, Path(out))
    return result
