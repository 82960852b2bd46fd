"""Every trainer against standard training on SynthPose, one protocol: one leaderboard of clean AP, mPC and step cost.

1. Render SynthPose (``--train``/``--val`` images, ``--data-seed``) and build its corrupted validation set once.
2. Train a standard model from scratch with the ``cpu-synth`` preset (or take ``--standard CKPT``).
3. From that checkpoint, fine-tune each row of ``ROWS`` (``--rows`` picks them) for the same number of epochs, for
   each seed: the same data, data order, crop augmentation and schedule (the preset's learning rate with its
   milestones scaled to the fine-tuning length) for every row.
4. Evaluate each run's final weights (no checkpoint selection) on clean + 15 corruptions x 5 severities with
   ground-truth boxes, no flip test, DARK decoding, and write one leaderboard (``<stem>.md``, ``<stem>_runs.csv``):
   per row the mean and spread (min-max) over seeds, the difference from standard fine-tuning, the training-step
   time relative to standard, and the wall time; ``<stem>_rows.png`` draws it, and ``<stem>/`` holds the
   leaderboard of every run (CSV, Markdown, PNG, HTML).

A finished run (its ``checkpoint.pth``) and a finished evaluation (its ``summary.json``) are reused, so the
benchmark can be spread over several sittings: rerun with other ``--rows`` into the same ``--work`` and the table
covers every row asked for. The protocol is the module's defaults and is the same for every row; a row only names a
trainer and that trainer's own settings (the AdvMix and ASDA generator widths are 16 instead of 64 to fit a CPU;
ASDA's part pool is exported once from the SynthPose training images into ``work/parts``).

A row is a function of a :class:`RowContext` returning the method factory ``train`` takes; a trainer adds its rows to
``ROWS`` with one entry each.

Usage::

    python benchmarks/trainers_synth.py --work runs/trainers --standard runs/synth/best.pth   # every row, 2 seeds
    python benchmarks/trainers_synth.py --work /tmp/smoke --train 64 --val 8 --standard-epochs 1 --epochs 1 \\
        --rows standard equal --seeds 0 --corruptions gaussian_noise --severities 3            # a smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.datasets.build_c import BuildConfig, build_c
from robustpose.datasets.parts import build_pool, synth_sources
from robustpose.datasets.synthpose import SynthConfig, generate_split
from robustpose.inference import InferenceConfig
from robustpose.inference.evaluate import EvalSpec, evaluate_checkpoint
from robustpose.models import load_checkpoint
from robustpose.report.evaluate import evaluate_run
from robustpose.report.html import leaderboard_html
from robustpose.report.leaderboard import build_leaderboard, leaderboard_markdown, write_leaderboard
from robustpose.report.render import markdown_table
from robustpose.train import (
    PRESETS,
    Callbacks,
    StandardConfig,
    StandardMethod,
    TrainConfig,
    resolve_config,
    train,
)
from robustpose.train.advmix import LEARNED, MIXERS, AdvMixConfig, AdvMixMethod
from robustpose.train.asda import ASDAConfig, ASDAMethod
from robustpose.train.peng import MODES as PENG_MODES
from robustpose.train.peng import (
    PengAgentConfig,
    PengAgentMethod,
    PengConfig,
    PengMethod,
)

PRESET = "cpu-synth"


@dataclass(frozen=True)
class RowContext:
    """What a row may use to build its method: the standard checkpoint it starts from, the SynthPose root, the
    working folder (for anything a row prepares once, such as a pre-trained agent), the seed, and the options."""

    init: Path
    data: Path
    work: Path
    seed: int
    gen_width: int = 16
    probe_every: int = 10
    threads: int = 0


def standard_row(ctx: RowContext):
    return partial(StandardMethod, settings=StandardConfig(init=str(ctx.init)))


def advmix_row(mixer: str, **overrides) -> Callable[[RowContext], object]:
    """A row for one AdvMix mixer; ``overrides`` are named AdvMix settings that differ from the official code's
    (e.g. ``kd_input="clean"``, the paper's figure), for the rows that test a hypothesis."""

    def row(ctx: RowContext):
        settings = AdvMixConfig(init=str(ctx.init), mixer=mixer, gen_width=ctx.gen_width,
                                probe_every=ctx.probe_every if mixer in LEARNED else 0, **overrides)
        return partial(AdvMixMethod, settings=settings)

    return row


# Hypotheses about the learned mixer's loss of clean accuracy (docs/advmix.md), each one named AdvMix setting, fixed
# before their runs: a 10x slower generator, a 5x heavier distillation term.
ADVMIX_HYPOTHESES = {"advmix[gen_lr=0.0001]": {"gen_lr": 1e-4}, "advmix[alpha=0.5]": {"alpha": 0.5}}


# Peng et al.'s agent for the rows: pre-trained once from the standard checkpoint with this fixed budget (both heads,
# seed 0, the preset's data and batch), then shared by the asr, aho and asr+aho rows of every seed. The trunk width is
# 32 instead of the code's 256 to fit a CPU (at 256 the agent would cost more than the pose net).
PENG_AGENT = {"mode": "asr+aho", "agent_width": 32, "samples_per_epoch": 2048, "epochs": 1}


def peng_agent(ctx: RowContext) -> Path:
    """The rows' pre-trained agent (``<work>/runs/peng-agent/checkpoint.pth``), trained by :data:`PENG_AGENT` unless
    it is there."""
    out = ctx.work / "runs" / "peng-agent"
    if not (out / "checkpoint.pth").exists():
        budget = {k: v for k, v in PENG_AGENT.items() if k != "epochs"}
        config = config_for(ctx.data, out, PENG_AGENT["epochs"], 0, scale_schedule=False, threads=ctx.threads or None)
        steps: list[dict] = []
        t = time.perf_counter()
        train(config, partial(PengAgentMethod, settings=PengAgentConfig(init=str(ctx.init), **budget)),
              callbacks=Callbacks(on_step=lambda epoch, step, logs: steps.append({"epoch": epoch, "step": step,
                                                                                   **logs})))
        (out / "timing.json").write_text(json.dumps({"wall_s": time.perf_counter() - t}))
        pd.DataFrame(steps).to_csv(out / "steps.csv", index=False)
    return out / "checkpoint.pth"


def peng_row(mode: str) -> Callable[[RowContext], object]:
    """A row for one Peng et al. mode with the method's defaults (``random`` needs no agent)."""

    def row(ctx: RowContext):
        agent = "" if mode == "random" else str(peng_agent(ctx))
        return partial(PengMethod, settings=PengConfig(init=str(ctx.init), agent=agent, mode=mode))

    return row


def part_pool(ctx: RowContext) -> Path:
    """ASDA's part pool, exported once from the SynthPose *training* images (``robustpose parts synth``; the
    validation images never feed it) into ``work/parts``."""
    pool = ctx.work / "parts"
    if not (pool / "pool.json").exists():
        build_pool(synth_sources(ctx.data), pool)
    return pool


def asda_row(random: bool) -> Callable[[RowContext], object]:
    """A row for ASDA (``random``: the SDA-random baseline); the generator width is ``--gen-width`` (the official
    ResNet-18 has 64), the generator is saved every epoch for docs/asda.md's figures (it changes nothing else)."""

    def row(ctx: RowContext):
        settings = ASDAConfig(pool=str(part_pool(ctx)), init=str(ctx.init), random=random, gen_width=ctx.gen_width,
                              snapshot=not random)
        return partial(ASDAMethod, settings=settings)

    return row


ROWS: dict[str, Callable[[RowContext], object]] = {
    "standard": standard_row,
    **{mixer: advmix_row(mixer) for mixer in MIXERS},
    **{f"{mixer}[kd_input=clean]": advmix_row(mixer, kd_input="clean") for mixer in MIXERS},
    **{name: advmix_row("advmix", **overrides) for name, overrides in ADVMIX_HYPOTHESES.items()},
    **{f"peng-{mode}": peng_row(mode) for mode in PENG_MODES},
    "asda": asda_row(random=False),
    "asda[random=True]": asda_row(random=True),
}


def synth_data(root: Path, n_train: int, n_val: int, seed: int) -> None:
    """Render the SynthPose splits under ``root`` unless they are there."""
    for split, count in (("train", n_train), ("val", n_val)):
        if not (root / "annotations" / f"person_keypoints_{split}.json").exists():
            generate_split(root, split, count, SynthConfig(), seed)


def config_for(data_root: Path, out: Path, epochs: int, seed: int, scale_schedule: bool,
               threads: int | None = None) -> TrainConfig:
    """The preset with this run's data, length and seed (milestones scaled to ``epochs`` when fine-tuning);
    ``threads`` overrides the preset's PyTorch threads (speed only: the same weights)."""
    preset = PRESETS[PRESET]
    layer = {"data": {"root": str(data_root)}, "epochs": epochs, "seed": seed, "device": "cpu", "out": str(out)}
    if threads is not None:
        layer["threads"] = threads
    if scale_schedule:
        full = preset["epochs"]
        layer["optim"] = {"milestones": [max(1, round(m * epochs / full)) for m in preset["optim"]["milestones"]]}
    return resolve_config(preset, layer)


def evaluate(ckpt: Path, spec: EvalSpec, complete: bool) -> dict:
    """Predict every cell with ``ckpt`` and score it, unless ``spec.out`` holds a finished summary; return it."""
    summary = spec.out / "summary.json"
    if not summary.exists():
        evaluate_checkpoint(load_checkpoint(ckpt), spec, InferenceConfig(flip_test=False, device="cpu", batch_size=64))
        evaluate_run(spec.out, "coco", spec.ann, out=spec.out, partial=not complete)
    return json.loads(summary.read_text())


def fine_tune(row: str, ctx: RowContext, out: Path, epochs: int) -> dict:
    """Fine-tune ``row`` into ``out`` unless it is finished there; return its timing (steps, compute_s, wall_s)."""
    if not (out / "checkpoint.pth").exists():
        steps: list[dict] = []
        on_step = lambda epoch, step, logs: steps.append({"epoch": epoch, "step": step, **logs})
        t = time.perf_counter()
        result = train(config_for(ctx.data, out, epochs, ctx.seed, scale_schedule=True, threads=ctx.threads or None),
                       ROWS[row](ctx), callbacks=Callbacks(on_step=on_step))
        (out / "timing.json").write_text(json.dumps({**result.timings, "wall_s": time.perf_counter() - t}))
        pd.DataFrame(steps).to_csv(out / "steps.csv", index=False)
    return json.loads((out / "timing.json").read_text())


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per row: seeds, mean and min-max spread of clean AP / mPC / rPC, step time relative to standard, wall time.

    ``runs`` has one line per (row, seed) with ``clean_AP``, ``mPC``, ``rPC``, ``steps_per_s`` and ``wall_s``.
    """
    grouped = runs.groupby("row", sort=False)
    table = grouped.agg(seeds=("seed", "count"), clean_AP=("clean_AP", "mean"), mPC=("mPC", "mean"),
                        rPC=("rPC", "mean"), steps_per_s=("steps_per_s", "mean"), wall_min=("wall_s", "mean"))
    table["wall_min"] /= 60
    for col in ("clean_AP", "mPC"):
        table[f"{col}_spread"] = grouped[col].max() - grouped[col].min()
    if "standard" in table.index:
        base = table.loc["standard"]
        table["d_clean_AP"] = table["clean_AP"] - base["clean_AP"]
        table["d_mPC"] = table["mPC"] - base["mPC"]
        table["step_time_ratio"] = base["steps_per_s"] / table["steps_per_s"]
    return table


def rows_figure(runs: pd.DataFrame, png: Path) -> Path:
    """Clean AP and mPC per row: each seed a dot, the seeds' range a line, the mean a diamond, standard's mean a
    dashed line (the axes are zoomed, so no bars); the row's step time relative to standard in its label."""
    from matplotlib.figure import Figure

    from robustpose.report.render import save_png

    table = summarise(runs)
    order = list(table.sort_values("mPC").index)
    fig = Figure(figsize=(11, 0.34 * len(order) + 1.3))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, col in zip(axes, ("clean_AP", "mPC")):
        for y, row in enumerate(order):
            seeds = runs.loc[runs["row"] == row, col]
            ax.plot([seeds.min(), seeds.max()], [y, y], color="#4C72B0", lw=2)
            ax.plot(seeds, [y] * len(seeds), "k.", ms=5)
            ax.plot(table.loc[row, col], y, "D", color="#C44E52", ms=5)
        if "standard" in table.index:
            ax.axvline(table.loc["standard", col], color="k", ls="--", lw=0.8)
        ax.set_title(f"{col.replace('_', ' ')} (%): seeds (dots), their range (line), mean (diamond); "
                     "standard dashed", fontsize=8)
        ax.grid(alpha=0.3)
    ratio = table["step_time_ratio"] if "step_time_ratio" in table else pd.Series(float("nan"), table.index)
    axes[0].set_yticks(list(range(len(order))), [f"{row} ({ratio[row]:.1f}x step)" for row in order], fontsize=8)
    fig.tight_layout()
    save_png(fig, png)
    return png


def run_rows(args: argparse.Namespace, rows: list[str], stem: str, title: str) -> pd.DataFrame:
    """Data, standard model, every (row, seed) fine-tune and evaluation, and the report ``<work>/<stem>.md``."""
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

    lines, evals = [], []
    for row in rows:
        for seed in args.seeds:
            ctx = RowContext(init=init, data=data, work=work, seed=seed, gen_width=args.gen_width,
                             probe_every=args.probe_every, threads=args.threads)
            name = f"{row}-s{seed}"
            timing = fine_tune(row, ctx, work / "runs" / name, args.epochs)
            spec = EvalSpec(dataset="coco", ann=val_ann, images=data / "images", out=work / "eval" / name,
                            corruptions=tuple(args.corruptions), severities=tuple(args.severities), data_c=data_c)
            summary = evaluate(work / "runs" / name / "checkpoint.pth", spec, complete)
            evals.append(spec.out)
            lines.append({"row": row, "seed": seed, "clean_AP": summary["clean"]["AP"], "mPC": summary["mPC"],
                          "rPC": summary["rPC"], "steps_per_s": timing["steps"] / timing["compute_s"],
                          "wall_s": timing["wall_s"]})

    runs = pd.DataFrame(lines)
    report = (f"# {title} ({PRESET}; {args.train} train / {args.val} val images; standard from {init}, then "
              f"{args.epochs} fine-tuning epochs per row; seeds {args.seeds}; "
              f"{'15 x 5 corruptions' if complete else 'PARTIAL corruption set'})\n\n"
              f"## Per row (mean over seeds, spread = max - min; d_ = difference from standard fine-tuning)\n\n"
              f"{markdown_table(summarise(runs))}\n\n## Per run\n\n{markdown_table(runs.set_index('row'))}\n\n"
              f"## Leaderboard\n\n{leaderboard_markdown(build_leaderboard(evals))}\n")
    (work / f"{stem}.md").write_text(report)
    runs.to_csv(work / f"{stem}_runs.csv", index=False)
    groups = build_leaderboard(evals)
    write_leaderboard(groups, work / stem)  # leaderboard.csv / .md / .png of every run
    (work / stem / "leaderboard.html").write_text(leaderboard_html(groups, title=title))
    rows_figure(runs, work / f"{stem}_rows.png")
    print(report)
    return runs


def protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The protocol's options, shared by the benchmarks built on this one (their defaults are the protocol)."""
    parser.add_argument("--work", type=Path, required=True, help="working folder (data, runs, evaluations, tables)")
    parser.add_argument("--train", type=int, default=3000, help="SynthPose training images")
    parser.add_argument("--val", type=int, default=200, help="SynthPose validation images")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--standard", type=Path, default=None, help="standard checkpoint (default: train one)")
    parser.add_argument("--standard-epochs", type=int, default=PRESETS[PRESET]["epochs"])
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs, the same for every row")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--gen-width", type=int, default=16,
                        help="AdvMix and ASDA generator width (official: 64)")
    parser.add_argument("--corruptions", nargs="+", default=list(corruption_names("benchmark")))
    parser.add_argument("--severities", type=int, nargs="+", default=list(SEVERITIES))
    parser.add_argument("--threads", type=int, default=0,
                        help="PyTorch threads of the training runs (0: the preset's; speed only, but compare step times "
                             "only between rows run with the same threads)")
    parser.add_argument("--probe-every", type=int, default=10,
                        help="learned mixers: log the pose loss on the equal mix every N steps (steps.csv)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    protocol_arguments(parser)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), help="rows to run (default all)")
    args = parser.parse_args()
    run_rows(args, args.rows, "trainers_synth", "Trainers on SynthPose")


if __name__ == "__main__":
    main()
