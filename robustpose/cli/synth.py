"""``robustpose synth``: render a SynthPose dataset (COCO keypoint format)."""

from __future__ import annotations

from pathlib import Path

import click

from .lazy import module_constant
from .output import make_console, plain, progress_wrapper

MAX_PEOPLE: int = module_constant("robustpose.datasets.synthpose", "SynthConfig.max_people")

EPILOG = """\b
Examples:
  robustpose synth --out data/synthpose --train 2000 --val 200
  robustpose synth --out /tmp/sp --train 10 --val 5 --size 256x192 --seed 3
  robustpose synth --out data/synthpose --part-labels      # + LIP-format part labels (robustpose parts build)
"""


def parse_size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    """'320x240' -> (320, 240) (width, height)."""
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 320x240, got {value!r}", ctx, param) from None
    if w < 32 or h < 32:
        raise click.BadParameter(f"size must be at least 32x32, got {value!r}", ctx, param)
    return w, h


@click.command("synth", epilog=EPILOG)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: images/{train,val}/*.jpg and annotations/person_keypoints_{train,val}.json.")
@click.option("--train", "n_train", type=click.IntRange(min=0), default=2000, help="Number of training images.")
@click.option("--val", "n_val", type=click.IntRange(min=0), default=200, help="Number of validation images.")
@click.option("--size", callback=parse_size, default="320x240", help="Image size WIDTHxHEIGHT in pixels.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0,
              help="Seed; image i of a split depends only on (seed, split, i).")
@click.option("--max-people", type=click.IntRange(min=1), default=MAX_PEOPLE, show_default=True,
              help="Most people drawn in one image.")
@click.option("--part-labels", is_flag=True,
              help="Also write each image's LIP part labels, parsing/{train,val}/*.png (ids 0-19, for `robustpose "
                   "parts build`); the images are the same with or without.")
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
def synth_cmd(out: Path, n_train: int, n_val: int, size: tuple[int, int], seed: int, max_people: int,
              part_labels: bool, quiet: bool) -> None:
    """Render SynthPose: multi-person scenes with exact COCO keypoint labels and occlusion-aware visibility."""
    from robustpose.datasets.synthpose import SynthConfig, generate_split, iter_splits

    config = SynthConfig(width=size[0], height=size[1], max_people=max_people)
    console = make_console()
    for split, count in iter_splits(n_train, n_val):
        ticks = progress_wrapper(console, f"rendering {split}", "images", quiet)(range(count), count)
        ann = generate_split(out, split, count, config, seed, progress=lambda t=ticks: next(t, None),
                             part_labels=part_labels)
        for _ in ticks:  # close the bar / print the last progress line
            pass
        plain(console, f"wrote {count} {split} images and {ann}")
