"""A leaderboard as one self-contained HTML page: every protocol's table, sortable, with the plot embedded.

Nothing is fetched when the page opens (no external script, style sheet, font or image): the plot is a
``data:image/png;base64`` URI and the sorting script is inline, so the file can be mailed or attached as it is.
Clicking a column header sorts that table by it (again: the other way). The address fragment
``#sort=<table>:<column>:<asc|desc>`` (tables counted from 1, e.g. ``#sort=1:clean:desc``) sorts on load, so a
sorted view can be linked to. Published rows carry a ``paper`` mark and incomplete runs an ``incomplete`` one.
"""

from __future__ import annotations

import base64
import html
import io

import pandas as pd
from matplotlib.figure import Figure

from robustpose.metrics.robustness import SUMMARY_GROUPS

from .leaderboard import lower_is_better, plot_leaderboard, protocol_label

NUMERIC = ("clean", "mPC", "rPC", *SUMMARY_GROUPS)
SHOWN = ("model", "method", "select", "input_size", "metric", *NUMERIC, "complete", "source")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
p.protocol { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { white-space: nowrap; }
th { cursor: pointer; background: #f3f3f3; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; } th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.paper td { background: #fff8e1; } tr.incomplete td { color: #8a8a8a; }
span.mark { font-size: 0.75em; padding: 0 0.4em; border-radius: 0.6em; margin-left: 0.4em; }
span.paper { background: #f0c36d; color: #222; } span.incomplete { background: #ddd; color: #555; }
img { max-width: 100%; margin-top: 1.5em; } div.scroll { overflow-x: auto; }
"""

# Sorting: numbers by value (a blank or '–' cell goes last either way), text alphabetically.
SCRIPT = """
function sortTable(table, col, dir) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => r.cells[col].dataset.value;
  const numeric = table.tHead.rows[0].cells[col].classList.contains("num");
  rows.sort((a, b) => {
    let x = key(a), y = key(b);
    if (numeric) {
      x = x === "" ? NaN : Number(x); y = y === "" ? NaN : Number(y);
      if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
      return dir === "asc" ? x - y : y - x;
    }
    return dir === "asc" ? x.localeCompare(y) : y.localeCompare(x);
  });
  rows.forEach(r => body.appendChild(r));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) =>
    th.setAttribute("aria-sort", i === col ? (dir === "asc" ? "ascending" : "descending") : "none"));
}
document.querySelectorAll("table.leaderboard").forEach(table => {
  Array.from(table.tHead.rows[0].cells).forEach((th, col) => th.addEventListener("click", () =>
    sortTable(table, col, th.getAttribute("aria-sort") === "descending" ? "asc" : "desc")));
});
const wanted = /^#sort=(\\d+):([^:]+):(asc|desc)$/.exec(decodeURIComponent(location.hash));
if (wanted) {
  const table = document.querySelectorAll("table.leaderboard")[Number(wanted[1]) - 1];
  const col = table ? Array.from(table.tHead.rows[0].cells).findIndex(th => th.dataset.column === wanted[2]) : -1;
  if (col >= 0) sortTable(table, col, wanted[3]);
}
"""


def _png_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(column: str, value: object) -> str:
    """One ``<td>``: numbers shown to one decimal with their full value in ``data-value`` for sorting."""
    if column in NUMERIC:
        missing = value is None or pd.isna(value)
        raw, shown = ("", "–") if missing else (repr(float(value)), f"{float(value):.1f}")
        return f'<td class="num" data-value="{raw}">{shown}</td>'
    if column == "complete":
        text = "yes" if bool(value) else "no"
        return f'<td data-value="{text}">{text}</td>'
    text = html.escape(str(value))
    return f'<td data-value="{text}">{text}</td>'


def _table(index: int, protocol: dict, table: pd.DataFrame) -> str:
    head = "".join(f'<th class="{"num" if c in NUMERIC else "text"}" data-column="{c}" aria-sort='
                   f'"{"descending" if c == "mPC" else "none"}">{html.escape(c)}</th>' for c in SHOWN)
    rows = []
    for row in table.to_dict("records"):
        paper = str(row["source"]).startswith("published")
        classes = [name for name, on in (("paper", paper), ("incomplete", not row["complete"])) if on]
        marks = "".join(f'<span class="mark {c}">{c}</span>' for c in classes)
        cells = [_cell(c, row[c]) for c in SHOWN]
        cells[1] = cells[1].replace("</td>", f"{marks}</td>")  # the marks sit beside the method's name
        rows.append(f'<tr class="{" ".join(classes)}">{"".join(cells)}</tr>')
    note = ('<p class="protocol">Lifting: MPJPE in mm, lower is better, sorted by ascending mPC; '
            'rPC = 100 x clean / mPC.</p>\n' if lower_is_better(table) else "")
    return (f'<h2 id="protocol-{index}">Protocol {index}</h2>\n'
            f'<p class="protocol">{html.escape(protocol_label(protocol))}</p>\n{note}'
            f'<div class="scroll"><table class="leaderboard" id="table-{index}"><thead><tr>{head}</tr></thead>\n'
            f'<tbody>\n{chr(10).join(rows)}\n</tbody></table></div>')


def leaderboard_html(groups: list[tuple[dict, pd.DataFrame]], title: str = "robustpose leaderboard") -> str:
    """The page for ``groups`` (from :func:`~robustpose.report.leaderboard.build_leaderboard`), as one string.

    Args:
        groups: ``(protocol, table)`` pairs; each table has the leaderboard's columns (values in percent).
        title: the page's title and heading.

    Returns:
        A complete HTML5 document that needs no network access to render.
    """
    tables = "\n".join(_table(i, p, t) for i, (p, t) in enumerate(groups, 1))
    plot = _png_data_uri(plot_leaderboard(groups)) if groups else ""
    image = f'<img alt="clean and mPC per row, one panel per protocol" src="{plot}">' if plot else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n"
            f"<p>Image protocols: values in percent; rPC = 100 x mPC / clean; group columns are means over the group's corruption "
            f"cells. Runs with different protocols are never mixed. Click a column header to sort.</p>\n"
            f"{tables}\n{image}\n<script>{SCRIPT}</script>\n</body></html>\n")
