"""A smoke run of every trainer and of ``eval --ckpt``: steps/s and peak memory, on a GPU or, with tiny shapes, on a CPU.

On CUDA (``--device cuda``): ``--steps`` training steps of each trainer in :data:`SMOKE` with the model, input size
and batch of an official ``--preset`` (default ``coco-hrnet-w32-256x192``) and AMP on, on SynthPose images rendered
for the run, then ``eval --ckpt`` of the standard model on a few validation images (clean and one corruption).
Printed per row: steps, steps/s and the peak memory (CUDA: ``torch.cuda.max_memory_allocated``, reset per row; CPU:
the process's peak resident set, which only grows). On the CPU (the default device) the same runs use the tiny
``cpu-synth`` model at 64x64 with batch 2, so ``tests/test_gpu_smoke.py`` can run the script in CI and it cannot rot:
that test fails when a trainer in ``robustpose.train.METHODS`` has no entry here.

Usage::

    bash benchmarks/gpu_smoke.sh --device cuda --work /tmp/smoke            # on a GPU machine
    bash benchmarks/gpu_smoke.sh --steps 3 --work /tmp/smoke                 # CPU, tiny shapes
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from robustpose.corruptions import SEVERITIES
from robustpose.datasets.parts import build_pool, synth_sources
from robustpose.datasets.synthpose import SynthConfig, generate_split
from robustpose.inference import InferenceConfig
from robustpose.inference.evaluate import EvalSpec, evaluate_checkpoint
from robustpose.models import load_checkpoint
from robustpose.train import PRESETS, StandardConfig, StandardMethod, resolve_config, train
from robustpose.train.advmix import AdvMixConfig, AdvMixMethod
from robustpose.train.asda import ASDAConfig, ASDAMethod
from robustpose.train.peng import PengAgentConfig, PengAgentMethod, PengConfig, PengMethod

# trainer -> method factory from the smoke run's folder of runs (standard trains first: the others start from its
# checkpoint; peng-agent before peng, whose agent it is) and whether the run is the tiny CPU one (official widths on
# CUDA, slim auxiliary networks on the CPU); every METHODS key needs one, in an order that satisfies those needs
SMOKE: dict[str, Callable[[Path, bool], object]] = {
    "standard": lambda runs, tiny: partial(StandardMethod, settings=StandardConfig()),
    "advmix": lambda runs, tiny: partial(AdvMixMethod, settings=AdvMixConfig(
        init=str(runs / "standard" / "checkpoint.pth"), gen_width=8 if tiny else 64)),
    "peng-agent": lambda runs, tiny: partial(PengAgentMethod, settings=PengAgentConfig(
        init=str(runs / "standard" / "checkpoint.pth"), mode="asr+aho", agent_width=16 if tiny else 256)),
    "peng": lambda runs, tiny: partial(PengMethod, settings=PengConfig(
        init=str(runs / "standard" / "checkpoint.pth"), agent=str(runs / "peng-agent" / "checkpoint.pth"),
        mode="asr+aho")),
    # the part pool main() exports from the run's SynthPose training images, beside the runs (WORK/parts)
    "asda": lambda runs, tiny: partial(ASDAMethod, settings=ASDAConfig(
        pool=str(runs.parent / "parts"), init=str(runs / "standard" / "checkpoint.pth"), gen_width=8 if tiny else 64)),
}
TINY = {"data": {"input_size": [64, 64], "heatmap_size": [16, 16]}, "batch_size": 2,
        "model": {"arch": "simplebaseline_res18",
                  "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16], "skip_connections": True}}}


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def layers(args: argparse.Namespace, data: Path, out: Path) -> list[dict]:
    """The preset, the tiny shapes on the CPU, and this run's data, length and device."""
    run = {"data": {"dataset": "synth", "root": str(data), "workers": args.workers}, "epochs": 1,
           "device": args.device, "amp": args.device.startswith("cuda"), "out": str(out), "val_every": 1}
    return [PRESETS[args.preset], *([] if args.device.startswith("cuda") else [TINY]), run]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the data and the runs (reused)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--preset", default="coco-hrnet-w32-256x192", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=50, help="training steps per trainer")
    parser.add_argument("--workers", type=int, default=0, help="data loader workers")
    parser.add_argument("--methods", nargs="+", default=list(SMOKE), choices=list(SMOKE))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    probe = resolve_config(*layers(args, args.work / "synthpose", args.work / "probe"))
    data = args.work / "synthpose"
    # about two people per SynthPose image: one epoch of this many images is about --steps steps
    for split, count in (("train", max(1, args.steps * probe.batch_size // 2)), ("val", 4)):
        if not (data / "annotations" / f"person_keypoints_{split}.json").exists():
            generate_split(data, split, count, SynthConfig(), seed=0)

    init = args.work / "runs" / "standard" / "checkpoint.pth"
    if "asda" in args.methods and not (args.work / "parts" / "pool.json").exists():
        build_pool(synth_sources(data), args.work / "parts")
    rows = []
    for name in [m for m in SMOKE if m == "standard" or m in args.methods]:  # SMOKE's order: what each needs first
        out = args.work / "runs" / name
        shutil.rmtree(out, ignore_errors=True)  # a smoke run always measures afresh
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        result = train(resolve_config(*layers(args, data, out)), SMOKE[name](args.work / "runs", device.type != "cuda"))
        rows.append((name, result.timings["steps"], result.timings["steps"] / result.timings["compute_s"],
                     peak_memory_mib(device)))

    spec = EvalSpec(dataset="coco", ann=data / "annotations" / "person_keypoints_val.json", images=data / "images",
                    out=args.work / "eval", corruptions=("gaussian_noise",), severities=(SEVERITIES[2],))
    t = time.perf_counter()
    evaluate_checkpoint(load_checkpoint(init), spec, InferenceConfig(device=args.device, amp=device.type == "cuda"),
                        overwrite=True)
    eval_s = time.perf_counter() - t

    print(f"gpu_smoke on {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU, tiny'}"
          f"; preset {args.preset}{'' if device.type == 'cuda' else ' shapes replaced by 64x64, batch 2'})")
    print("| trainer | steps | steps/s (compute) | peak memory (MiB) |\n|---|---|---|---|")
    for name, n, rate, mem in rows:
        print(f"| {name} | {n} | {rate:.2f} | {mem:.0f} |")
    print(f"eval --ckpt: 4 images x 2 cells (clean, gaussian_noise 3) in {eval_s:.1f} s, "
          f"peak memory {peak_memory_mib(device):.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
