"""``robustpose build-c`` and ``robustpose verify-c``: build a -C benchmark on disk, and check one.

Exit codes: 0 all done and sound; 1 bad input, unwritable output, full disk, failed images or a failed check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from robustpose.datasets.readers import DATASETS, AnnotationError

from .lazy import module_constant
from .options import CORRUPTIONS_HELP, SeveritiesType, corruptions_callback
from .output import make_console, plain, progress_wrapper

if TYPE_CHECKING:
    from robustpose.datasets.build_c import BuildSummary
    from robustpose.datasets.verify_c import VerifyReport

LAYOUTS: tuple[str, ...] = module_constant("robustpose.datasets.build_c", "LAYOUTS")
FORMATS: tuple[str, ...] = module_constant("robustpose.datasets.imageio", "FORMATS")
DEFAULT_JPEG_QUALITY: int = module_constant("robustpose.datasets.imageio", "DEFAULT_JPEG_QUALITY")

BUILD_EPILOG = """\b
Examples:
  robustpose build-c --dataset coco --ann annotations/person_keypoints_val2017.json \\
      --images coco/val2017 --out data/coco-C
  robustpose build-c --dataset mpii --ann mpii/annot/valid.json --images mpii/images \\
      --out data/mpii-C --corruptions noise --corruptions zoom_blur --severities 3-5
  robustpose build-c --dataset coco --ann val.json --images val2017 --out data/coco-C --shard 3/8
  robustpose build-c --dataset coco --ann val.json --images val2017 --out data/coco-C --layout advmix

Rerun the same command to resume an interrupted build. See docs/build_c.md.
"""

VERIFY_EPILOG = """\b
Examples:
  robustpose verify-c data/coco-C
  robustpose verify-c data/coco-C --regenerate 100 --images coco/val2017
"""

_ADVMIX_FIXED = ("corruptions", "severities", "fmt", "quality", "seed")
_SHOWN = 10  # failures named in the summary


def default_workers() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_shard(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, int]:
    """Click callback: ``'K/N'`` to ``(K, N)`` with 1 <= K <= N."""
    k, _, n = text.partition("/")
    try:
        shard = int(k), int(n)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not K/N, e.g. 1/4") from None
    if not 1 <= shard[0] <= shard[1]:
        raise click.BadParameter(f"shard {text!r} needs 1 <= K <= N")
    return shard


def _summary_table(summary: BuildSummary) -> Table:
    table = Table(title=f"build-c {summary.out} (shard {summary.shard[0]}/{summary.shard[1]})")
    table.add_column("")
    table.add_column("value", justify="right")
    for label, value in (
        ("images in shard", summary.images),
        ("images corrupted now", summary.images_done),
        ("images already complete", summary.images_already_complete),
        ("files written", summary.files_written),
        ("files already complete", summary.files_already_complete),
        ("MB written", f"{summary.bytes_written / 1e6:.1f}"),
        ("seconds", f"{summary.seconds:.1f}"),
        ("images/s", f"{summary.images_per_second:.2f}"),
        ("failed images", len(summary.failures)),
    ):
        table.add_row(label, str(value))
    return table


def _advmix_conflicts(ctx: click.Context) -> list[str]:
    source = click.core.ParameterSource
    return [f"--{name}" if name != "fmt" else "--format"
            for name in _ADVMIX_FIXED if ctx.get_parameter_source(name) not in (source.DEFAULT, None)]


@click.command("build-c", epilog=BUILD_EPILOG)
@click.option("--dataset", type=click.Choice(DATASETS), required=True,
              help="Annotation format: coco/ochuman (COCO-format json), mpii (HRNet-style json), folder (no json).")
@click.option("--ann", "ann_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Annotation file; only the images it references are corrupted (not for --dataset folder).")
@click.option("--images", "images_dir", type=click.Path(path_type=Path, file_okay=False, exists=True), required=True,
              help="Folder the annotation's image file names are relative to.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output root: OUT/<corruption>/<severity>/<file name>, OUT/dataset.json, manifests.")
@click.option("--all-images", is_flag=True, help="Corrupt every image file under --images, not only annotated ones.")
@click.option("--corruptions", multiple=True, default=("benchmark",), callback=corruptions_callback,
              help=CORRUPTIONS_HELP)
@click.option("--severities", type=SeveritiesType(), default="1-5", help="Severities: a range, a list or both, e.g. 1-5, 3, 1,3,5.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jpg", help="Output encoding.")
@click.option("--quality", type=click.IntRange(1, 95), default=DEFAULT_JPEG_QUALITY,
              help="JPEG quality (Pillow). 75 is Pillow's default and what the published AdvMix COCO-C/MPII-C "
                   "numbers used: JPEG through Pillow at quality 75, 4:2:0.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0,
              help="Base seed; each (corruption, severity, image) cell gets its own seed from it (docs/seeding.md).")
@click.option("--layout", type=click.Choice(LAYOUTS), default="robustpose",
              help="advmix: reproduce AdvMix's make_datasets.py (severity folders 0..4, np.random.seed(1) before "
                   "every call, all 19 corruptions, JPEG q75).")
@click.option("--workers", type=click.IntRange(min=1), default=default_workers(),
              help="Worker processes (default: all cores). Results do not depend on it.")
@click.option("--shard", default="1/1", callback=parse_shard, help="Build only part K of N (K/N), e.g. one SLURM array task each.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first image that cannot be corrupted.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def build_c_cmd(ctx: click.Context, dataset, ann_file, images_dir, out, all_images, corruptions, severities, fmt,
                quality, seed, layout, workers, shard, fail_fast, quiet) -> None:
    """Build a -C benchmark (COCO-C, MPII-C, OCHuman-C): every image x corruption x severity, on disk."""
    from robustpose.corruptions import corruption_names
    from robustpose.datasets.build_c import BuildConfig, BuildError, build_c

    console = make_console(quiet=False)
    if layout == "advmix":
        conflicts = _advmix_conflicts(ctx)
        if conflicts:
            raise click.BadParameter(f"--layout advmix fixes {', '.join(conflicts)}; drop them", param_hint="--layout")
        corruptions = corruption_names("all")
    if dataset != "folder" and ann_file is None:
        raise click.BadParameter(f"--dataset {dataset} needs --ann FILE (or use --dataset folder)", param_hint="--ann")
    try:
        config = BuildConfig(
            out=out, images_dir=images_dir, dataset=dataset, ann_file=ann_file, all_images=all_images,
            corruptions=tuple(corruptions), severities=tuple(severities), fmt=fmt,
            quality=quality, base_seed=seed, layout=layout, workers=workers, shard=shard,
            fail_fast=fail_fast,
        )
        progress = progress_wrapper(console, "images", "images", quiet)
        summary = build_c(config, progress=progress)
    except (AnnotationError, BuildError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(_summary_table(summary))
    if not summary.ok:
        for name, reason in summary.failures[:_SHOWN]:
            plain(console, f"failed: {name}: {reason}")
        more = len(summary.failures) - _SHOWN
        tail = f" (and {more} more)" if more > 0 else ""
        stop = "; stopped at the first failure (--fail-fast)" if summary.stopped_early else ""
        raise click.ClickException(
            f"{len(summary.failures)} image(s) failed{tail}, listed in {out / 'errors.jsonl'}{stop}"
        )


def _verify_lines(report: VerifyReport) -> Iterator[str]:
    for label, paths in (("missing", report.missing), ("altered", report.altered),
                         ("not in any manifest", report.unrecorded),
                         ("stray (not part of the set; move it out)", report.stray),
                         ("regenerated differently", report.regenerate_mismatch)):
        for path in paths[:_SHOWN]:
            yield f"{label}: {path}"
        if len(paths) > _SHOWN:
            yield f"{label}: ... and {len(paths) - _SHOWN} more"
    if report.failed_images:
        yield f"images that failed at build time (see errors.jsonl): {', '.join(report.failed_images[:_SHOWN])}"


@click.command("verify-c", epilog=VERIFY_EPILOG)
@click.argument("out", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--regenerate", type=click.IntRange(min=0), default=0,
              help="Also recompute this many random files from the source images and compare bytes.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Source image folder (needed by --regenerate).")
@click.option("--seed", type=int, default=0, help="Picks the files --regenerate recomputes.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify_c_cmd(out: Path, regenerate: int, images_dir: Path | None, seed: int, quiet: bool) -> None:
    """Check every file of the -C dataset OUT against its manifests: report missing or altered files."""
    from robustpose.datasets.build_c import BuildError
    from robustpose.datasets.verify_c import verify_c

    console = make_console()
    try:
        report = verify_c(out, regenerate=regenerate, images_dir=images_dir, rng=seed,
                          progress=progress_wrapper(console, "files", "files", quiet))
    except (BuildError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in _verify_lines(report):
        plain(console, line)
    counts = (f"{report.expected} expected, {report.checked} checked, {len(report.missing)} missing, "
              f"{len(report.altered)} altered, {len(report.unrecorded)} unrecorded, {len(report.stray)} stray, "
              f"{report.regenerated} regenerated ({len(report.regenerate_mismatch)} differ)")
    if not report.ok:
        raise click.ClickException(f"{out} failed verification: {counts}")
    plain(console, f"{out} OK: {counts}")
