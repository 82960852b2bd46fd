"""The ``--ckpt`` half of ``robustpose eval``: options and the call that writes the predictions to score.

``eval --ckpt FILE ... --out RUN_DIR`` predicts clean and every requested cell into RUN_DIR (the layout
``eval --preds`` reads), then ``eval`` scores RUN_DIR as if given ``--preds RUN_DIR``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from robustpose.datasets.imageio import DEFAULT_JPEG_QUALITY
from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.inference import DECODERS, InferenceConfig, resolve_device
from robustpose.inference.evaluate import Cell, EvalSpec, evaluate_checkpoint
from robustpose.models import CheckpointError, list_models, load_checkpoint

from .options import SeveritiesType, corruptions_callback


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """'256x192' (height x width) -> (256, 192)."""
    if value is None:
        return None
    h, sep, w = value.lower().partition("x")
    if not sep or not h.isdigit() or not w.isdigit() or int(h) <= 0 or int(w) <= 0:
        raise click.BadParameter(f"expected HEIGHTxWIDTH such as 256x192, got {value!r}", ctx=ctx, param=param)
    return int(h), int(w)


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
    click.option("--boxes", default="gt", show_default=True,
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
    click.option("--arch", type=click.Choice(list_models()), default=None,
                 help="--ckpt: architecture (default: inferred from the file's keys)."),
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
]


def ckpt_options(fn: Callable) -> Callable:
    """Apply every ``--ckpt`` option to a click command."""
    for option in reversed(CKPT_OPTIONS):
        fn = option(fn)
    return fn


def _cell_name(cell: Cell) -> str:
    return "clean" if cell is None else f"{cell[0]}/{cell[1]}"


def covers_benchmark(opts: dict[str, Any]) -> bool:
    """Whether the requested cells include all 15 x 5 benchmark cells (else ``eval`` reports them as partial)."""
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


def predict_checkpoint(opts: dict[str, Any], dataset: str, ann: Path, out: Path, quiet: bool) -> bool:
    """Run ``eval --ckpt``'s prediction step (the options as click passes them); errors become ClickExceptions.

    Under ``torchrun`` each process predicts every ``world_size``-th cell on GPU ``LOCAL_RANK`` and waits for the
    others; returns True in the process that should then score the run (rank 0).
    """
    rank, world, local_rank = torchrun_shard()
    try:
        device = str(resolve_device(opts["device"]))
    except (ValueError, RuntimeError) as err:
        raise click.BadParameter(str(err), param_hint="--device") from err
    if world > 1 and device == "cuda":
        device = f"cuda:{local_rank}"
    if opts["images"] is None:
        raise click.UsageError("--ckpt needs --images (the clean image folder)")
    if opts["data_c"] is not None and opts["on_the_fly"]:
        raise click.UsageError("--data-c and --on-the-fly exclude each other: read a built set or corrupt in memory")
    console = Console(stderr=True)
    try:
        loaded = load_checkpoint(opts["ckpt"], arch=opts["arch"], input_size=opts["input_size"],
                                 heatmap_size=opts["heatmap_size"], color=opts["color"], which=opts["which"],
                                 trust_checkpoint=opts["trust_checkpoint"],
                                 device=device)
        spec = EvalSpec(dataset=dataset, ann=ann, images=opts["images"], out=out, boxes=opts["boxes"],
                        corruptions=tuple(opts["corruptions"]), severities=tuple(opts["severities"]),
                        data_c=opts["data_c"], base_seed=opts["base_seed"],
                        image_format=None if opts["image_format"] == "none" else opts["image_format"],
                        quality=opts["quality"])
        config = InferenceConfig(flip_test=opts["flip_test"], batch_size=opts["batch_size"],
                                 device=device, amp=opts["amp"], workers=opts["workers"], decode=opts["decode"])
        show = not quiet and console.is_terminal
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[rate]}"), console=console, transient=True, disable=not show) as bar:
            task = bar.add_task("predicting", total=None, rate="")
            start = time.perf_counter()
            crops = 0

            def progress(cells: Iterable[Cell], total: int) -> Iterator[Cell]:
                bar.update(task, total=total)
                for cell in cells:
                    bar.update(task, description=f"predicting {_cell_name(cell)}")
                    yield cell
                    bar.advance(task)

            def on_cell(cell: Cell, times: Any) -> None:
                nonlocal crops
                crops += times.crops
                bar.update(task, rate=f"{crops / (time.perf_counter() - start):.1f} crops/s")

            report = evaluate_checkpoint(loaded, spec, config, progress=progress, on_cell=on_cell,
                                         shard=(rank, world))
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    if not quiet:
        t = report.times.as_dict()
        console.print(f"predicted {len(report.computed)} cell(s), skipped {len(report.skipped)} finished; "
                      f"{t['crops']} crops at {t['crops_per_s']:.1f}/s (decode+corrupt {t['decode_corrupt_s']:.1f}s, "
                      f"crop {t['crop_s']:.1f}s, forward {t['forward_s']:.1f}s, post {t['postprocess_s']:.1f}s)")
    if world > 1:
        _barrier()
    return rank == 0

