"""``robustpose parts``: build ASDA part pools from LIP-format parsing data (``build``) or from SynthPose (``synth``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import option_group
from .output import make_console, plain, progress_wrapper

EPILOG = """\b
Examples:
  robustpose parts build --images LIP/TrainVal_images/train_images \\
      --masks LIP/TrainVal_parsing_annotations/train_segmentations --out data/lip_parts
  robustpose synth --out data/synthpose --train 3000 --val 200 --part-labels
  robustpose parts synth --data data/synthpose --out data/synth_parts
  robustpose parts build --images data/synthpose/images/train --masks data/synthpose/parsing/train --out /tmp/p
"""

FILTER_OPTIONS = [
    click.option("--min-side", type=click.FloatRange(min=0), default=35.0, show_default=True,
                 help="Parts smaller than (MIN_SIDE * longest image side / REFERENCE_SIDE)^2 pixels are dropped."),
    click.option("--reference-side", type=click.FloatRange(min=1), default=400.0, show_default=True,
                 help="Image side at which MIN_SIDE^2 applies unscaled (LIP's images are about 400)."),
    click.option("--min-fill", type=click.FloatRange(0, 1), default=0.1, show_default=True,
                 help="Parts filling less of their bounding box are dropped as scattered."),
]
# the options both commands end with: the pool to write, the filters, progress
pool_options = option_group([
    click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                 help="Pool folder to write: pool.json and <type>/NNNNNN.png."),
    *FILTER_OPTIONS,
    click.option("--quiet", "-q", is_flag=True, help="No progress."),
])


@click.group("parts", epilog=EPILOG)
def parts_group() -> None:
    """Part pools for `robustpose train asda`: RGBA body parts, pool.json and a pool hash every checkpoint records."""


def _build(sources: Any, total: int, out: Path, opts: dict[str, Any], quiet: bool) -> None:
    from robustpose.datasets.parts import PartFilter, build_pool

    console = make_console()
    filters = PartFilter(opts["min_side"], opts["reference_side"], opts["min_fill"])
    ticks = progress_wrapper(console, "cutting parts", "images", quiet)(range(total), total)
    try:
        result = build_pool(sources, out, filters, on_skip=lambda name, why: plain(console, f"skipped {why}"),
                            progress=lambda: next(ticks, None))
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    for _ in ticks:
        pass
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
    plain(console, f"wrote {sum(result.counts.values())} parts of {result.images} images to {out} "
                   f"({len(result.skipped)} skipped): {counts or 'none'}; pool hash {result.hash}")
    if not result.images:
        raise click.ClickException(f"no image gave parts; see the skipped files above (nothing usable in {out})")


@parts_group.command("build", epilog=EPILOG)
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Training images (*.jpg, *.png), e.g. LIP's train_images.")
@click.option("--masks", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Parsing masks <stem>.png with LIP label ids 0-19, e.g. LIP's train_segmentations.")
@pool_options
def build_cmd(images: Path, masks: Path, out: Path, quiet: bool, **opts: Any) -> None:
    """Cut a part pool from LIP-format data: connected components per part type, area and scatter filters.

    Training split only. A mask of another size than its image, an unknown label value or an unreadable file is
    reported by name and skipped; the rest is built. The same input gives the same pool hash."""
    from robustpose.datasets.parts import check_train_folder, lip_sources

    for path in (images, masks):
        try:
            check_train_folder(path)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    sources = list(lip_sources(images, masks))
    if not sources:
        raise click.ClickException(f"{images} holds no *.jpg or *.png images; check --images")
    _build(sources, len(sources), out, opts, quiet)


@parts_group.command("synth", epilog=EPILOG)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A `robustpose synth` folder; its training split is used (never the validation split).")
@pool_options
def synth_cmd(data: Path, out: Path, quiet: bool, **opts: Any) -> None:
    """Export a part pool from SynthPose's exact part labels (re-rendered from the recorded seed) and its training
    images; `parts build` on the same data's --part-labels rasters gives the same pool."""
    from robustpose.datasets.parts import synth_sources

    try:
        sources = list(synth_sources(data))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _build(sources, len(sources), out, opts, quiet)
