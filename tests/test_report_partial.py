"""Reports, plots and leaderboards of partial runs and of runs without run.json say what was run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.metrics.synthetic import synthetic_coco_keypoints
from robustpose.report import evaluate_run
from robustpose.report.leaderboard import published_rows
from robustpose.report.render import report_markdown, severity_series
from robustpose.report.synthetic import write_synthetic_run


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory) -> tuple[Path, Path]:
    """Two noise corruptions and one blur, at severity 3 only; no run.json."""
    root = tmp_path_factory.mktemp("partial")
    gt = synthetic_coco_keypoints(n_images=20, n_people=30, seed=4)
    (root / "gt.json").write_text(json.dumps(gt))
    preds = write_synthetic_run(root / "full", gt, n_results=60, seed=1,
                                corruptions=["gaussian_noise", "shot_noise", "motion_blur"])
    partial = root / "preds"
    partial.mkdir()
    shutil.copy(preds / "clean.json", partial / "clean.json")
    for name in ("gaussian_noise", "shot_noise", "motion_blur"):
        (partial / name).mkdir()
        shutil.copy(preds / name / "3.json", partial / name / "3.json")
    return partial, root / "gt.json"


def test_partial_report_names_the_severities_and_groups_that_ran(partial_run, tmp_path):
    preds, ann = partial_run
    result = evaluate_run(preds, "coco", ann, tmp_path / "rep", partial=True, backend="pycocotools")
    md = report_markdown(result)
    assert "severities 1-5" not in md and "severity 3" in md
    assert "3 benchmark cell(s) that were run" in md and "gaussian_noise, shot_noise, motion_blur" in md
    group_section = md.split("## Per group")[1].split("##")[0]
    assert "noise" in group_section and "blur" in group_section
    assert "weather" not in group_section and "digital" not in group_section  # not run: not listed
    severity_section = md.split("## Per severity")[1].split("##")[0]
    assert "| 3 |" in severity_section and "| 1 |" not in severity_section
    assert "unnamed run (no run.json)" in md and "unknown (unknown)" not in md
    cells_header = md.split("## Per corruption and severity")[1].split("\n")[2]
    assert cells_header.split("|")[2:4] == [" 3 ", " mean "], cells_header  # only the severity that ran


def test_severity_plot_connects_the_points_that_were_run(partial_run, tmp_path):
    preds, ann = partial_run
    result = evaluate_run(preds, "coco", ann, None, partial=True, backend="pycocotools")
    xs, series = severity_series(result)
    assert xs == [0, 3]
    assert set(series) == {"noise", "blur", "benchmark mean"}
    assert all(not math.isnan(v) for ys in series.values() for v in ys)  # no gap between clean and severity 3


def test_terminal_leaderboard_has_the_complete_column_and_no_nan(partial_run, tmp_path):
    preds, ann = partial_run
    rep = tmp_path / "rep"
    assert CliRunner().invoke(cli, ["eval", "--preds", str(preds), "--dataset", "coco", "--ann", str(ann), "--out",
                                    str(rep), "--partial", "--metric-backend", "pycocotools", "-q"]).exit_code == 0
    result = CliRunner().invoke(cli, ["leaderboard", str(rep), "--out", str(tmp_path / "lb")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "complete" in text and "NO (partial run)" in text
    assert "flip_test=unknown" in text and "nan" not in text.lower().replace("unnamed", "")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "flip_test = unknown" in md


def test_published_rows_name_the_family_once():
    models = set(published_rows()["model"])
    assert "HRNet-W32" in models and "HRNet HRNet-W32" not in models
    assert not any(m.split()[0] and len(m.split()) > 1 and m.split()[1].lower().startswith(m.split()[0].lower())
                   for m in models)
