"""``robustpose demo``: the whole loop on a laptop: SynthPose -> train -> -C set -> clean + 15 x 5 evaluation.

Every stage is one of the ordinary commands, run in order with the arguments printed, and each is skipped or resumed
when a previous demo left its output in ``--out``: the SynthPose folder, a finished training run (its ``best.pth`` is
reused), a complete -C set, finished evaluation cells. Each stage's folder is named after the settings it depends on
(:func:`stage_folders`), so a demo with another ``--epochs`` or ``--seed`` trains a new model beside the old one
instead of silently reusing it, and says which folders it reuses.
"""

from __future__ import annotations

import csv
import shlex
import time
from pathlib import Path

import click

from .errors import Interrupted
from .options import SeveritiesType

EPILOG = """\b
Examples:
  robustpose demo                        # everything under ./robustpose-demo
  robustpose demo --out /tmp/demo --val 20 --severities 3
"""


# Demo-sized training: 85 s of the demo's 2.5 minutes on an idle 2-core machine (docs/training.md); the slower
# machine of 2026-11-22 took 6.3 minutes in all, so 5 epochs keep the demo under 10 minutes with room to spare.
DEMO_EPOCHS = 5


def training_finished(run: Path, epochs: int) -> bool:
    """True when ``run/log.csv`` records the last epoch and ``run/best.pth`` exists."""
    log = run / "log.csv"
    if not (run / "best.pth").is_file() or not log.is_file():
        return False
    with log.open() as f:
        rows = list(csv.DictReader(f))
    return bool(rows) and int(rows[-1]["epoch"]) >= epochs - 1


def stage_folders(out: Path, n_train: int, n_val: int, epochs: int, severities: list[int], seed: int
                  ) -> dict[str, Path]:
    """The folder of each stage, named after exactly the settings its output depends on."""
    if len(severities) == 1:
        sev = str(severities[0])
    elif severities == list(range(severities[0], severities[-1] + 1)):
        sev = f"{severities[0]}-{severities[-1]}"
    else:
        sev = ",".join(map(str, severities))
    data = f"synthpose-train{n_train}-val{n_val}-seed{seed}"
    run = f"run-{data.removeprefix('synthpose-')}-epochs{epochs}"
    return {"data": out / data, "run": out / run, "data_c": out / f"{data}-C-sev{sev}",
            "report": out / f"eval-{run.removeprefix('run-')}-sev{sev}"}


@click.command("demo", epilog=EPILOG)
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("robustpose-demo"),
              help="Working folder; a second run reuses what the first one left there.")
@click.option("--train", "n_train", type=click.IntRange(min=1), default=2000, help="SynthPose training images.")
@click.option("--val", "n_val", type=click.IntRange(min=1), default=50,
              help="SynthPose validation images (each is corrupted 15 x 5 times).")
@click.option("--epochs", type=click.IntRange(min=1), default=DEMO_EPOCHS, show_default=True,
              help="Training epochs of the cpu-synth preset's model; the learning rate drops x0.1 for the last one "
                   "(the full preset trains 36 on 3000 images).")
@click.option("--severities", type=SeveritiesType(), default="1-5", help="Severities of the -C set, e.g. 1-5 or 3.")
@click.option("--workers", type=click.IntRange(min=1), default=2, help="Processes for build-c.")
@click.option("--threads", type=click.IntRange(min=0), default=0,
              help="PyTorch CPU threads of training and evaluation (0: PyTorch's default); 1 is fastest on a busy "
                   "machine.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed of SynthPose and of training.")
@click.pass_context
def demo_cmd(ctx: click.Context, out: Path, n_train: int, n_val: int, epochs: int, severities: list[int],
             workers: int, threads: int, seed: int) -> None:
    """Generate SynthPose, train a small model on it (or reuse the last demo's), build its -C set, evaluate clean
    + 15 corruptions x 5 severities, and print the robustness table and where the report is."""
    root = ctx.find_root().command
    folders = stage_folders(out, n_train, n_val, epochs, severities, seed)
    data, run, data_c, report = folders["data"], folders["run"], folders["data_c"], folders["report"]
    val_ann = data / "annotations" / "person_keypoints_val.json"
    sev = ",".join(map(str, severities))
    start = time.perf_counter()

    def stage(number: int, title: str, args: list[str] | None, reused: Path | None = None) -> None:
        if args is None:
            click.secho(f"[{number}/4] {title}: reusing {reused} (made by an earlier demo with these settings; "
                        f"delete it to redo this stage)", fg="cyan")
            return
        click.secho(f"[{number}/4] {title}: robustpose {shlex.join(args)}", fg="cyan")
        try:
            root.main(args=args, prog_name="robustpose", standalone_mode=False)
        except Interrupted:  # the stage's own advice (train's --resume) is the demo's to follow on a rerun
            raise Interrupted(f"interrupted (Ctrl-C) in stage {number}/4 ({title}); finished work is kept: rerun "
                              "the same demo command to resume") from None

    if threads:  # the evaluation runs in this process
        import torch

        torch.set_num_threads(threads)

    have_data = val_ann.is_file() and (data / "annotations" / "person_keypoints_train.json").is_file()
    stage(1, "SynthPose", None if have_data else
          ["synth", "--out", str(data), "--train", str(n_train), "--val", str(n_val), "--seed", str(seed)], data)
    train_args = ["train", "standard", "--preset", "cpu-synth", "--data-root", str(data), "--out", str(run),
                  "--epochs", str(epochs), "--milestones", str(epochs - 1) if epochs > 1 else "",
                  "--seed", str(seed)] + (["--threads", str(threads)] if threads else [])
    if (run / "checkpoint.pth").is_file():
        train_args.append("--resume")
    stage(2, "training", None if training_finished(run, epochs) else train_args, run)
    stage(3, "-C set", ["build-c", "--dataset", "coco", "--ann", str(val_ann), "--images", str(data / "images"),
                        "--out", str(data_c), "--severities", sev, "--workers", str(workers), "--seed",
                        str(seed)])
    stage(4, "evaluation", ["eval", "--ckpt", str(run / "best.pth"), "--dataset", "coco", "--ann", str(val_ann),
                            "--images", str(data / "images"), "--data-c", str(data_c), "--severities", sev,
                            "--out", str(report), "--workers", "0", "--no-flip-test"])
    seconds = time.perf_counter() - start
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"  # a rerun that reuses all: seconds
    click.secho(f"demo finished in {took}", fg="green")
    click.echo(f"  model:  {run / 'best.pth'} (training log {run / 'log.csv'})")
    click.echo(f"  -C set: {data_c}")
    click.echo(f"  report: {report / 'report.md'} (plots and results.csv beside it)")
