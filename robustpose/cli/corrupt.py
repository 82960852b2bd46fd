"""``robustpose corrupt``: a labelled grid of one image under each corruption and severity."""

from __future__ import annotations

import io
from pathlib import Path

import click

from .options import CORRUPTIONS_HELP, SeveritiesType, corruptions_callback
from .output import make_console, progress_wrapper

EPILOG = """\b
Examples:
  robustpose corrupt --out grid.png                      # the bundled sample image, 15 x 5
  robustpose corrupt photo.jpg --out grid.png --corruptions noise,blur --severities 1,3,5
"""


@click.command("corrupt", epilog=EPILOG)
@click.argument("image", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the grid (PNG or JPEG, by extension).")
@click.option("--corruptions", "-c", multiple=True, default=["benchmark"], callback=corruptions_callback,
              help=CORRUPTIONS_HELP)
@click.option("--severities", "-s", type=SeveritiesType(), default="1-5", help="Severities, e.g. 1-5 or 1,3,5.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0,
              help="Base seed; each cell gets the seed build-c would give this file.")
@click.option("--max-side", type=click.IntRange(min=0), default=640,
              help="Downscale the image first so its longer side is at most this (0: keep). Corruption parameters "
                   "are in pixels, so this matches the look at COCO's resolution.")
@click.option("--thumb-width", type=click.IntRange(min=32), default=192, help="Width of each thumbnail.")
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
def corrupt_cmd(image, out, corruptions, severities, seed, max_side, thumb_width, quiet) -> None:
    """Write a labelled grid of IMAGE under each corruption (rows) and severity (columns).

    Without IMAGE, the bundled sample image (scikit-image's public-domain 'astronaut') is used.
    """
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise click.BadParameter(f"{out} must end in .png, .jpg or .jpeg", param_hint="--out")
    import numpy as np
    from PIL import Image

    from robustpose.datasets.imageio import ImageReadError, load_rgb, write_atomic
    from robustpose.report.grid import corruption_grid, sample_image

    try:
        pixels = load_rgb(image) if image else sample_image()
    except ImageReadError as exc:
        raise click.ClickException(f"cannot read image {image}: {exc}") from None
    key = image.name if image else "astronaut.png"
    if max_side and max(pixels.shape[:2]) > max_side:
        scale = max_side / max(pixels.shape[:2])
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS))
    total = len(corruptions) * len(severities)
    ticks = progress_wrapper(make_console(), "corrupting", "cells", quiet)(range(total), total)
    grid = corruption_grid(pixels, corruptions, severities, seed=seed, key=key, thumb_width=thumb_width,
                           progress=lambda: next(ticks, None))  # one tick per finished cell
    for _ in ticks:  # close the bar / print the last progress line
        pass
    encoded = io.BytesIO()
    grid.save(encoded, format="PNG" if out.suffix.lower() == ".png" else "JPEG")
    write_atomic(out, encoded.getvalue())
    click.echo(f"wrote {out} ({len(corruptions)} corruptions x {len(severities)} severities, {grid.width}x{grid.height})")
