"""``robustpose leaderboard --html``: one self-contained page, checked as parsed HTML and as rendered by Chromium.

The Chromium tests use Debian's ``chromium`` headless (``.ci/run`` installs it; elsewhere they skip unless
``CI`` is set, where a missing browser is a failure): ``--dump-dom`` gives the page after its script ran, so the
row order after a ``#sort=`` fragment or a header click is read from the rendered DOM, and ``--screenshot`` gives
the picture, which must not be blank.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from robustpose.cli.main import cli
from robustpose.report.render import SUMMARY_SCHEMA

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="Debian's chromium is not installed (.ci/run installs it)")

PROTOCOL = {"dataset": "coco", "boxes": "gt", "corruption_set": "imagecorruptions-1.1.2+robustpose.1 benchmark",
            "seeding": "sha256-v1 base 0", "flip_test": False}
# model, method, clean, mPC, rPC, complete: by mPC b, c, a (the incomplete run c, with no digital value, in the
# middle); by clean b, a, c; by rPC c, a, b
RUNS = [("net-a", "standard", 60.0, 30.0, 50.0, True), ("net-b", "advmix", 50.0, 32.5, 65.0, True),
        ("net-c", "equal", 70.0, 31.0, 44.3, False)]


def summary(model: str, method: str, clean: float, mpc: float, rpc: float, complete: bool) -> dict:
    return {"schema": SUMMARY_SCHEMA, "metric": "AP", "clean": {"AP": clean}, "mPC": mpc, "rPC": rpc,
            "per_group": {"noise": mpc - 5, "blur": mpc - 10, "weather": mpc + 5, "digital": None if not complete
                          else mpc + 10}, "complete": complete,
            "run": {"model": model, "method": method, "input_size": "64x48", **PROTOCOL}}


@pytest.fixture()
def page(tmp_path) -> Path:
    dirs = []
    for run in RUNS:
        d = tmp_path / run[0]
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(summary(*run)))
        dirs.append(str(d))
    out = tmp_path / "shared" / "board.html"
    res = CliRunner().invoke(cli, ["leaderboard", *dirs, "--with-paper", "--out", str(tmp_path / "lb"),
                                   "--html", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output
    return out


class Tables(HTMLParser):
    """Tables (header columns, rows of (classes, cells)), every src/href, and the script text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.refs: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.body_data: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.refs += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "body":
            self.body_data = {k: v for k, v in attrs.items() if k.startswith("data-")}
        elif tag == "table":
            self.tables.append({"columns": [], "rows": []})
        elif tag == "th":
            self.tables[-1]["columns"].append(attrs["data-column"])
        elif tag == "tr" and self.tables and self.tables[-1]["columns"]:
            self.tables[-1]["rows"].append({"classes": (attrs.get("class") or "").split(), "cells": []})
        elif tag == "td":
            self._cell = [attrs.get("data-value", "")]
            self.tables[-1]["rows"][-1]["cells"].append(self._cell)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None


def parse(text: str) -> Tables:
    parser = Tables()
    parser.feed(text)
    return parser


def column(table: dict, name: str, value: bool = False) -> list[str]:
    i = table["columns"].index(name)
    return [row["cells"][i][0] if value else "".join(row["cells"][i][1:]) for row in table["rows"]]


def ours(tables: Tables) -> dict:
    (table,) = [t for t in tables.tables if "net-a" in column(t, "model")]
    return table


def test_page_is_self_contained_and_marks_paper_and_incomplete_rows(page):
    text = page.read_text()
    tables = parse(text)
    assert "link" not in tables.tags  # no style sheet, font or icon to fetch
    assert all(ref.startswith(("data:image/png;base64,", "#")) for ref in tables.refs)
    assert not re.search(r"https?://", text)
    (image,) = [r for r in tables.refs if r.startswith("data:")]
    with Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1]))) as im:
        assert im.format == "PNG" and im.size[0] > 300
    board = ours(tables)
    assert column(board, "model") == ["net-b", "net-c", "net-a"]  # by mPC, best first
    assert column(board, "clean") == ["50.0", "70.0", "60.0"] and column(board, "rPC", value=True)[0] == "65.0"
    assert column(board, "digital")[1] == "–" and column(board, "digital", value=True)[1] == ""
    assert [r["classes"] for r in board["rows"]] == [[], ["incomplete"], []]
    assert "incomplete" in column(board, "method")[1] and "incomplete" not in column(board, "method")[0]
    paper = [t for t in tables.tables if t is not board]
    csv = pd.read_csv(page.parent.parent / "lb" / "leaderboard.csv")
    assert len(paper) == csv["protocol"].nunique() - 1 >= 2  # the published protocols, never mixed with ours
    assert all(r["classes"] == ["paper"] for t in paper for r in t["rows"])
    assert all(s.startswith("published") for t in paper for s in column(t, "source"))


def render_dom(page: Path, fragment: str = "", extra_script: str = "") -> Tables:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium")
    target = page
    if extra_script:
        target = page.with_name("clicked.html")
        target.write_text(page.read_text().replace("</body>", f"<script>{extra_script}</script></body>"))
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          target.as_uri() + fragment], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return parse(out.stdout)


@needs_chromium
def test_chromium_sorts_by_the_fragment_and_by_header_clicks(page):
    table = 1 + next(i for i, t in enumerate(parse(page.read_text()).tables) if "net-a" in column(t, "model"))
    assert column(ours(render_dom(page, f"#sort={table}:clean:desc")), "model") == ["net-c", "net-a", "net-b"]
    assert column(ours(render_dom(page, f"#sort={table}:model:desc")), "model") == ["net-c", "net-b", "net-a"]
    # a missing value sorts last both ways
    assert column(ours(render_dom(page, f"#sort={table}:digital:asc")), "model") == ["net-a", "net-b", "net-c"]
    assert column(ours(render_dom(page, f"#sort={table}:digital:desc")), "model") == ["net-b", "net-a", "net-c"]
    # rPC: the first click sorts descending (b, a, c), the second turns it around; record the first order in the DOM
    click = f"document.querySelector('#table-{table} th[data-column=rPC]').click();"
    note = (f"document.body.dataset.first = Array.from(document.querySelectorAll('#table-{table} tbody tr'))"
            ".map(r => r.cells[0].textContent).join(',');")
    dom = render_dom(page, extra_script=click + note + click)
    assert column(ours(dom), "model") == ["net-c", "net-a", "net-b"]
    assert dom.body_data["data-first"] == "net-b,net-a,net-c"


@needs_chromium
def test_chromium_screenshot_is_not_blank(page, tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium")
    shot = tmp_path / "shot.png"
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (900, 1200)
    dark = pixels < 128  # text
    assert dark.mean() > 0.01 and pixels.std() > 20
    assert dark[:, :600].mean() > 0.005 and dark[:450].mean() > 0.005  # text where the page starts, not one speck
