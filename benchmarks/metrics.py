"""``eval --preds`` end to end on one COCO-val-sized mPC table (clean + 15 corruptions x 5 severities = 76 result
files) against pycocotools doing the same 76 evaluations from the same files, in one run.

Each cell gets its own noisy results set (5000 images, ~6350 people, 30k results by default), written in the
predictions layout of ``docs/metrics.md``. Timed, as CPU time of this process (steadier on a shared machine) and
as wall clock:

* **robustpose**: :func:`robustpose.report.evaluate_run` on the folder, i.e. ``eval --preds`` without the CLI:
  reading the ground truth, reading and checking every results file (orjson, bulk checks), scoring (hotcoco), the
  mPC summary and the report files (csv, json, markdown, two plots).
* **pycocotools**: per file, what a pycocotools user runs: ``COCO.loadRes(file)`` (Python ``json``), ``COCOeval``
  ``evaluate / accumulate / summarize``; its ground truth indexed once.

The 10 stats of every cell must be identical between the two. Also printed: the engines alone (results already in
memory), as before.

Usage::

    python benchmarks/metrics.py                # the full 76 cells (pycocotools takes ~10-20 min on one core)
    python benchmarks/metrics.py --cells 4      # a quick look (a partial table)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import time
from pathlib import Path

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from robustpose.corruptions import corruption_names
from robustpose.metrics import CocoKeypointEvaluator
from robustpose.metrics.coco import STAT_NAMES, check_results, read_results
from robustpose.metrics.synthetic import noisy_keypoint_results, synthetic_coco_keypoints
from robustpose.report import evaluate_run


class Clock:
    """Accumulated wall and CPU seconds of the timed blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextlib.contextmanager
    def __call__(self):
        w, c = time.perf_counter(), time.process_time()
        yield
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c


def cell_files(root: Path, n: int) -> list[tuple[str, Path]]:
    """The first ``n`` of clean + 15 x 5 cells, as (name, path) in the predictions layout."""
    names = [("clean", root / "clean.json")] + [
        (f"{c}/{s}", root / c / f"{s}.json") for c in corruption_names("benchmark") for s in range(1, 6)]
    return names[:n]


def pycocotools_cell(gt: COCO, path: Path) -> tuple[dict[str, float], float, float]:
    """pycocotools from the file: (stats, CPU seconds reading, CPU seconds evaluating)."""
    c0 = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(str(path))  # json.load + its per-record processing
        c1 = time.process_time()
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_NAMES, map(float, ev.stats))), c1 - c0, time.process_time() - c1


def same(ours: dict[str, float], ref: dict[str, float]) -> bool:
    """``eval``'s percent stats equal pycocotools' (x100 exactly as ``eval`` scales them; -1 reported as NaN)."""
    return all((math.isnan(ours[k]) and ref[k] < 0) or ours[k] == 100.0 * ref[k] for k in STAT_NAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=76, help="number of result files (76 = one mPC table)")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--people", type=int, default=6350)
    parser.add_argument("--results", type=int, default=30000, help="results per cell")
    args = parser.parse_args()

    gt_dict = synthetic_coco_keypoints(args.images, args.people, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "preds"
        ann = Path(tmp) / "gt.json"
        ann.write_text(json.dumps(gt_dict))
        cells = cell_files(root, args.cells)
        for i, (_, path) in enumerate(cells):
            path.parent.mkdir(parents=True, exist_ok=True)
            noise = 0.05 * (1 + i / 15)  # harder cells, as corruptions make them
            path.write_text(json.dumps(noisy_keypoint_results(gt_dict, args.results, noise=noise, seed=i + 1)))
        print(f"{len(cells)} result files written ({sum(p.stat().st_size for _, p in cells) / 1e6:.0f} MB)",
              flush=True)

        ours = Clock()
        with ours():
            run = evaluate_run(root, "coco", ann, out=Path(tmp) / "report", backend="hotcoco",
                               partial=len(cells) < 76)
        ours_stats = {"clean": run.clean, **{f"{c}/{s}": v for (c, s), v in run.cells.items()}}

        ref, ref_read_cpu, ref_engine_cpu = Clock(), 0.0, 0.0
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = json.loads(ann.read_text())
            gt.createIndex()
        for i, (name, path) in enumerate(cells):
            with ref():
                stats, read_cpu, engine_cpu = pycocotools_cell(gt, path)
            ref_read_cpu += read_cpu
            ref_engine_cpu += engine_cpu
            if not same(ours_stats[name], stats):
                raise SystemExit(f"{name}: stats differ\nrobustpose {ours_stats[name]}\npycocotools {stats}")
            print(f"cell {i + 1}/{len(cells)} {name}: AP {stats['AP']:.4f} identical; pycocotools "
                  f"{ref.cpu:.1f} s CPU so far", flush=True)

        # Our parts, for the breakdown: reading + checking alone, and hotcoco on the lists in memory.
        engine, read = CocoKeypointEvaluator(gt_dict, backend="hotcoco"), Clock()
        engine_only = Clock()
        for _, path in cells:
            with read():
                results = read_results(path)
                check_results(gt_dict, results)
            with engine_only():
                engine.evaluate(results)

    n_people = sum(1 for a in gt_dict["annotations"] if not a["iscrowd"])
    print(f"\n{len(cells)} evaluations, {args.images} images, {n_people} people, {args.results} results each; "
          "all 10 stats identical in every cell")
    print(f"end to end, CPU time : robustpose evaluate_run {ours.cpu:.1f}s  pycocotools {ref.cpu:.1f}s  "
          f"ratio {ref.cpu / ours.cpu:.1f}x")
    print(f"end to end, wall time: robustpose evaluate_run {ours.wall:.1f}s  pycocotools {ref.wall:.1f}s  "
          f"ratio {ref.wall / ours.wall:.1f}x")
    print(f"  robustpose: read + check (orjson) {read.cpu:.1f}s CPU, hotcoco on lists {engine_only.cpu:.1f}s CPU; "
          f"pycocotools: loadRes {ref_read_cpu:.1f}s CPU, COCOeval {ref_engine_cpu:.1f}s CPU")
    print(f"engine only, CPU time : hotcoco {engine_only.cpu:.1f}s  pycocotools {ref_engine_cpu:.1f}s  "
          f"ratio {ref_engine_cpu / engine_only.cpu:.1f}x")


if __name__ == "__main__":
    main()
