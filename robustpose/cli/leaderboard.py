"""``robustpose leaderboard``: runs side by side, one table per protocol, as CSV, Markdown and a plot.

Exit codes: 0 written; 1 bad input (a RUN_DIR without summary.json, named in the message).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .output import make_console, plain

LEADERBOARD_EPILOG = """\b
Examples:
  robustpose leaderboard runs/hrnet_w32/report runs/hrnet_w32_advmix/report --out leaderboard/
  robustpose leaderboard runs/*/report --out leaderboard/ --with-paper
  robustpose leaderboard runs/*/report --out leaderboard/ --html leaderboard.html

Each RUN_DIR is an `robustpose eval --out` folder. Runs that differ in dataset, boxes, corruption set, seeding or
flip test go to separate tables. Writes leaderboard.csv, leaderboard.md and leaderboard.png.
"""


@click.command("leaderboard", epilog=LEADERBOARD_EPILOG)
@click.argument("run_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder (created) for leaderboard.csv, leaderboard.md and leaderboard.png.")
@click.option("--with-paper", is_flag=True,
              help="Add the published AdvMix (CVPR 2021) rows, labelled 'published', in their own protocol tables.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the leaderboard as one self-contained page (plot embedded, tables sortable by any "
                   "column, nothing fetched from the network) to this file.")
def leaderboard_cmd(run_dirs: tuple[Path, ...], out: Path, with_paper: bool, html_path: Path | None) -> None:
    """Rank the runs in RUN_DIRS by mPC, never mixing protocols."""
    if not run_dirs and not with_paper:
        raise click.UsageError("give at least one RUN_DIR (or --with-paper for the published rows alone)")
    from robustpose.report.leaderboard import (
        build_leaderboard,
        flip_test_label,
        percent_text,
        write_leaderboard,
    )

    try:
        groups = build_leaderboard(list(run_dirs), with_paper=with_paper)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    write_leaderboard(groups, out)
    if html_path is not None:
        from robustpose.datasets.imageio import write_atomic
        from robustpose.report.html import leaderboard_html

        html_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(html_path, leaderboard_html(groups).encode())
    console = make_console(stderr=False)
    for i, (protocol, table) in enumerate(groups, 1):
        shown = Table(title=f"Protocol {i}: " + ", ".join(
            f"{k}={flip_test_label(v) if k == 'flip_test' else v}" for k, v in protocol.items()))
        for col in ("model", "method", "select", "input_size", "clean", "mPC", "rPC", "complete", "source"):
            shown.add_column(col, justify="right" if col in ("clean", "mPC", "rPC") else "left")
        for r in table.itertuples():
            shown.add_row(r.model, r.method, r.select, r.input_size, percent_text(r.clean), percent_text(r.mPC),
                          percent_text(r.rPC),
                          "yes" if r.complete else "NO (partial run)", r.source)
        console.print(shown)
    plain(make_console(), f"wrote {out}/leaderboard.csv, leaderboard.md, leaderboard.png"
          + (f" and {html_path}" if html_path is not None else ""))
