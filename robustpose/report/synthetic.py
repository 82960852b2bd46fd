"""A synthetic predictions directory (COCO format) whose accuracy falls with severity: for tests and demos."""

from __future__ import annotations

import json
from pathlib import Path

from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.datasets.imageio import write_atomic
from robustpose.metrics.synthetic import noisy_keypoint_results

from .layout import RunMeta, write_run_meta


def write_synthetic_run(
    preds_dir: str | Path,
    gt: dict,
    n_results: int,
    corruptions: list[str] | None = None,
    noise: float = 0.03,
    seed: int = 0,
    meta: RunMeta | None = None,
) -> Path:
    """Write ``clean.json``, ``<corruption>/<severity>.json`` and ``run.json`` of noisy results for ``gt``.

    Keypoint noise grows with severity and differs per corruption (the n-th benchmark corruption is hit
    ``1 + 0.25 * (n mod 6)`` times as hard), so plots and tables have a shape to look at.

    Parameters
    ----------
    preds_dir : path
        Created if needed.
    gt : dict
        COCO keypoints ground truth, e.g. from :func:`robustpose.metrics.synthetic.synthetic_coco_keypoints`.
    n_results : int
        Results per file.
    corruptions : list of str, optional
        Default: the 15 benchmark corruptions.
    noise : float
        Clean keypoint noise (fraction of the person size).
    seed : int
    meta : RunMeta, optional
        Written as ``run.json`` (default: a ``synthetic`` model on ``coco``).
    """
    preds_dir = Path(preds_dir)
    preds_dir.mkdir(parents=True, exist_ok=True)
    names = corruptions if corruptions is not None else corruption_names("benchmark")
    write_run_meta(preds_dir, meta or RunMeta(model="synthetic", method="noisy-gt", input_size="256x192",
                                              dataset="coco", boxes="gt", corruption_set="synthetic",
                                              seeding="synthetic", flip_test=False))
    clean = noisy_keypoint_results(gt, n_results, noise=noise, seed=seed)
    write_atomic(preds_dir / "clean.json", json.dumps(clean).encode())
    for n, name in enumerate(names):
        (preds_dir / name).mkdir(exist_ok=True)
        for s in SEVERITIES:
            level = noise * (1 + 0.3 * s * (1 + 0.25 * (n % 6)))
            results = noisy_keypoint_results(gt, n_results, noise=level, seed=seed + 100 * (n + 1) + s)
            write_atomic(preds_dir / name / f"{s}.json", json.dumps(results).encode())
    return preds_dir
