"""Training throughput on CPU: steps/s and the share of time spent waiting for data vs computing.

Usage:
    python benchmarks/train.py --data-root DIR [--steps 30] [--batch-size 32] [--threads 1] [--workers 1]

``DIR`` is a ``robustpose synth`` folder (``robustpose synth --out DIR --train 200 --val 20`` is enough). The
benchmark uses the ``cpu-synth`` preset's model and crops and the engine's own data loader set-up, times ``--steps``
standard steps after ``--warmup`` untimed ones, and prints one line per setting plus a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import cv2
import torch
from torch.utils.data import DataLoader

from robustpose.models import create_model
from robustpose.train import PRESETS, StandardMethod, resolve_config
from robustpose.train.engine import build_datasets, epoch_order, init_loader_worker, to_device


def measure(data_root: str, steps: int, warmup: int, batch_size: int, threads: int, workers: int,
            channels_last: bool = True) -> dict[str, float]:
    """Seconds per step, split into waiting for the loader and computing (forward, loss, backward, Adam)."""
    config = resolve_config(PRESETS["cpu-synth"], {"data": {"root": data_root, "workers": workers},
                                                   "batch_size": batch_size, "threads": threads,
                                                   "channels_last": channels_last, "out": "unused"})
    torch.set_num_threads(threads)
    # OpenCV's thread pool, once used here (the workers=0 rows), deadlocks forked loader workers: one thread.
    cv2.setNumThreads(1)
    train_set, _, _ = build_datasets(config)
    device = torch.device("cpu")
    model = create_model(config.model.arch, num_joints=17, **config.model.kwargs)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    method = StandardMethod(model, config, device)
    order = (epoch_order(len(train_set), 0, 0) * (1 + (steps + warmup) * batch_size // len(train_set)))
    loader = DataLoader(train_set, batch_size=batch_size, sampler=order[: (steps + warmup) * batch_size],
                        num_workers=workers, worker_init_fn=init_loader_worker, drop_last=True)
    data_s = compute_s = 0.0
    t0 = time.perf_counter()
    for i, batch in enumerate(loader):
        t1 = time.perf_counter()
        method.step(to_device(batch, device, channels_last))
        t2 = time.perf_counter()
        if i >= warmup:
            data_s += t1 - t0
            compute_s += t2 - t1
        t0 = time.perf_counter()
    total = data_s + compute_s
    return {"steps_per_s": steps / total, "samples_per_s": steps * batch_size / total,
            "data_share": data_s / total, "compute_share": compute_s / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="a robustpose synth folder")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads to try")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="loader workers to try")
    parser.add_argument("--layouts", nargs="+", choices=("nhwc", "nchw"), default=["nhwc", "nchw"],
                        help="memory layouts to try (nhwc: the engine's default channels_last)")
    args = parser.parse_args()
    rows = []
    for layout in args.layouts:
        for threads in args.threads:
            for workers in args.workers:
                r = measure(args.data_root, args.steps, args.warmup, args.batch_size, threads, workers,
                            channels_last=layout == "nhwc")
                rows.append((layout, threads, workers, r))
                print(f"layout={layout} threads={threads} workers={workers}: {r['steps_per_s']:.3f} steps/s "
                      f"({r['samples_per_s']:.1f} samples/s), data {r['data_share']:.0%}, "
                      f"compute {r['compute_share']:.0%}", flush=True)
    print("\n| layout | threads | workers | steps/s | samples/s | data | compute |\n|---|---|---|---|---|---|---|")
    for layout, threads, workers, r in rows:
        print(f"| {layout} | {threads} | {workers} | {r['steps_per_s']:.3f} | {r['samples_per_s']:.1f} "
              f"| {r['data_share']:.0%} | {r['compute_share']:.0%} |")


if __name__ == "__main__":
    main()
