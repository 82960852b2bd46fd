"""Standard vs PoseAug lifting on `lift synth` data: in-distribution and shifted-split MPJPE / PA-MPJPE, and the
keypoint-corruption mPC / rPC. The numbers are synthetic (docs/lifting.md): not comparable with published ones.

Protocol (fixed before any result was seen; never tuned for a method):

1. ``lift synth`` with 5 training subjects x 600 poses x 4 cameras (12,000 pairs), 1 validation subject and 2
   subjects in each test split (test, test-pose, test-view, test-body) x 500 poses x 4 cameras, data seed 0.
2. Per seed: pre-train a Martinez lifter (width 256, 2 residual stages, dropout 0.5) for 20 epochs, batch 64, Adam
   1e-3 (``lift train standard``); its val-selected ``best.pth`` is the start of both arms.
3. From it, 10 epochs at lifter learning rate 1e-4 (PoseAug's), batch 64, each arm: ``standard`` (real pairs only)
   and ``poseaug`` (official settings: warm-up 2, D every 2 G steps, pool 4096, dead-zone feedback, bone-length
   swap; the augmentor and discriminators at the notes' CPU sizes: G width 64, noise 16, D width 32).
4. Evaluate each arm's val-selected ``best.pth`` and its final weights (``checkpoint.pth``): every test split, and
   the 5 corruptions x 5 severities on ``test`` (corruption seed 0).

Seeds 0 and 1.

Added **after** the first results (post hoc, so read it as such): in both seeds PoseAug's RT translation, the new
root position of the notes' formula, collapsed towards the camera (median root depth about 1.9 m against 5 m in the
data; half the augmented poses out of frame). A third arm, ``poseaug[rt_translation=offset]`` (run folder
``poseaug-offset``), repeats the PoseAug arm with RT's translation added to the original root, everything else the
same. Its rows are labelled post hoc.

Usage::

    nice -n 10 python benchmarks/lift_synth.py --work /work/runs/issue15/lift_synth          # ~25 min, 1 thread
    python benchmarks/lift_synth.py --work /tmp/smoke --train-frames 20 --test-frames 10 --pretrain-epochs 1 \\
        --epochs 3 --seeds 0                                                                    # a smoke run

Stages already finished in ``--work`` are reused, so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustpose.lift.data import resolve_data
from robustpose.lift.engine import LiftConfig, load_lift_checkpoint, load_lifter, train_lift
from robustpose.lift.evaluate import evaluate_lifter, write_summary
from robustpose.lift.methods import LIFT_METHODS
from robustpose.lift.synth import LiftSynthConfig, write_synth

POSEAUG_CPU = {"g_width": 64, "noise": 16, "d_width": 32}
# arm label -> (method, run folder, extra settings); the last one was added after the first results (see above).
ARMS = {"standard": ("standard", "standard", {}), "poseaug": ("poseaug", "poseaug", POSEAUG_CPU),
        "poseaug[rt_translation=offset] (post hoc)": ("poseaug", "poseaug-offset",
                                                      {**POSEAUG_CPU, "rt_translation": "offset"})}
SPLITS = ("test", "test-pose", "test-view", "test-body")


def run(config: LiftConfig) -> float:
    """Train (or reuse a finished run); returns the wall seconds spent now."""
    out = Path(config.out)
    t = time.perf_counter()
    if (out / "checkpoint.pth").exists():
        state = load_lift_checkpoint(out / "checkpoint.pth")
        if state["train_state"]["epoch"] + 1 >= config.epochs:
            return 0.0
        train_lift(config, LIFT_METHODS, resume=True)
    else:
        train_lift(config, LIFT_METHODS)
    return time.perf_counter() - t


def evaluate(ckpt: Path, data: Path, out: Path) -> tuple[dict[str, Any], float]:
    t = time.perf_counter()
    if (out / "summary.json").exists():
        return json.loads((out / "summary.json").read_text()), 0.0
    lifter, meta = load_lifter(ckpt)
    summary = evaluate_lifter(lifter, resolve_data(data), run={"ckpt": str(ckpt), "method": meta["training_method"],
                                                               "arch": meta["arch"]})
    write_summary(summary, out)
    return summary, time.perf_counter() - t


def row(summary: dict[str, Any]) -> dict[str, float]:
    out = {}
    for split in SPLITS:
        out[f"{split} MPJPE"] = summary["splits"][split]["MPJPE"]
        out[f"{split} PA"] = summary["splits"][split]["PA-MPJPE"]
    out.update({"mPC": summary["mPC"], "rPC": summary["rPC"], "mPC PA": summary["mPC_PA"],
                "rPC PA": summary["rPC_PA"]})
    return out


def table(results: dict[str, dict[int, dict[str, float]]], title: str) -> str:
    """Markdown: one row per arm, mean over seeds with the per-seed values in brackets."""
    keys = list(next(iter(next(iter(results.values())).values())))
    lines = [f"### {title}", "", "| arm | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for arm, by_seed in results.items():
        cells = []
        for k in keys:
            values = [by_seed[s][k] for s in sorted(by_seed)]
            cells.append(f"{np.mean(values):.1f} ({' / '.join(f'{v:.1f}' for v in values)})")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--train-frames", type=int, default=600)
    ap.add_argument("--test-frames", type=int, default=500)
    ap.add_argument("--pretrain-epochs", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work
    data = work / "data"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not (data / "splits.json").exists():
        write_synth(data, LiftSynthConfig(train_frames=args.train_frames, test_frames=args.test_frames))
    common = {"data": str(data), "arch": "martinez", "arch_kwargs": {"width": 256}, "batch_size": 64,
              "device": "cpu", "threads": args.threads}
    best: dict[str, dict[int, dict[str, float]]] = {}
    final: dict[str, dict[int, dict[str, float]]] = {}
    selected: dict[str, dict[int, int]] = {}
    for seed in args.seeds:
        root = work / f"seed{seed}"
        pre = LiftConfig(**common, epochs=args.pretrain_epochs, lr=1e-3, seed=seed, out=str(root / "pretrain"))
        timings[f"seed{seed} pretrain"] = run(pre)
        init = str(root / "pretrain" / "best.pth")
        summary, timings[f"seed{seed} eval pretrain"] = evaluate(Path(init), data, root / "pretrain" / "eval-best")
        best.setdefault("init (pre-trained)", {})[seed] = row(summary)
        for arm, (method, folder, settings) in ARMS.items():
            cfg = LiftConfig(**common, epochs=args.epochs, lr=1e-4, seed=seed, out=str(root / folder), method=method,
                             method_settings={"init": init, **settings})
            timings[f"seed{seed} {folder}"] = run(cfg)
            for which, results in (("best", best), ("checkpoint", final)):
                summary, timings[f"seed{seed} eval {folder} {which}"] = evaluate(
                    root / folder / f"{which}.pth", data, root / folder / f"eval-{which}")
                results.setdefault(arm, {})[seed] = row(summary)
            selected.setdefault(folder, {})[seed] = int(load_lift_checkpoint(root / folder / "best.pth")["epoch"])
    timings["total"] = time.perf_counter() - t0
    report = "\n\n".join([
        table(best, "Val-selected weights (best.pth): MPJPE / PA-MPJPE per split, keypoint-corruption mPC / rPC on "
                    "test; mm and %"),
        table(final, "Final weights (checkpoint.pth)"),
        "Selected epochs (best.pth, 0-based; -1: the pre-trained start; epochs 0-1 of PoseAug are its warm-up, where the "
        "lifter does not change): " + "; ".join(f"{arm} {sel}" for arm, sel in selected.items()),
        "Wall seconds of this invocation (0 = reused): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
    ])
    (work / "results.md").write_text(report + "\n")
    (work / "results.json").write_text(json.dumps({"best": best, "final": final, "selected": selected,
                                                   "timings": timings, "args": vars(args) | {"work": str(work)}},
                                                  indent=1))
    print(report)


if __name__ == "__main__":
    main()
