"""``eval --preds`` end to end on one COCO-val-sized mPC table (clean + 15 corruptions x 5 severities = 76 result
files) against pycocotools doing the same 76 evaluations from the same files, in one run.

Each cell gets its own noisy results set (5000 images, ~6350 people, 30k results by default), written in the
predictions layout of ``docs/metrics.md``. Timed, as CPU time of this process (steadier on a shared machine) and
as wall clock:

* **robustpose**: :func:`robustpose.report.evaluate_run` on the folder, i.e. ``eval --preds`` without the CLI:
  reading the ground truth, checking every results file (a typed msgspec decode that leaves the keypoint numbers
  to hotcoco's own parser, numpy counts), scoring (hotcoco), the mPC summary and the report files (csv, json,
  markdown, two plots). Once in this process (``--jobs 1``), and once with ``--jobs N`` worker processes (their
  CPU time counted as well).
* **pycocotools**: per file, what a pycocotools user runs: ``COCO.loadRes(file)`` (Python ``json``), ``COCOeval``
  ``evaluate / accumulate / summarize``; its ground truth indexed once.

The 10 stats of every cell must be identical between the two. Also printed: the engines alone (results already in
memory), as before.

Usage::

    python benchmarks/metrics.py                # the full 76 cells (pycocotools takes ~10-20 min on one core)
    python benchmarks/metrics.py --cells 4      # a quick look (a partial table)
    python benchmarks/metrics.py --jobs 8       # the worker-process run with 8 processes (default: one per core)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import resource
import tempfile
import time
from pathlib import Path

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from robustpose.corruptions import corruption_names
from robustpose.metrics import CocoKeypointEvaluator
from robustpose.metrics.coco import STAT_NAMES, results_file_passes
from robustpose.metrics.synthetic import noisy_keypoint_results, synthetic_coco_keypoints
from robustpose.report import evaluate_run


def children_cpu() -> float:
    """CPU seconds of this process's finished (joined) child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Accumulated wall and CPU seconds of the timed blocks (CPU: this process and the children it joined)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextlib.contextmanager
    def __call__(self):
        w, c = time.perf_counter(), time.process_time() + children_cpu()
        yield
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() + children_cpu() - c


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
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes of the second run")
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

        ours, ours_jobs = Clock(), Clock()
        with ours():
            run = evaluate_run(root, "coco", ann, out=Path(tmp) / "report", backend="hotcoco",
                               partial=len(cells) < 76)
        with ours_jobs():
            run_jobs = evaluate_run(root, "coco", ann, out=Path(tmp) / "report-jobs", backend="hotcoco",
                                    partial=len(cells) < 76, jobs=args.jobs)
        if (run_jobs.clean, run_jobs.cells) != (run.clean, run.cells):
            raise SystemExit(f"--jobs {args.jobs} gave other stats than one process")
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

        # Our parts, for the breakdown: the quick check alone, hotcoco parsing + scoring each file, and hotcoco on
        # the records in memory (as pycocotools' engine-only figure).
        engine, check, from_file, engine_only = CocoKeypointEvaluator(gt_dict, backend="hotcoco"), Clock(), \
            Clock(), Clock()
        image_ids = frozenset(img["id"] for img in gt_dict["images"])
        for _, path in cells:
            with check():
                if not results_file_passes(path.read_bytes(), image_ids):
                    raise SystemExit(f"{path}: the quick check refused a valid file")
            with from_file():
                engine.evaluate(path)
            results = json.loads(path.read_text())
            with engine_only():
                engine.evaluate(results)

    n_people = sum(1 for a in gt_dict["annotations"] if not a["iscrowd"])
    print(f"\n{len(cells)} evaluations, {args.images} images, {n_people} people, {args.results} results each; "
          "all 10 stats identical in every cell")
    print(f"end to end, one process, CPU time : robustpose evaluate_run {ours.cpu:.1f}s  pycocotools {ref.cpu:.1f}s  "
          f"ratio {ref.cpu / ours.cpu:.1f}x")
    print(f"end to end, one process, wall time: robustpose evaluate_run {ours.wall:.1f}s  pycocotools "
          f"{ref.wall:.1f}s  ratio {ref.wall / ours.wall:.1f}x")
    print(f"end to end, --jobs {args.jobs}, wall time   : robustpose evaluate_run {ours_jobs.wall:.1f}s  pycocotools "
          f"{ref.wall:.1f}s  ratio {ref.wall / ours_jobs.wall:.1f}x  (CPU of all processes {ours_jobs.cpu:.1f}s)")
    print(f"  robustpose: quick check {check.cpu:.1f}s CPU, the quick path per file (check, hotcoco's parse "
          f"and scoring) {from_file.cpu:.1f}s CPU; pycocotools: loadRes {ref_read_cpu:.1f}s CPU, COCOeval {ref_engine_cpu:.1f}s CPU")
    print(f"engine only, CPU time : hotcoco {engine_only.cpu:.1f}s  pycocotools {ref_engine_cpu:.1f}s  "
          f"ratio {ref_engine_cpu / engine_only.cpu:.1f}x")


if __name__ == "__main__":
    main()
