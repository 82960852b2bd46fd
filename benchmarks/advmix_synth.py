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
import json
import time
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.datasets.build_c import BuildConfig, build_c
from robustpose.datasets.synthpose import SynthConfig, generate_split
from robustpose.inference import InferenceConfig
from robustpose.inference.evaluate import EvalSpec, evaluate_checkpoint
from robustpose.datasets.keypoints import COCO
from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, load_checkpoint, torch_load
from robustpose.report.evaluate import evaluate_run
from robustpose.report.leaderboard import build_leaderboard, leaderboard_markdown
from robustpose.report.render import markdown_table
from robustpose.train import PRESETS, Callbacks, StandardConfig, StandardMethod, TrainConfig, resolve_config, train
from robustpose.train.advmix.method import KD_INPUTS
from robustpose.train.advmix import (
    LEARNED,
    MIXERS,
    AdvMixConfig,
    AdvMixMethod,
    MixGenerator,
    auto_depth,
    make_views,
    mix,
    mix_weights,
    sample_views,
    view_kinds,
)
from robustpose.train.data import TopDownDataset, read_samples

PRESET = "cpu-synth"


def synth_data(root: Path, n_train: int, n_val: int, seed: int) -> None:
    """Render the SynthPose splits under ``root`` unless they are there."""
    for split, count in (("train", n_train), ("val", n_val)):
        if not (root / "annotations" / f"person_keypoints_{split}.json").exists():
            generate_split(root, split, count, SynthConfig(), seed)


def config_for(data_root: Path, out: Path, epochs: int, seed: int, scale_schedule: bool) -> TrainConfig:
    """The preset with this run's data, length and seed (milestones scaled to ``epochs`` when fine-tuning)."""
    preset = PRESETS[PRESET]
    layer = {"data": {"root": str(data_root)}, "epochs": epochs, "seed": seed, "device": "cpu", "out": str(out)}
    if scale_schedule:
        full = preset["epochs"]
        layer["optim"] = {"milestones": [max(1, round(m * epochs / full)) for m in preset["optim"]["milestones"]]}
    return resolve_config(preset, layer)


def factory(method: str, init: Path, gen_width: int, probe_every: int, kd_input: str = "mix"):
    if method == "standard":
        return partial(StandardMethod, settings=StandardConfig(init=str(init)))
    settings = AdvMixConfig(init=str(init), mixer=method, gen_width=gen_width, kd_input=kd_input,
                            probe_every=probe_every if method in LEARNED else 0)
    return partial(AdvMixMethod, settings=settings)


def label(method: str, kd_input: str) -> str:
    """The method's name in the tables and its run folder: AdvMix methods get ``[kd_input=clean]`` for the paper's
    distillation variant."""
    return method if method == "standard" or kd_input == "mix" else f"{method}[kd_input={kd_input}]"


def evaluate(ckpt: Path, spec: EvalSpec, complete: bool) -> dict:
    """Predict every cell with ``ckpt``, score it, return its summary."""
    evaluate_checkpoint(load_checkpoint(ckpt), spec, InferenceConfig(flip_test=False, device="cpu", batch_size=64))
    evaluate_run(spec.out, "coco", spec.ann, out=spec.out, partial=not complete)
    return json.loads((spec.out / "summary.json").read_text())


def mix_figure(run: Path, data_root: Path, png: Path, n: int = 4, seed: int = 0) -> Path:
    """Views, mix and per-view weight maps of the trained generator in ``run`` (and of a freshly initialised one)
    on ``n`` validation crops: the picture in docs/advmix.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    show = lambda x: (x * std[0] + mean[0]).clamp(0, 1).permute(1, 2, 0).numpy()  # noqa: E731
    cols = [*(f"view: {k}" for k in kinds), "mix (trained G)",
            *(f"w_{k} trained" for k in kinds), *(f"w_{k} fresh G" for k in kinds)]
    fig, axes = plt.subplots(len(images), len(cols), figsize=(1.3 * len(cols), 1.9 * len(images)), squeeze=False)
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
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="working folder (data, runs, evaluations, tables)")
    parser.add_argument("--train", type=int, default=2000, help="SynthPose training images")
    parser.add_argument("--val", type=int, default=200, help="SynthPose validation images")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--standard", type=Path, default=None, help="standard checkpoint (default: train one)")
    parser.add_argument("--standard-epochs", type=int, default=PRESETS[PRESET]["epochs"])
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs, the same for every method")
    parser.add_argument("--methods", nargs="+", default=["standard", *MIXERS],
                        choices=["standard", *MIXERS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--gen-width", type=int, default=16, help="AdvMix generator width (official: 64)")
    parser.add_argument("--kd-input", choices=KD_INPUTS, default="mix",
                        help="AdvMix methods: the student's input in the distillation term (mix: the official code; "
                             "clean: the paper's figure)")
    parser.add_argument("--corruptions", nargs="+", default=list(corruption_names("benchmark")))
    parser.add_argument("--severities", type=int, nargs="+", default=list(SEVERITIES))
    parser.add_argument("--probe-every", type=int, default=10,
                        help="learned mixers: log the pose loss on the equal mix every N steps (steps.csv)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also write the views / mix / weight-map picture of the first learned-mixer run here")
    args = parser.parse_args()
    complete = sorted(args.corruptions) == sorted(corruption_names("benchmark")) and \
        sorted(args.severities) == list(SEVERITIES)

    work = args.work
    data = work / "synthpose"
    synth_data(data, args.train, args.val, args.data_seed)
    val_ann = data / "annotations" / "person_keypoints_val.json"
    data_c = work / "synthpose-C"
    build_c(BuildConfig(out=data_c, images_dir=data / "images", dataset="coco", ann_file=val_ann,
                        corruptions=tuple(args.corruptions), severities=tuple(args.severities)))

    init = args.standard
    if init is None:
        init = work / "runs" / "standard-scratch" / "checkpoint.pth"
        if not init.exists():
            train(config_for(data, init.parent, args.standard_epochs, 0, scale_schedule=False), StandardMethod)

    rows, evals = [], []
    for method in args.methods:
        for seed in args.seeds:
            name = f"{label(method, args.kd_input)}-s{seed}"
            out = work / "runs" / name
            if not (out / "checkpoint.pth").exists():
                steps: list[dict] = []
                on_step = lambda epoch, step, logs: steps.append({"epoch": epoch, "step": step, **logs})  # noqa: E731
                t = time.perf_counter()
                result = train(config_for(data, out, args.epochs, seed, scale_schedule=True),
                               factory(method, init, args.gen_width, args.probe_every, args.kd_input),
                               callbacks=Callbacks(on_step=on_step))
                timing = {**result.timings, "wall_s": time.perf_counter() - t}
                (out / "timing.json").write_text(json.dumps(timing))
                pd.DataFrame(steps).to_csv(out / "steps.csv", index=False)
            timing = json.loads((out / "timing.json").read_text())
            spec = EvalSpec(dataset="coco", ann=val_ann, images=data / "images", out=work / "eval" / name,
                            corruptions=tuple(args.corruptions), severities=tuple(args.severities), data_c=data_c)
            summary = evaluate(out / "checkpoint.pth", spec, complete)
            evals.append(spec.out)
            rows.append({"method": label(method, args.kd_input), "seed": seed, "clean_AP": summary["clean"]["AP"],
                         "mPC": summary["mPC"], "rPC": summary["rPC"], "steps_per_s": timing["steps"] / timing["compute_s"]})

    runs = pd.DataFrame(rows)
    table = runs.groupby("method", sort=False).agg(seeds=("seed", "count"), clean_AP=("clean_AP", "mean"),
                                                   mPC=("mPC", "mean"), rPC=("rPC", "mean"),
                                                   steps_per_s=("steps_per_s", "mean"))
    if "standard" in table.index:
        base = table.loc["standard"]
        table["d_clean_AP"] = table["clean_AP"] - base["clean_AP"]
        table["d_mPC"] = table["mPC"] - base["mPC"]
        table["step_time_ratio"] = base["steps_per_s"] / table["steps_per_s"]
    leaderboard = leaderboard_markdown(build_leaderboard(evals))
    report = (f"# AdvMix on SynthPose ({PRESET}; {args.train} train / {args.val} val images; standard "
              f"{args.standard_epochs} epochs, then {args.epochs} fine-tuning epochs per method; seeds "
              f"{args.seeds}; {'15 x 5 corruptions' if complete else 'PARTIAL corruption set'})\n\n"
              f"## Per method (mean over seeds; d_ = difference from standard fine-tuning)\n\n"
              f"{markdown_table(table)}\n\n## Per run\n\n{markdown_table(runs.set_index('method'))}\n\n"
              f"## Leaderboard\n\n{leaderboard}\n")
    stem = "advmix_synth" if args.kd_input == "mix" else f"advmix_synth_kd-{args.kd_input}"
    (work / f"{stem}.md").write_text(report)
    runs.to_csv(work / f"{stem}_runs.csv", index=False)
    print(report)
    learned = [m for m in args.methods if m in LEARNED]
    if args.figure and learned:
        run = work / "runs" / f"{label(learned[0], args.kd_input)}-s{args.seeds[0]}"
        print(f"wrote {mix_figure(run, data, args.figure)}")


if __name__ == "__main__":
    main()
