"""``robustpose lift``: the 2D-to-3D lifting track (synthetic data, lifters, PoseAug, 3D metrics, keypoint
corruptions). Library: :mod:`robustpose.lift`; docs: docs/lifting.md.

Exit codes: 0 done; 1 bad data or state (a data file, a run folder, a checkpoint, named in the message); 2 bad usage.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .lazy import module_constant
from .output import make_console, plain, progress_wrapper

# read without importing robustpose.lift (torch), so that --help starts fast (robustpose/cli/lazy.py)
LIFTERS: tuple[str, ...] = module_constant("robustpose.lift.models", "LIFTER_NAMES")
FEEDBACKS: tuple[str, ...] = module_constant("robustpose.lift.poseaug", "FEEDBACKS")
RT_TRANSLATIONS: tuple[str, ...] = module_constant("robustpose.lift.poseaug", "RT_TRANSLATIONS")

EPILOG = """\b
Examples:
  robustpose lift synth --out data/liftsynth
  robustpose lift train standard --data data/liftsynth --width 256 --epochs 30 --out runs/lift-std
  robustpose lift train poseaug --data data/liftsynth --init runs/lift-std/best.pth --lr 1e-4 --epochs 10 \\
      --width 256 --out runs/lift-poseaug
  robustpose lift eval --ckpt runs/lift-poseaug/best.pth --data data/liftsynth --out runs/lift-poseaug/eval
  robustpose leaderboard runs/lift-std/eval runs/lift-poseaug/eval --out leaderboard/
"""


@click.group("lift", epilog=EPILOG)
def lift_group() -> None:
    """2D-to-3D lifting: synthetic data with shifted test splits, lifters, PoseAug, MPJPE / PA-MPJPE and keypoint
    corruptions. The numbers on `lift synth` data are synthetic (docs/lifting.md)."""


@lift_group.command("synth", epilog=EPILOG)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: data_3d_synth.npz, data_2d_synth_gt.npz, splits.json, synth.json.")
@click.option("--train-subjects", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--train-frames", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Poses per training subject (each seen by 4 cameras).")
@click.option("--val-subjects", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--test-subjects", type=click.IntRange(min=1), default=2, show_default=True,
              help="Subjects of each test split (test, test-pose, test-view, test-body).")
@click.option("--test-frames", type=click.IntRange(min=1), default=500, show_default=True,
              help="Poses per validation / test subject.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the data files of an earlier `lift synth` in --out.")
def lift_synth_cmd(out: Path, train_subjects: int, train_frames: int, val_subjects: int, test_subjects: int,
                   test_frames: int, seed: int, overwrite: bool) -> None:
    """Generate Human3.6M-topology 2D/3D pairs: a training split and shifted test splits (poses, views, bodies)."""
    from robustpose.lift.synth import LiftSynthConfig, write_synth

    if (out / "data_3d_synth.npz").exists() and not overwrite:
        raise click.ClickException(f"{out} already holds lift synth data; pass --overwrite to replace it, or use "
                                   "another --out")
    config = LiftSynthConfig(train_subjects, train_frames, val_subjects, test_subjects, test_frames, seed)
    paths = write_synth(out, config)
    plain(make_console(), f"wrote {paths['3d']}, {paths['2d']} and {paths['splits']}")


# ----------------------------------------------------------------------------------------------- training

# option -> LiftConfig field; the method's own settings are the fields of its settings dataclass.
CONFIG_OPTIONS = {"data": "data", "data_2d": "data_2d", "splits": "splits", "cameras": "cameras", "arch": "arch",
                  "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "lr_decay": "lr_decay",
                  "decay_steps": "decay_steps", "seed": "seed", "device": "device", "threads": "threads"}
RESUMABLE = {"epochs", "device", "threads"}
DEFAULT_LR = {"standard": 1e-3, "poseaug": 1e-4}


def train_options(fn):
    """Options every ``lift train <method>`` shares."""
    options = [
        click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Run directory: config.yaml, log.csv, checkpoint.pth (latest), best.pth (best val MPJPE)."),
        click.option("--data", default=None,
                     help="A `lift synth` folder, or a data_3d_*.npz file (then also --data-2d and --splits)."),
        click.option("--data-2d", default="", show_default=False, help="data_2d_*_<source>.npz  [default: the folder's *_gt.npz]"),
        click.option("--splits", default="", show_default=False, help="splits.json: {split: [subjects]} with train and val."),
        click.option("--cameras", default="", show_default=False, help="Cameras JSON for a 3D file without cameras (Human3.6M's own)."),
        click.option("--arch", type=click.Choice(LIFTERS), default="martinez", show_default=True, help="Lifter."),
        click.option("--width", type=click.IntRange(min=1), default=None,
                     help="Lifter width.  [default: the papers': martinez and videopose1f 1024, semgcn 128]"),
        click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True),
        click.option("--batch-size", type=click.IntRange(min=2), default=256, show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Lifter Adam learning rate.  [default: standard 1e-3, poseaug 1e-4 (the official values)]"),
        click.option("--lr-decay", type=click.FloatRange(0, 1), default=0.96, show_default=True),
        click.option("--decay-steps", type=click.IntRange(min=1), default=100_000, show_default=True),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ..."),
        click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                     help="PyTorch CPU threads (0: PyTorch's default)."),
        click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Lifting checkpoint the lifter starts from."),
        click.option("--resume", is_flag=True, help="Continue the run in --out (same weights as uninterrupted)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _typed(name: str) -> bool:
    return click.get_current_context().get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                                                      ParameterSource.ENVIRONMENT)


def lift_config(method: str, opts: dict[str, Any], settings_class: type) -> Any:
    """The run's :class:`~robustpose.lift.engine.LiftConfig`: from the flags, or for ``--resume`` from the run's
    config.yaml with only --epochs/--device/--threads open; a typed flag that contradicts the run is a usage error."""
    from robustpose.lift.engine import LiftConfig, load_config

    settings = {f.name: opts[f.name] for f in fields(settings_class) if f.name in opts}
    settings["init"] = str(opts["init"] or "")
    if not opts["resume"]:
        if not opts["data"]:
            raise click.UsageError("Missing option '--data' (a `lift synth` folder or a data_3d_*.npz file)")
        values = {key: opts[name] for name, key in CONFIG_OPTIONS.items()}
        values["lr"] = opts["lr"] if opts["lr"] is not None else DEFAULT_LR[method]
        return LiftConfig(**values,
                          arch_kwargs={} if opts["width"] is None else {"width": opts["width"]},
                          out=str(opts["out"]), method=method,
                          method_settings=settings)
    path = opts["out"] / "config.yaml"
    if not path.is_file():
        raise click.ClickException(f"--resume: no run in {opts['out']} (no config.yaml); start it without --resume")
    try:
        saved = load_config(path)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    if saved.method != method:
        raise click.UsageError(f"--resume: {opts['out']} is a {saved.method} run, not {method}")
    typed = {name: opts[name] for name in [*CONFIG_OPTIONS, "width", *settings] if name in opts and _typed(name)}
    current = {**{name: getattr(saved, key) for name, key in CONFIG_OPTIONS.items()},
               "width": saved.arch_kwargs.get("width"), **saved.method_settings}
    conflicts = [f"--{n.replace('_', '-')} {v!r} (the run: {current.get(n)!r})" for n, v in typed.items()
                 if n not in RESUMABLE and str(v or "") != str(current.get(n) or "")]
    if conflicts:
        raise click.UsageError(f"--resume: {'; '.join(conflicts)} contradict {path}; drop them to resume the run "
                               "as it was, or train into a new --out")
    changes = {key: opts[key] for key in RESUMABLE if key in typed}
    return LiftConfig.from_dict({**saved.to_dict(), **changes, "out": str(opts["out"])})


def run_lift_training(method: str, opts: dict[str, Any]) -> None:
    """Train ``method`` with one line per epoch on stderr; data and settings are checked before the first step."""
    from robustpose.lift.data import LiftDataError
    from robustpose.lift.engine import LiftCallbacks, train_lift
    from robustpose.lift.methods import LIFT_METHODS
    from robustpose.models.checkpoint import CheckpointError

    settings_class = LIFT_METHODS[method].settings_class
    config = lift_config(method, opts, settings_class)
    try:
        checked = settings_class(**config.method_settings)
        if hasattr(checked, "validate"):
            checked.validate()
    except (TypeError, ValueError) as err:
        raise click.UsageError(f"{method} settings: {err}") from None
    try:
        config.lift_data()
    except LiftDataError as err:
        raise click.ClickException(str(err)) from None
    console = make_console()

    def on_epoch(row: dict[str, Any]) -> None:
        extra = " ".join(f"{k} {v:.4g}" for k, v in row.items()
                         if isinstance(v, float) and k not in ("lr", "val_score", "epoch_s"))
        plain(console, f"epoch {row['epoch']}: val MPJPE {row['val_score']:.1f} mm, {row['epoch_s']:.1f} s ({extra})")

    try:
        result = train_lift(config, LIFT_METHODS, resume=opts["resume"], callbacks=LiftCallbacks(on_epoch=on_epoch))
    except (FileExistsError, FileNotFoundError, LiftDataError, CheckpointError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"best validation MPJPE {result.best_score:.1f} mm; checkpoints: {result.best} (best), "
               f"{result.checkpoint} (latest); log: {result.out / 'log.csv'}")


@lift_group.group("train", epilog=EPILOG)
def lift_train_group() -> None:
    """Train a lifter (checkpoints selected on the val split, never on a test split)."""


@lift_train_group.command("standard", epilog=EPILOG)
@train_options
def lift_standard_cmd(**opts: Any) -> None:
    """Supervised lifter training on the real 2D/3D pairs (MPJPE loss, Adam, staircase decay)."""
    run_lift_training("standard", opts)


POSEAUG_OPTIONS = [
    click.option("--feedback", type=click.Choice(FEEDBACKS), default="code", show_default=True,
                 help="Feedback loss: the official code's dead-zone ratio loss, or the paper's Eq. 9."),
    click.option("--g-width", type=click.IntRange(min=1), default=256, show_default=True, help="Augmentor width."),
    click.option("--noise", type=click.IntRange(min=1), default=48, show_default=True, help="Noise dimensions."),
    click.option("--d-width", type=click.IntRange(min=1), default=100, show_default=True,
                 help="Discriminator width."),
    click.option("--g-lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True),
    click.option("--d-lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True),
    click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True,
                 help="Epochs of GAN training before the feedback loss and the lifter updates start."),
    click.option("--d-every", type=click.IntRange(min=1), default=2, show_default=True,
                 help="Update the discriminators every N generator steps."),
    click.option("--pool-size", type=click.IntRange(min=0), default=4096, show_default=True,
                 help="Replay pool of past fakes (0: none)."),
    click.option("--bone-swap/--no-bone-swap", default=True, show_default=True,
                 help="Each epoch, give the generator's inputs the bone lengths of random training subjects."),
    click.option("--rt-translation", type=click.Choice(RT_TRANSLATIONS), default="absolute", show_default=True,
                 help="RT's translation: the new root position (the notes' formula) or an offset from the original "
                      "root whose depth part only pushes poses away (docs/lifting.md)."),
]


def poseaug_options(fn):
    for option in reversed(POSEAUG_OPTIONS):
        fn = option(fn)
    return fn


@lift_train_group.command("poseaug", epilog=EPILOG)
@train_options
@poseaug_options
def lift_poseaug_cmd(**opts: Any) -> None:
    """PoseAug (Gong et al., CVPR 2021): a BA -> BL -> RT augmentor trained against the lifter's error and two
    discriminators; the lifter trains on augmented and real pairs. Start it from a standard lifter (--init)."""
    if not opts["init"] and not opts["resume"]:
        raise click.UsageError("Missing option '--init': PoseAug fine-tunes a pre-trained lifter "
                               "(`robustpose lift train standard`)")
    run_lift_training("poseaug", opts)


# ----------------------------------------------------------------------------------------------- evaluation

@lift_group.command("eval", epilog=EPILOG)
@click.option("--ckpt", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A `lift train` checkpoint (best.pth or checkpoint.pth).")
@click.option("--data", required=True, help="A `lift synth` folder, or a data_3d_*.npz (with --data-2d, --splits).")
@click.option("--data-2d", default="", show_default=False, help="data_2d_*_<source>.npz  [default: the folder's *_gt.npz]")
@click.option("--splits", default="", show_default=False, help="splits.json ({split: [subjects]}).")
@click.option("--cameras", default="", show_default=False, help="Cameras JSON for a 3D file without cameras.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for summary.json and report.md (a leaderboard RUN_DIR).")
@click.option("--corruption-split", default="test", show_default=True,
              help="Test split the keypoint corruptions are applied to.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Corruption seed.")
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an earlier evaluation in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
def lift_eval_cmd(ckpt: Path, data: str, data_2d: str, splits: str, cameras: str, out: Path, corruption_split: str,
                  seed: int, device: str, overwrite: bool, quiet: bool) -> None:
    """Evaluate a lifter on every test split (MPJPE, PA-MPJPE, PCK@150 mm, AUC, per joint) and on the 5 x 5
    keypoint-corruption cells of one split (mPC; rPC = 100 x clean / mPC)."""
    from robustpose.lift.data import LiftDataError, resolve_data
    from robustpose.lift.engine import load_lifter
    from robustpose.lift.evaluate import evaluate_lifter, write_summary
    from robustpose.models.checkpoint import CheckpointError
    from robustpose.train.engine import resolve_device

    if (out / "summary.json").exists() and not overwrite:
        raise click.ClickException(f"{out} already holds an evaluation (summary.json); pass --overwrite to replace "
                                   "it, or use another --out")
    try:
        lifter, meta = load_lifter(ckpt, resolve_device(device))
    except CheckpointError as err:
        raise click.ClickException(f"--ckpt: {err}") from None
    try:
        lift_data = resolve_data(data, data_2d or None, splits or None, cameras or None)
        console = make_console()
        summary = evaluate_lifter(
            lifter, lift_data, device=resolve_device(device), corruption_split=corruption_split, seed=seed,
            run={"ckpt": str(ckpt), "method": meta["training_method"], "arch": meta["arch"]},
            progress=progress_wrapper(console, "corruption cells", "cells", quiet))
    except LiftDataError as err:
        raise click.ClickException(str(err)) from None
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    paths = write_summary(summary, out)
    stdout = make_console(stderr=False)
    for name, s in summary["splits"].items():
        plain(stdout, f"{name:<12} MPJPE {s['MPJPE']:7.1f} mm  PA-MPJPE {s['PA-MPJPE']:7.1f} mm  PCK {s['PCK']:5.1f} "
                      f"AUC {s['AUC']:5.1f}")
    plain(stdout, f"keypoint corruptions on {corruption_split}: mPC {summary['mPC']:.1f} mm, rPC {summary['rPC']:.1f} %")
    plain(console, f"wrote {paths['json']} and {paths['md']}")
