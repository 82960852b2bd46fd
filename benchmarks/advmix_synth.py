"""AdvMix vs standard training on SynthPose, on the CPU preset: one leaderboard of clean AP and mPC.

1. Render SynthPose (``robustpose synth``) and build the corrupted validation set once (``build-c``).
2. Train a standard model from scratch with the ``cpu-synth`` preset (or take ``--standard CKPT``).
3. From that checkpoint, fine-tune every method for the same number of epochs (same data order, same schedule: the
   preset's learning rate and its milestones scaled to the fine-tuning length): ``standard`` (plain fine-tuning),
   ``advmix`` and the ablation mixers (``advmix-image``, ``equal``, ``dirichlet``, ``sequential``), for each seed.
4. Evaluate each run's final weights (no checkpoint selection) on clean + 15 corruptions x 5 severities with ground
   truth boxes, and write one leaderboard plus a per-method table (mean over seeds, difference from standard), and
   the training-step overhead of each method (steps/s ratio to standard fine-tuning). Learned mixers also log,
   every ``--probe-every`` steps, the pose loss on the generator's mix and on the equal mix of the same views
   (``runs/<run>/steps.csv``; the two extra forward passes are counted in their step time).

Nothing here is tuned for AdvMix: the preset, SynthPose and the evaluation are the project's defaults; the only
AdvMix-specific choice is the generator width (``--gen-width``, 16 by default instead of 64, to fit a CPU).
``--kd-input clean`` runs the AdvMix methods with the paper's distillation variant instead of the code's (their runs
and tables are named ``advmix[kd_input=clean]``, the report ``advmix_synth_kd-clean.md``).

Usage::

    python benchmarks/advmix_synth.py --work runs/advmix_synth                  # the full benchmark (hours on a CPU)
    python benchmarks/advmix_synth.py --work /tmp/smoke --train 64 --val 8 --standard-epochs 1 --epochs 1 \\
        --methods standard advmix --seeds 0 --corruptions gaussian_noise --severities 3   # a smoke run
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from trainers_synth import protocol_arguments, run_rows

from robustpose.datasets.keypoints import COCO
from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, torch_load
from robustpose.train.advmix import (
    LEARNED,
    MIXERS,
    AdvMixConfig,
    MixGenerator,
    auto_depth,
    make_views,
    mix,
    mix_weights,
    sample_views,
    view_kinds,
)
from robustpose.train.advmix.method import KD_INPUTS
from robustpose.train.data import TopDownDataset, read_samples


def label(method: str, kd_input: str) -> str:
    """The method's row in ``trainers_synth.ROWS`` and its run folder: AdvMix methods get ``[kd_input=clean]`` for
    the paper's distillation variant."""
    return method if method == "standard" or kd_input == "mix" else f"{method}[kd_input={kd_input}]"


def mix_figure(run: Path, data_root: Path, png: Path, n: int = 4, seed: int = 0) -> Path:
    """Views, mix and per-view weight maps of the trained generator in ``run`` (and of a freshly initialised one)
    on ``n`` validation crops: the picture in docs/advmix.md."""
    from matplotlib.figure import Figure

    from robustpose.report.render import save_png

    state = torch_load(run / "checkpoint.pth")
    size = tuple(state["config"]["data"]["input_size"])
    method = state["train_state"]["method"]
    settings = AdvMixConfig(**method["settings"])
    depth = settings.gen_depth or auto_depth(size)
    trained = MixGenerator(settings.views, depth, settings.gen_width)
    trained.load_state_dict(method["generator"])
    torch.manual_seed(seed)
    fresh = MixGenerator(settings.views, depth, settings.gen_width)
    hm = tuple(state["config"]["data"]["heatmap_size"])
    samples = read_samples("synth", data_root / "annotations" / "person_keypoints_val.json", data_root / "images",
                           size[1] / size[0])
    crops = TopDownDataset(samples[:n], COCO, size, hm, 2.0, None)
    images = torch.stack([crops[i]["image"] for i in range(len(crops))])
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    kinds = view_kinds(settings.views)
    params = sample_views(kinds, len(images), size, gridmask_p=settings.gridmask_p,
                          generator=torch.Generator().manual_seed(seed))
    views = make_views(images, kinds, params, mean.flatten(), std.flatten(), gridmask_ratio=settings.gridmask_ratio)
    with torch.no_grad():
        weights = {"trained": mix_weights(settings.mixer, views, trained.eval()),
                   "fresh": mix_weights(settings.mixer, views, fresh.eval())}
    show = lambda x: (x * std[0] + mean[0]).clamp(0, 1).permute(1, 2, 0).numpy()
    cols = [*(f"view: {k}" for k in kinds), "mix (trained G)",
            *(f"w_{k} trained" for k in kinds), *(f"w_{k} fresh G" for k in kinds)]
    fig = Figure(figsize=(1.3 * len(cols), 1.9 * len(images)))
    axes = fig.subplots(len(images), len(cols), squeeze=False)
    for r in range(len(images)):
        panels = [show(views[r, i]) for i in range(len(kinds))] + [show(mix(views, weights["trained"])[r])]
        panels += [weights[g][r, i].numpy() for g in ("trained", "fresh") for i in range(len(kinds))]
        for c, (ax, panel) in enumerate(zip(axes[r], panels)):
            ax.imshow(panel, vmin=0, vmax=1, cmap=None if panel.ndim == 3 else "viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=6)
    fig.suptitle(f"{run.name}: {settings.run_name()}; weight maps in [0, 1] (viridis)", fontsize=8)
    fig.tight_layout()
    save_png(fig, png)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    protocol_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=["standard", *MIXERS], choices=["standard", *MIXERS])
    parser.add_argument("--kd-input", choices=KD_INPUTS, default="mix",
                        help="AdvMix methods: the student's input in the distillation term (mix: the official code; "
                             "clean: the paper's figure)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also write the views / mix / weight-map picture of the first learned-mixer run here")
    args = parser.parse_args()
    stem = "advmix_synth" if args.kd_input == "mix" else f"advmix_synth_kd-{args.kd_input}"
    run_rows(args, [label(m, args.kd_input) for m in args.methods], stem, "AdvMix on SynthPose")
    learned = [m for m in args.methods if m in LEARNED]
    if args.figure and learned:
        run = args.work / "runs" / f"{label(learned[0], args.kd_input)}-s{args.seeds[0]}"
        print(f"wrote {mix_figure(run, args.work / 'synthpose', args.figure)}")


if __name__ == "__main__":
    main()
