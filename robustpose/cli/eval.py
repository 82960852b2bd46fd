"""``robustpose eval``: score a predictions directory (clean + corruption cells) and write the robustness report.

Exit codes: 0 scored (also with ``--partial`` and missing cells); 1 bad input, e.g. a missing cell without
``--partial`` (the message names it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .eval_ckpt import ckpt_options, covers_benchmark, predict_checkpoint
from .lazy import module_constant
from .output import make_console, plain, progress_wrapper

BACKENDS: tuple[str, ...] = module_constant("robustpose.metrics.coco", "BACKENDS")
DEFAULT_BACKEND: str = module_constant("robustpose.metrics.coco", "DEFAULT_BACKEND")
DATASETS: tuple[str, ...] = module_constant("robustpose.report.layout", "DATASETS")


def _ckpt_param_names() -> frozenset[str]:
    """The parameter names of the --ckpt options (as ckpt_options adds them), --ckpt itself excluded."""
    def probe() -> None: ...

    return frozenset(p.name for p in ckpt_options(probe).__click_params__) - {"ckpt"}  # type: ignore[attr-defined]


CKPT_PARAMS = _ckpt_param_names()


def ckpt_only_options_given(ctx: click.Context) -> list[str]:
    """The --ckpt options set on the command line (left at their defaults they are harmless), as ``--name``."""
    given = [p for p in ctx.command.params if p.name in CKPT_PARAMS
             and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
    return [max(p.opts, key=len) for p in given]

EVAL_EPILOG = """\b
Examples:
  robustpose eval --preds runs/hrnet_w32/preds --dataset coco \\
      --ann annotations/person_keypoints_val2017.json --out runs/hrnet_w32/report
  robustpose eval --preds preds/ --dataset ochuman --ann ochuman_coco_format_test_range_0.00_1.00.json --out rep/
  robustpose eval --preds preds/ --dataset mpii --ann annot/valid.json --headboxes annot/gt_valid.mat --out rep/
  robustpose eval --preds preds/ --dataset coco --ann val.json --out rep/ --partial --metric-backend pycocotools
  robustpose eval --ckpt pose_hrnet_w32_256x192.pth --dataset coco --ann person_keypoints_val2017.json \\
      --images val2017/ --boxes COCO_val2017_detections_AP_H_56_person.json --on-the-fly --out runs/w32
  robustpose eval --ckpt pose_resnet_50_256x192.pth --dataset coco --ann val.json --images val2017/ \\
      --data-c data/coco-C --device cuda --amp --batch-size 256 --out runs/r50

PREDS holds clean.json and <corruption>/<severity>.json (COCO results format; MPII: see docs/metrics.md) and
optionally run.json. Writes results.csv, summary.json, report.md, per_corruption.png, per_severity.png.
"""


@click.command("eval", epilog=EVAL_EPILOG)
@click.option("--preds", "preds_dir", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Predictions directory: clean.json and <corruption>/<severity>.json (see docs/metrics.md).")
@click.option("--dataset", required=True, type=click.Choice(DATASETS),
              help="coco: COCO keypoint AP; ochuman: AP with xtcocotools' rules; mpii: PCKh (HRNet conventions).")
@click.option("--ann", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ground truth: COCO-format keypoints json, or the MPII annotation json (HRNet valid.json).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Report folder (created): results.csv, summary.json, report.md and two plots.")
@click.option("--metric-backend", "backend", type=click.Choice(BACKENDS), default=DEFAULT_BACKEND,
              help="COCO AP engine; both give pycocotools' numbers, pycocotools is the reference.")
@click.option("--partial", is_flag=True,
              help="Report the cells that exist when some are missing; the summary is marked incomplete.")
@click.option("--headboxes", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="MPII only: HRNet's annot/gt_valid.mat (else head boxes come from the json's 'headbox').")
@click.option("--jobs", type=click.IntRange(0), default=1, show_default=True,
              help="Score the cells in N processes (0: one per CPU core); the numbers do not change. A COCO "
                   "val-sized table: 6.8 s with 2 on 2 cores, 8.7 s with 1 (docs/metrics.md).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no table; files only.")
@ckpt_options
@click.pass_context
def eval_cmd(ctx: click.Context, preds_dir: Path | None, dataset: str, ann: Path, out: Path, backend: str,
             partial: bool, headboxes: Path | None, jobs: int, quiet: bool, **ckpt: Any) -> None:
    """Score the predictions in PREDS on clean and corrupted data: metric per cell, mPC, rPC, report.

    With --ckpt FILE instead of --preds, first predict clean and every requested cell into --out (see
    docs/inference.md), then score --out.
    """
    console = make_console()
    if (preds_dir is None) == (ckpt["ckpt"] is None):
        raise click.UsageError("give either --preds DIR (score predictions) or --ckpt FILE (predict, then score)")
    if preds_dir is not None:
        ignored = ckpt_only_options_given(ctx)
        if ignored:  # they would be silently ignored: the predictions already exist
            raise click.UsageError(f"{', '.join(ignored)} only apply with --ckpt; --preds scores predictions that "
                                   "already exist: drop them")
    if ckpt["ckpt"] is not None:
        if not predict_checkpoint(ckpt, dataset, ann, out, quiet):
            return  # a torchrun process other than rank 0: rank 0 scores
        preds_dir, partial = out, partial or not covers_benchmark(ckpt)

    from robustpose.report import evaluate_run
    from robustpose.report.render import rich_table

    progress = progress_wrapper(console, "scoring", "files", quiet)
    try:
        result = evaluate_run(preds_dir, dataset, ann, out, backend=backend, partial=partial,
                              headboxes=headboxes, progress=progress, jobs=jobs)
    except ValueError as err:  # MissingCellError is a ValueError
        raise click.ClickException(str(err)) from err
    if not quiet:
        make_console(stderr=False).print(rich_table(result))
        plain(console, f"wrote {out}/results.csv, summary.json, report.md, per_corruption.png, per_severity.png")
