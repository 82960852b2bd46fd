"""``robustpose train <method>``: train a pose network with the shared engine."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .errors import Interrupted
from .lazy import module_constant
from .options import PositiveFloat
from .output import LineProgress, make_console

if TYPE_CHECKING:
    from robustpose.models import CheckpointMeta
    from robustpose.train import TrainConfig

# read without importing robustpose.train (torch), so that --help starts fast (robustpose/cli/lazy.py)
PRESETS: dict[str, dict[str, Any]] = module_constant("robustpose.train.config", "PRESETS")
DATASETS: tuple[str, ...] = module_constant("robustpose.train.config", "DATASETS")
DECODERS: tuple[str, ...] = module_constant("robustpose.inference.decode", "DECODERS")
SELECT_RULES: tuple[str, ...] = module_constant("robustpose.train.config", "SELECT_RULES")
LOG_COLUMNS: tuple[str, ...] = module_constant("robustpose.train.engine", "LOG_COLUMNS")

EPILOG = """\b
Examples:
  robustpose synth --out data/synthpose --train 3000 --val 200
  robustpose train standard --preset cpu-synth --data-root data/synthpose --out runs/synth
  robustpose train standard --data coco --train-ann ann.json --train-images imgs/ --val-ann ann.json \\
      --val-images imgs/ --arch simplebaseline_res50 --out runs/coco
  robustpose train standard --out runs/synth --resume        # continue an interrupted run
  torchrun --nproc_per_node 4 -m robustpose train standard --config my.yaml --sync-bn --out runs/x
"""


def parse_hw(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """'128x96' -> [128, 96] (height, width)."""
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HEIGHTxWIDTH such as 256x192, got {value!r}", ctx, param) from None
    if h <= 0 or w <= 0:
        raise click.BadParameter(f"both sides must be positive, got {value!r}", ctx, param)
    return [h, w]


def parse_milestones(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """'170,200' -> [170, 200] (epochs, ascending); '' -> [] (no decay)."""
    if value is None:
        return None
    try:
        epochs = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated epochs such as 170,200, got {value!r}", ctx,
                                 param) from None
    if any(e < 1 for e in epochs) or epochs != sorted(set(epochs)):
        raise click.BadParameter(f"milestones must be strictly ascending epochs >= 1, got {value!r}", ctx, param)
    return epochs


# Training options -> the config keys they set (``input_size`` also sets ``data.heatmap_size``, a quarter of it).
OPTION_KEYS = {
    "data": "data.dataset", "data_root": "data.root", "train_ann": "data.train_ann",
    "train_images": "data.train_images", "val_ann": "data.val_ann", "val_images": "data.val_images",
    "input_size": "data.input_size", "workers": "data.workers", "arch": "model.arch", "lr": "optim.lr",
    "milestones": "optim.milestones", "epochs": "epochs", "batch_size": "batch_size", "seed": "seed",
    "device": "device", "threads": "threads", "amp": "amp", "channels_last": "channels_last",
    "flip_test": "flip_test", "decode": "decode", "select": "select", "sync_bn": "sync_bn", "out": "out",
}
# What a resumed run may change: its length and where and how fast it runs, never what it computes. The per-process
# batch may change with the process count when the global batch stays (the engine checks it).
RESUMABLE = {"epochs", "device", "threads", "data.workers", "out", "batch_size"}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`_nest` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def flag_layer(opts: dict[str, Any]) -> dict[str, Any]:
    """The command-line overrides as a nested config dict (unset flags are None and are skipped when merging)."""
    flat = {key: opts[name] for name, key in OPTION_KEYS.items()}
    size = opts["input_size"]
    flat["data.heatmap_size"] = [size[0] // 4, size[1] // 4] if size else None
    flat["out"] = str(opts["out"])
    return _nest(flat)


def explicit_settings(settings_class: type, opts: dict[str, Any]) -> dict[str, Any]:
    """The method settings given on the command line (not click's defaults: a YAML or a resumed run's own
    settings must not be overridden by a flag nobody typed)."""
    ctx = click.get_current_context()
    typed = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {f.name: opts[f.name] for f in fields(settings_class)
            if f.name in opts and ctx.get_parameter_source(f.name) in typed}


def _flag_name(key: str, opts: dict[str, Any], settings: dict[str, Any]) -> str:
    """The option that set config ``key`` (``--lr`` for ``optim.lr``), else the preset / YAML that did."""
    by_key = {k: n for n, k in OPTION_KEYS.items()} | {"data.heatmap_size": "input_size"}
    name = by_key.get(key)
    if name is None and key.startswith("method_settings.") and key.split(".", 1)[1] in settings:
        name = key.split(".", 1)[1]
    if name is not None and (opts.get(name) is not None or name in settings):
        return "--" + name.replace("_", "-")
    if key == "method":
        return "this command"
    return " / ".join(f"--{n} {opts[n]}" for n in ("preset", "config") if opts.get(n)) or key


def resume_conflicts(saved: dict[str, Any], requested: dict[str, Any], opts: dict[str, Any],
                     settings: dict[str, Any], shown: int = 4) -> list[str]:
    """What the command line asks of a resumed run that contradicts it: one phrase per flag, preset or YAML
    (naming at most ``shown`` of the settings each one changes)."""
    before, after = _flatten(saved), _flatten(requested)
    by_source: dict[str, list[str]] = {}
    for key in sorted(set(before) | set(after)):
        if key in RESUMABLE or before.get(key) == after.get(key):
            continue
        by_source.setdefault(_flag_name(key, opts, settings), []).append(
            f"{key}={after.get(key)!r} (the run: {before.get(key)!r})")
    out = []
    for source, changes in by_source.items():
        more = f" and {len(changes) - shown} more" if len(changes) > shown else ""
        out.append(f"{source} sets {', '.join(changes[:shown])}{more}")
    return out


def resolve_run_config(method: str, opts: dict[str, Any], settings: dict[str, Any]) -> TrainConfig:
    """The run's config: preset < YAML < flags for a new run; for ``--resume``, the run's own ``config.yaml``
    (method settings included) with only the :data:`RESUMABLE` settings open to flags, and a ``UsageError``
    naming every flag, preset or YAML value that contradicts it."""
    from robustpose.train import resolve_config
    from robustpose.train.config import load_yaml

    out: Path = opts["out"]
    layers: list[dict[str, Any]] = []
    try:
        if opts["preset"]:
            layers.append(PRESETS[opts["preset"]])
        if opts["config"]:
            layers.append(load_yaml(opts["config"]))
        saved_doc = load_yaml(out / "config.yaml") if opts["resume"] and (out / "config.yaml").exists() else None
    except ValueError as exc:  # names the file
        raise click.ClickException(str(exc)) from None
    flags = {**flag_layer(opts), "method": method, "method_settings": settings}
    try:
        if saved_doc is None:
            return resolve_config(*layers, flags)
        saved = resolve_config(saved_doc)
        if not saved.method_settings:  # a run from before settings were recorded: the flags say them
            saved.method_settings = dict(settings)
        requested = resolve_config(saved.to_dict(), *layers, flags).to_dict()
        conflicts = resume_conflicts(saved.to_dict(), requested, opts, settings)
        if conflicts:
            raise click.UsageError(f"--resume: {'; '.join(conflicts)} (in {out / 'config.yaml'}); drop those to "
                                   "resume the run as it was, or train into a new --out")
        return resolve_config(saved.to_dict(), flags)
    except ValueError as exc:
        source = f" (check --config {opts['config']})" if opts["config"] else ""
        raise click.UsageError(f"{exc}{source}") from None


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (checkpoint metadata and YAML spell the same kwargs differently)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def check_checkpoints_fit(config: TrainConfig, checkpoints: dict[str, tuple[str, CheckpointMeta]],
                          opts: dict[str, Any], settings: dict[str, Any]) -> None:
    """That each ``--init`` / ``--teacher`` checkpoint predicts the data's joints, and that ``--init`` holds the
    network the run builds (architecture and constructor arguments); a ClickException naming the file otherwise."""
    from robustpose.train.data import keypoint_set_for

    kset = keypoint_set_for(config.data.dataset)
    for option, (path, meta) in checkpoints.items():
        if meta.num_joints != kset.num_joints:
            raise click.ClickException(f"{option} {path} predicts {meta.num_joints} joints ({meta.keypoints}) but "
                                       f"--data {config.data.dataset} has {kset.num_joints} ({kset.name}); use a "
                                       f"checkpoint trained on {kset.name} joints")
        if option != "--init":
            continue
        theirs = _plain({k: v for k, v in meta.arch_kwargs.items() if k != "num_joints"})
        ours = _plain(config.model.kwargs)
        if meta.arch != config.model.arch or any(theirs.get(k) != v for k, v in ours.items()):
            source = _flag_name("model.arch", opts, settings)
            raise click.ClickException(
                f"{option} {path} holds {meta.arch} {theirs} but the run builds {config.model.arch} {ours} (set by "
                f"{source}); train with the checkpoint's architecture (--arch, --preset or a --config giving its "
                "model.kwargs) or pass another --init")


def check_run_settings(config: TrainConfig, opts: dict[str, Any], settings: dict[str, Any]) -> None:
    """The settings of a resolved config that the engine would only trip over once the model is built: the
    architecture and a device this machine lacks. Each is a ``UsageError`` naming the option (or the preset / YAML)
    that set it. (Milestones past ``--epochs`` are allowed: ``--resume --epochs N`` may extend the run to them.)"""
    from robustpose.inference import resolve_device
    from robustpose.models import list_models

    if config.model.arch not in list_models():
        raise click.UsageError(f"{_flag_name('model.arch', opts, settings)}: unknown model {config.model.arch!r}; "
                               f"registered models: {', '.join(list_models())}")
    try:
        resolve_device(config.device)
    except ValueError as exc:
        raise click.UsageError(f"{_flag_name('device', opts, settings)} {config.device}: {exc}") from None


def _named(values: dict[str, Any]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, float))


def run_training(method: str, opts: dict[str, Any], settings: dict[str, Any] | None = None,
                 checkpoints: dict[str, tuple[str, CheckpointMeta]] | None = None) -> None:
    """Resolve the config (:func:`resolve_run_config`; ``settings``: the method settings typed as flags), check it
    and the ``checkpoints`` it starts from (option -> (path, metadata)), and train ``METHODS[method]`` with
    progress."""
    from robustpose.train import METHODS, Callbacks, train
    from robustpose.train.distributed import PeerFailure
    from robustpose.train.engine import SettingError

    config = resolve_run_config(method, opts, settings or {})
    check_run_settings(config, opts, settings or {})
    check_checkpoints_fit(config, checkpoints or {}, opts, settings or {})
    try:
        checked = METHODS[method].settings_class(**config.method_settings)
        if hasattr(checked, "validate"):
            checked.validate()
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"{method} settings: {exc}") from None
    check_training_data(config)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    console = make_console(quiet=not main_process)
    lines = None if console.is_terminal else LineProgress(console, "training", "steps")
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=lines is not None) as bar:
        task = bar.add_task("starting", total=None)
        state: dict[str, Any] = {}

        def on_start(first_epoch: int, epochs: int, steps: int) -> None:
            state["steps"] = steps
            bar.update(task, total=(epochs - first_epoch) * steps or None, completed=0)
            if lines is not None:
                lines.total = (epochs - first_epoch) * steps or None

        def on_step(epoch: int, step: int, losses: dict[str, float]) -> None:
            of = f"/{state['steps']}" if state["steps"] else ""
            bar.update(task, advance=1, description=f"epoch {epoch} step {step + 1}{of} {_named(losses)}")
            if lines is not None:  # not a terminal: a line every LINE_EVERY_S seconds instead of a bar
                lines.update(note=f"epoch {epoch} {_named(losses)}")

        def on_epoch(row: dict[str, Any]) -> None:
            score = f" val {row['val_metric']} {row['val_score']:.4f}" if "val_score" in row else ""
            named = {k: v for k, v in row.items() if k not in LOG_COLUMNS}
            bar.console.print(f"epoch {row['epoch']}: loss {row['loss']:.5f} lr {row['lr']:g}{score}"
                              + (f" ({_named(named)})" if named else ""))

        try:
            with launcher_stop_raises():
                result = train(config, METHODS[method], resume=opts["resume"],
                               callbacks=Callbacks(on_start=on_start, on_step=on_step, on_epoch=on_epoch))
        except SettingError as exc:
            raise click.UsageError(f"{_flag_name(exc.key, opts, settings or {})}: {exc}") from None
        except (FileExistsError, FileNotFoundError, ValueError, PeerFailure) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise Interrupted(interrupted_line(Path(config.out), opts["resume"])) from None
        except LauncherStop:
            env = os.environ
            raise click.ClickException(
                f"rank {env.get('RANK', '0')} of {env.get('WORLD_SIZE', '1')}: stopped by the launcher (SIGTERM; "
                "torchrun stops every process when one fails, and names that rank and its error); "
                f"{Path(config.out) / 'checkpoint.pth'} keeps the last finished epoch: rerun the same command with "
                "--resume") from None
    if main_process:
        click.echo(f"best validation score {result.best_score:.4f}; checkpoints: {result.best} (best), "
                   f"{result.checkpoint} (latest); log: {result.out / 'log.csv'}")


class LauncherStop(Exception):
    """SIGTERM reached a training process: torchrun stopping the others after one of them failed."""


@contextmanager
def launcher_stop_raises() -> Iterator[None]:
    """Under torchrun (``WORLD_SIZE > 1``), turn SIGTERM into :class:`LauncherStop` in this process (loader
    workers it forks ignore it), so a surviving rank says why it stopped and what to resume."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or threading.current_thread() is not threading.main_thread():
        yield
        return
    main_pid = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() == main_pid:
            raise LauncherStop

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_line(out: Path, resumed: bool) -> str:
    """What Ctrl-C during training leaves and how to go on: the engine resumes only with ``--resume``, from the
    last finished epoch in ``checkpoint.pth`` (the same final weights as an uninterrupted run)."""
    ckpt = out / "checkpoint.pth"
    if not ckpt.is_file():
        return "interrupted (Ctrl-C) before the first epoch finished; rerun the same command to start again"
    how = "rerun the same command" if resumed else "rerun the same command with --resume"
    return f"interrupted (Ctrl-C); {ckpt} holds the finished epochs: {how} to continue from there"


def check_training_data(config: Any) -> None:
    """The annotation files and image folders of a resolved config, checked before the model is built.

    Each problem is one ClickException naming the file and the option (--train-ann, --val-images, ...).
    """
    from robustpose.datasets.readers import AnnotationError, image_names, resolve_image

    data = config.data
    reader = "mpii" if data.dataset == "mpii" else "coco"
    try:
        paths = data.resolved_paths()
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    for split in ("train", "val"):
        ann, images = paths[f"{split}_ann"], paths[f"{split}_images"]
        if not images.is_dir():
            raise click.ClickException(f"image folder {images} not found; check --{split}-images (or --data-root)")
        try:
            names = image_names(reader, ann, images)
        except AnnotationError as err:
            raise click.ClickException(f"--{split}-ann: {err}") from None
        if not names:
            raise click.ClickException(f"{ann} names no images; check --{split}-ann")
        missing = [n for n in names if not resolve_image(images, n).is_file()]
        if missing:
            raise click.ClickException(f"{len(missing)} of the {len(names)} images named by {ann} are not in "
                                       f"{images} (first: {missing[0]}); check --{split}-images")


def training_options(fn):
    """The options every ``train <method>`` command shares."""
    options = [
        click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Run directory: config.yaml, log.csv, checkpoint.pth (latest), best.pth."),
        click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
                     help="A built-in configuration (cpu-synth: small model that learns SynthPose on a CPU)."),
        click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="YAML config (keys of TrainConfig); overrides the preset, flags override it."),
        click.option("--data", type=click.Choice(DATASETS), default=None, help="Dataset format.  [default: synth]"),
        click.option("--data-root", default=None, help="A `robustpose synth` folder (fills the paths below)."),
        click.option("--train-ann", default=None, help="Training annotation file (COCO json or HRNet MPII json)."),
        click.option("--train-images", default=None, help="Folder the training file names are relative to."),
        click.option("--val-ann", default=None, help="Validation annotation file."),
        click.option("--val-images", default=None, help="Folder the validation file names are relative to."),
        click.option("--arch", default=None, help="Model registry name, e.g. simplebaseline_res50, hrnet_w32."),
        click.option("--input-size", callback=parse_hw, default=None,
                     help="Crop size HEIGHTxWIDTH (heatmaps are a quarter of it).  [default: 256x192]"),
        click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs.  [default: 210]"),
        click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Batch size per process (the global batch is processes x this; --resume may change it "
                          "with the process count when the global batch stays).  [default: 32]"),
        click.option("--lr", type=PositiveFloat(), default=None,
                     help="Adam learning rate.  [default: 1e-3]"),
        click.option("--milestones", callback=parse_milestones, default=None,
                     help="Epochs at which the learning rate is multiplied by 0.1 (optim.gamma), e.g. 170,200.  "
                          "[default: 170,200]"),
        click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed.  [default: 0]"),
        click.option("--device", default=None, help="auto, cpu, cuda, cuda:1 ...  [default: auto]"),
        click.option("--threads", type=click.IntRange(min=0), default=None,
                     help="PyTorch CPU threads (0: PyTorch's default). 1 is fastest on a busy machine."),
        click.option("--workers", type=click.IntRange(min=0), default=None, help="Data loader worker processes."),
        click.option("--amp/--no-amp", default=None, help="Mixed precision (CUDA only).  [default: amp]"),
        click.option("--channels-last/--no-channels-last", default=None,
                     help="NHWC memory layout (faster convolutions on CPU and CUDA).  [default: channels-last]"),
        click.option("--flip-test/--no-flip-test", default=None,
                     help="Average with the flipped image during validation.  [default: no-flip-test]"),
        click.option("--decode", type=click.Choice(DECODERS), default=None,
                     help="Heatmap decoder of validation, stored in the checkpoints for eval: quarter (HRNet's rule) "
                          "or dark (DARK; the cpu-synth preset's).  [default: quarter]"),
        click.option("--select", type=click.Choice(SELECT_RULES), default=None,
                     help="What best.pth holds: final (the last epoch), clean (the best clean validation score) or "
                          "holdout-c (the best mean score on the validation split under the 4 held-out corruptions, "
                          "never the 15 benchmark ones). Recorded in the checkpoint; the leaderboard shows it.  "
                          "[default: clean]"),
        click.option("--sync-bn/--no-sync-bn", default=None,
                     help="Under torchrun, batch norms use the statistics of the global batch (all processes), so N "
                          "processes of --batch-size B train as one of N*B; off, each process normalises its own "
                          "B samples.  [default: no-sync-bn]"),
        click.option("--resume", is_flag=True, default=False,
                     help="Continue the run in --out from its checkpoint.pth (same final weights as uninterrupted)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group("train", epilog=EPILOG)
def train_group() -> None:
    """Train a pose network (flags override --config, which overrides --preset)."""


@train_group.command("standard", epilog=EPILOG)
@training_options
@click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint whose weights the pose net starts from (fine-tuning).  [default: the architecture's "
                   "initialisation]")
def standard_cmd(**opts: Any) -> None:
    """Standard training: joints MSE on Gaussian heatmaps, Adam with step decay, flip/rotation/scale augmentation."""
    from robustpose.train import StandardConfig

    from .eval_ckpt import check_checkpoint_file

    checkpoints = {"--init": (opts["init"], check_checkpoint_file(opts["init"], "--init"))} if opts["init"] else {}
    run_training("standard", opts, explicit_settings(StandardConfig, opts), checkpoints)
