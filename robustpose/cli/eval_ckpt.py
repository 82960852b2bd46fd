"""The ``--ckpt`` half of ``robustpose eval``: options and the call that writes the predictions to score.

``eval --ckpt FILE ... --out RUN_DIR`` predicts clean and every requested cell into RUN_DIR (the layout
``eval --preds`` reads), then ``eval`` scores RUN_DIR as if given ``--preds RUN_DIR``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .lazy import module_constant
from .options import SEVERITIES, SeveritiesType, corruptions_callback
from .output import LineProgress, make_console, plain

if TYPE_CHECKING:
    from robustpose.inference.evaluate import Cell
    from robustpose.models import CheckpointMeta, LoadedModel

DEFAULT_JPEG_QUALITY: int = module_constant("robustpose.datasets.imageio", "DEFAULT_JPEG_QUALITY")
DECODERS: tuple[str, ...] = module_constant("robustpose.inference.decode", "DECODERS")
CHECKPOINT_HINT = ("expected a .pth/.pt file saved by torch (HRNet, SimpleBaseline, MMPose, robustpose), a "
                   "TorchScript archive or an .onnx file; see docs/models.md")


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """'256x192' (height x width) -> (256, 192)."""
    if value is None:
        return None
    h, sep, w = value.lower().partition("x")
    if not sep or not h.isdigit() or not w.isdigit() or int(h) <= 0 or int(w) <= 0:
        raise click.BadParameter(f"expected HEIGHTxWIDTH such as 256x192, got {value!r}", ctx=ctx, param=param)
    return int(h), int(w)


def _arch(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A registered architecture name (checked here, not by a click.Choice, so --help does not import torch)."""
    if value is None or ctx.resilient_parsing:
        return value
    from robustpose.models import list_models

    if value not in list_models():
        raise click.BadParameter(f"unknown architecture {value!r}; choose one of {', '.join(list_models())}",
                                 ctx=ctx, param=param)
    return value


def _boxes(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """'gt' or an existing detection file."""
    if value != "gt" and not Path(value).is_file():
        raise click.BadParameter(f"{value!r} is neither 'gt' nor an existing COCO detection json file",
                                 ctx=ctx, param=param)
    return value


CKPT_OPTIONS: list[Callable[[Callable], Callable]] = [
    click.option("--ckpt", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="Evaluate this checkpoint (.pth/.pt: HRNet, MMPose, robustpose, TorchScript; .onnx) and "
                      "write its predictions to --out before scoring (instead of --preds)."),
    click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                 help="--ckpt: folder of the clean images named by --ann."),
    click.option("--data-c", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                 help="--ckpt: read corrupted images from this `robustpose build-c` output."),
    click.option("--on-the-fly", is_flag=True,
                 help="--ckpt: corrupt in memory with build-c's seeds and encoding (the default without --data-c)."),
    click.option("--boxes", default="gt", show_default=True, callback=_boxes,
                 help="--ckpt: 'gt' or a COCO detection json (e.g. COCO_val2017_detections_AP_H_56_person.json)."),
    click.option("--corruptions", multiple=True, default=("benchmark",), callback=corruptions_callback,
                 help="--ckpt: corruptions or groups (benchmark, noise, blur, weather, digital, extra, all)."),
    click.option("--severities", type=SeveritiesType(), default="1-5", help="--ckpt: severities, e.g. 1-5 or 1,3."),
    click.option("--base-seed", type=int, default=0, help="--ckpt --on-the-fly: build-c's base seed."),
    click.option("--image-format", type=click.Choice(["jpg", "png", "none"]), default="jpg",
                 help="--ckpt --on-the-fly: encoding round trip after corrupting (build-c's default: JPEG)."),
    click.option("--quality", type=click.IntRange(1, 95), default=DEFAULT_JPEG_QUALITY,
                 help="--ckpt --on-the-fly: JPEG quality (75 = Pillow's default, as the published sets)."),
    click.option("--flip-test/--no-flip-test", default=True, help="--ckpt: average with the flipped crop."),
    click.option("--decode", type=click.Choice(DECODERS), default=None,
                 help="--ckpt: heatmap decoder: quarter (HRNet's quarter-offset rule) or dark (DARK's Taylor step; "
                      "docs/inference.md). Default: the checkpoint's (quarter for files that do not say)."),
    click.option("--device", default="auto", help="--ckpt: auto, cpu, cuda or cuda:N."),
    click.option("--amp", is_flag=True, help="--ckpt: float16 autocast (CUDA only)."),
    click.option("--batch-size", type=click.IntRange(1), default=64, help="--ckpt: crops per forward pass."),
    click.option("--workers", type=click.IntRange(0), default=2,
                 help="--ckpt: DataLoader processes decoding, corrupting and cropping."),
    click.option("--threads", type=click.IntRange(0), default=0,
                 help="--ckpt: PyTorch CPU threads of the network (0: PyTorch's default); 1 is fastest on a busy "
                      "machine."),
    click.option("--arch", callback=_arch, default=None,
                 help="--ckpt: architecture, a name of docs/models.md such as hrnet_w32 or simplebaseline_res50 "
                      "(default: inferred from the file's keys)."),
    click.option("--input-size", callback=_size, default=None,
                 help="--ckpt: network input HEIGHTxWIDTH (default: the checkpoint's, else 256x192 / MPII 256x256)."),
    click.option("--heatmap-size", callback=_size, default=None, help="--ckpt: heatmap HEIGHTxWIDTH (default: the checkpoint's output stride, 4 for the official models)."),
    click.option("--color", type=click.Choice(["rgb", "bgr"]), default=None,
                 help="--ckpt: channel order the network expects (default per source: official SimpleBaseline "
                      "files BGR, HRNet and MMPose RGB, robustpose files their own; see docs/models.md)."),
    click.option("--state-dict", "which", type=click.Choice(["auto", "state_dict", "best_state_dict"]),
                 default="auto", help="--ckpt: which weights of an HRNet checkpoint.pth (latest or best epoch)."),
    click.option("--trust-checkpoint", is_flag=True,
                 help="--ckpt: allow full unpickling (can run code from the file; only for files you trust)."),
    click.option("--overwrite", is_flag=True,
                 help="--ckpt: when --out holds predictions made with other settings, delete those predictions "
                      "files and predict anew (without it such a rerun is refused and nothing is deleted)."),
]


def ckpt_options(fn: Callable) -> Callable:
    """Apply every ``--ckpt`` option to a click command."""
    for option in reversed(CKPT_OPTIONS):
        fn = option(fn)
    return fn


def _cell_name(cell: Cell) -> str:
    """``clean`` or ``corruption/severity``."""
    return "clean" if cell is None else f"{cell[0]}/{cell[1]}"


def covers_benchmark(opts: dict[str, Any]) -> bool:
    """Whether the requested cells include all 15 x 5 benchmark cells (else ``eval`` reports them as partial)."""
    from robustpose.corruptions import corruption_names

    return set(corruption_names("benchmark")) <= set(opts["corruptions"]) and set(SEVERITIES) <= set(
        opts["severities"])


def torchrun_shard() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` outside torchrun."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def _barrier() -> None:
    """Wait for every torchrun process (gloo, so it also works on CPU)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
    dist.destroy_process_group()


def read_checkpoint(opts: dict[str, Any], device: str, option: str = "--ckpt") -> LoadedModel:
    """``load_checkpoint`` with every way a file can fail to be a checkpoint as one ClickException naming it."""
    from robustpose.models import CheckpointError, load_checkpoint

    path = opts["ckpt"]
    try:
        return load_checkpoint(path, arch=opts["arch"], input_size=opts["input_size"],
                               heatmap_size=opts["heatmap_size"], color=opts["color"], which=opts["which"],
                               trust_checkpoint=opts["trust_checkpoint"], device=device)
    except CheckpointError as err:
        raise click.ClickException(f"{option}: {err}") from err
    except Exception as err:  # torch.load / jit / onnxruntime on a file that is not theirs: many exception types
        detail = type(err).__name__ + (f": {str(err).splitlines()[0]}" if str(err).strip() else "")
        raise click.ClickException(f"{option} {path} is not a readable checkpoint ({detail}); {CHECKPOINT_HINT}") \
            from err


def check_checkpoint_file(path: str | Path, option: str) -> CheckpointMeta:
    """That ``path`` loads as a checkpoint (on the CPU, weights only), else a ClickException naming ``option``;
    returns its metadata."""
    return read_checkpoint({"ckpt": Path(path), "arch": None, "input_size": None, "heatmap_size": None,
                            "color": None, "which": "auto", "trust_checkpoint": False}, "cpu", option).meta


def _check_ckpt_options(opts: dict[str, Any]) -> None:
    """The contradictions among --ckpt's options that need no file read."""
    if opts["images"] is None:
        raise click.UsageError("--ckpt needs --images (the clean image folder)")
    if opts["data_c"] is not None and opts["on_the_fly"]:
        raise click.UsageError("--data-c and --on-the-fly exclude each other: read a built set or corrupt in memory")


def predict_checkpoint(opts: dict[str, Any], dataset: str, ann: Path, out: Path, quiet: bool) -> bool:
    """Run ``eval --ckpt``'s prediction step (the options as click passes them); errors become ClickExceptions.

    Every input is checked before the first prediction (annotation schema, images, -C cells, checkpoint format,
    input size against the network's stride). Under ``torchrun`` each process predicts every ``world_size``-th
    cell on GPU ``LOCAL_RANK`` and waits for the others; returns True in the process that should then score the
    run (rank 0).
    """
    _check_ckpt_options(opts)
    from robustpose.datasets.readers import AnnotationError
    from robustpose.inference import InferenceConfig, resolve_device
    from robustpose.inference.evaluate import (
        EvalSpec,
        InputSizeError,
        evaluate_checkpoint,
    )

    rank, world, local_rank = torchrun_shard()
    if opts["threads"]:
        import torch

        torch.set_num_threads(opts["threads"])
    try:
        device = str(resolve_device(opts["device"]))
    except (ValueError, RuntimeError) as err:
        raise click.BadParameter(str(err), param_hint="--device") from err
    if world > 1 and device == "cuda":
        device = f"cuda:{local_rank}"
    console = make_console()
    loaded = read_checkpoint(opts, device)
    try:
        spec = EvalSpec(dataset=dataset, ann=ann, images=opts["images"], out=out, boxes=opts["boxes"],
                        corruptions=tuple(opts["corruptions"]), severities=tuple(opts["severities"]),
                        data_c=opts["data_c"], base_seed=opts["base_seed"],
                        image_format=None if opts["image_format"] == "none" else opts["image_format"],
                        quality=opts["quality"])
        config = InferenceConfig(flip_test=opts["flip_test"], batch_size=opts["batch_size"],
                                 device=device, amp=opts["amp"], workers=opts["workers"], decode=opts["decode"])
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    show = not quiet and console.is_terminal
    lines = LineProgress(console, "predicting", "cells") if not quiet and not show else None
    start = time.perf_counter()
    crops = 0

    def rate() -> str:
        return f"{crops / max(time.perf_counter() - start, 1e-9):.1f} crops/s"

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), console=console, transient=True, disable=not show) as bar:
        task = bar.add_task("predicting", total=None, rate="")

        def progress(cells: Iterable[Cell], total: int) -> Iterator[Cell]:
            bar.update(task, total=total)
            if lines is not None:
                lines.total = total
            for cell in cells:
                bar.update(task, description=f"predicting {_cell_name(cell)}")
                yield cell
                bar.advance(task)
                if lines is not None:  # not a terminal: a line every LINE_EVERY_S seconds
                    lines.update(note=f"last {_cell_name(cell)}, {rate()}")

        def on_cell(cell: Cell, times: Any) -> None:
            nonlocal crops
            crops += times.crops
            bar.update(task, rate=rate())

        try:
            report = evaluate_checkpoint(loaded, spec, config, progress=progress, on_cell=on_cell,
                                         shard=(rank, world), overwrite=opts["overwrite"])
        except InputSizeError as err:
            raise click.BadParameter(str(err), param_hint="--input-size") from err
        except (AnnotationError, ValueError, FileNotFoundError) as err:
            raise click.ClickException(str(err)) from err
    if not quiet:
        plain(console, _prediction_summary(report))
    if world > 1:
        _barrier()
    return rank == 0


def _prediction_summary(report: Any) -> str:
    """What the prediction step did; a rerun that found every cell finished says so instead of '0 crops at 0/s'."""
    if not report.computed:
        return f"all {len(report.skipped)} cell(s) already predicted in an earlier run; scoring them"
    t = report.times.as_dict()
    skipped = f", skipped {len(report.skipped)} finished" if report.skipped else ""
    return (f"predicted {len(report.computed)} cell(s){skipped}; "
            f"{t['crops']} crops at {t['crops_per_s']:.1f}/s (decode+corrupt {t['decode_corrupt_s']:.1f}s, "
            f"crop {t['crop_s']:.1f}s, forward {t['forward_s']:.1f}s, post {t['postprocess_s']:.1f}s)")
