"""ASDA's cost against standard training: training-step time (compute only, the same preloaded batches) and the
loader-side cost of the paster, as ratios to standard, measured interleaved so that a busy machine's load hits
every method alike.

Methods: ``standard``, ``asda[random=True]`` (paste, no generator), ``asda`` at generator width 16 (the CPU rows)
and, with ``--width64``, at the official 64. The pose net is the ``cpu-synth`` preset's.

Usage::

    python benchmarks/asda_step.py --data-root data/synthpose --pool data/synth_parts --steps 20 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from robustpose.datasets.parts import TYPE_NAMES, load_pool
from robustpose.models import create_model
from robustpose.train import PRESETS, ASDAConfig, ASDAMethod, StandardMethod, resolve_config
from robustpose.train.asda import PartPaster
from robustpose.train.engine import build_datasets, to_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20, help="steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is shown)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width64", action="store_true", help="also the official generator width")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = resolve_config(PRESETS["cpu-synth"], {"data": {"root": str(args.data_root)}, "device": "cpu",
                                                   "out": "/tmp/asda_step", "threads": args.threads})
    train_set, _, _ = build_datasets(config)
    size = tuple(config.data.input_size)
    pool = load_pool(args.pool)
    paster = PartPaster(pool, size, TYPE_NAMES)
    n = config.batch_size * args.steps

    # loader side: crops alone, then crops + paster, on the same samples
    times = {"crop": [], "crop+paste": []}
    items = []
    for _ in range(args.rounds):
        for label, extras in (("crop", None), ("crop+paste", paster)):
            train_set.extras = extras
            t = time.perf_counter()
            got = [train_set[i] for i in range(n)]
            times[label].append(time.perf_counter() - t)
            if extras is not None:
                items = got
    batches = [to_device({k: torch.stack([it[k] for it in items[b:b + config.batch_size]]) for k in items[0]},
                         torch.device("cpu"), config.channels_last) for b in range(0, n, config.batch_size)]

    methods = {"standard": lambda m: StandardMethod(m, config, torch.device("cpu"))}
    variants = {"asda[random=True]": {"random": True}, "asda (gen width 16)": {"gen_width": 16}}
    if args.width64:
        variants["asda (gen width 64)"] = {"gen_width": 64}
    for label, settings in variants.items():
        methods[label] = lambda m, s=settings: ASDAMethod(m, config, torch.device("cpu"),
                                                          settings=ASDAConfig(pool=str(args.pool), **s))
    built = {}
    for label, make in methods.items():
        model = create_model(config.model.arch, num_joints=17, **config.model.kwargs)
        built[label] = make(model.to(memory_format=torch.channels_last))
    step_s: dict[str, list[float]] = {label: [] for label in built}
    for _ in range(args.rounds):
        for label, method in built.items():
            method.step(batches[0])  # warm-up
            t = time.perf_counter()
            for batch in batches:
                method.step(batch)
            step_s[label].append((time.perf_counter() - t) / len(batches))
    base = statistics.median(step_s["standard"])
    print(f"{args.steps} steps x {args.rounds} rounds, batch {config.batch_size}, {size[0]}x{size[1]}, "
          f"{args.threads} thread(s); medians")
    print("| step | s/step | x standard |\n|---|---|---|")
    for label, values in step_s.items():
        print(f"| {label} | {statistics.median(values):.3f} | {statistics.median(values) / base:.2f} |")
    crop, both = statistics.median(times["crop"]) / n, statistics.median(times["crop+paste"]) / n
    print(f"\nloader: {1e3 * crop:.2f} ms per crop, {1e3 * both:.2f} ms with the paster ({both / crop:.2f}x)")


if __name__ == "__main__":
    main()
