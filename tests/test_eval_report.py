"""``robustpose eval --preds`` and ``robustpose leaderboard`` end to end on small synthetic runs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from robustpose.cli.main import cli
from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.metrics.synthetic import synthetic_coco_keypoints
from robustpose.report import RunMeta, evaluate_run, read_run_meta
from robustpose.report.synthetic import write_synthetic_run

META = RunMeta(model="toy", method="standard", input_size="256x192", dataset="coco", boxes="gt",
               corruption_set="synthetic", seeding="synthetic", flip_test=False)


@pytest.fixture(scope="module")
def coco_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    gt = synthetic_coco_keypoints(n_images=40, n_people=60, seed=2)
    (root / "gt.json").write_text(json.dumps(gt))
    write_synthetic_run(root / "preds", gt, n_results=150, seed=1, meta=META)
    return root


def test_eval_writes_report_whose_numbers_agree(coco_run, tmp_path):
    out = tmp_path / "report"
    res = CliRunner().invoke(cli, ["eval", "--preds", str(coco_run / "preds"), "--dataset", "coco",
                                   "--ann", str(coco_run / "gt.json"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mPC" in res.output and "rPC" in res.output
    tidy = pd.read_csv(out / "results.csv")
    assert list(tidy.columns) == ["corruption", "group", "severity", "metric", "value"]
    assert len(tidy) == 76 * 10 and set(tidy["metric"]) >= {"AP", "AR", "AP50"}
    ap = tidy[tidy["metric"] == "AP"]
    summary = json.loads((out / "summary.json").read_text())
    clean = ap[ap["corruption"] == "clean"]["value"].item()
    mpc = ap[ap["severity"] > 0]["value"].mean()
    assert summary["clean"]["AP"] == pytest.approx(clean, abs=1e-6)
    assert summary["mPC"] == pytest.approx(mpc, abs=1e-6)
    assert summary["rPC"] == pytest.approx(100 * mpc / clean, abs=1e-6)
    assert summary["complete"] and summary["run"]["model"] == "toy"
    assert clean > summary["per_severity"]["1"] > summary["per_severity"]["5"]  # the synthetic run degrades
    report = (out / "report.md").read_text()
    assert "| clean | mPC | rPC (%) |" in report and "per_corruption.png" in report
    for png in ("per_corruption.png", "per_severity.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.width > 500 and im.height > 300


def test_missing_cell_fails_naming_it_and_partial_reports_it(coco_run, tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(coco_run / "preds", preds)
    (preds / "fog" / "4.json").unlink()
    args = ["eval", "--preds", str(preds), "--dataset", "coco", "--ann", str(coco_run / "gt.json"),
            "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    assert "fog/4.json" in res.output and "--partial" in res.output
    assert not (tmp_path / "out" / "summary.json").exists()
    res = CliRunner().invoke(cli, [*args, "--partial"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["complete"] is False and summary["missing"] == ["fog/4"]
    assert "INCOMPLETE" in (tmp_path / "out" / "report.md").read_text()


def test_bad_layout_and_dataset_mismatch_are_clear(coco_run, tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(coco_run / "preds", preds)
    (preds / "fogg").mkdir()
    with pytest.raises(ValueError, match="fogg: not a corruption name"):
        evaluate_run(preds, "coco", coco_run / "gt.json")
    (preds / "fogg").rmdir()
    with pytest.raises(ValueError, match="says dataset 'coco'"):
        evaluate_run(preds, "ochuman", coco_run / "gt.json")
    assert read_run_meta(preds) == META


def test_mpii_run_of_ground_truth_is_100_everywhere(shared_data, tmp_path):
    people = json.loads((shared_data / "mpii" / "test_mpii.json").read_text())
    for p in people:
        j = np.asarray(p["joints"])
        half = 0.75 * np.linalg.norm(j[9] - j[8])
        p["headbox"] = [*((j[8] + j[9]) / 2 - half), *((j[8] + j[9]) / 2 + half)]
    ann = tmp_path / "valid.json"
    ann.write_text(json.dumps(people))
    preds = [{"person": i, "image": p["image"], "joints": (np.asarray(p["joints"]) - 1).tolist()}
             for i, p in enumerate(people)]
    for name in ["clean", *[f"{c}/{s}" for c in corruption_names("benchmark") for s in SEVERITIES]]:
        (tmp_path / "preds" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "preds" / f"{name}.json").write_text(json.dumps(preds))
    result = evaluate_run(tmp_path / "preds", "mpii", ann, tmp_path / "out")
    assert result.summary.metric == "PCKh@0.5_mean"
    assert result.summary.mpc == 100.0 and result.summary.rpc == 100.0
    assert result.clean["PCKh@0.1_mean"] == 100.0


def test_leaderboard_sorts_by_mpc_and_never_mixes_protocols(coco_run, tmp_path):
    runner = CliRunner()
    outs = []
    for name, noise, meta in (("a", 0.05, META), ("b", 0.02, replace(META, model="toy-better")),
                              ("c", 0.02, replace(META, model="toy-flip", flip_test=True))):
        gt = json.loads((coco_run / "gt.json").read_text())
        write_synthetic_run(tmp_path / name, gt, n_results=150, noise=noise, seed=3, meta=meta)
        res = runner.invoke(cli, ["eval", "--preds", str(tmp_path / name), "--dataset", "coco", "--ann",
                                  str(coco_run / "gt.json"), "--out", str(tmp_path / f"{name}_rep"), "-q"])
        assert res.exit_code == 0, res.output
        outs.append(str(tmp_path / f"{name}_rep"))
    res = runner.invoke(cli, ["leaderboard", *outs, "--out", str(tmp_path / "lb"), "--with-paper"])
    assert res.exit_code == 0, res.output
    board = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    ours = board[~board["source"].str.startswith("published")]
    assert ours["protocol"].nunique() == 2  # flip test differs: its own table
    first = ours[ours["protocol"] == ours["protocol"].min()]
    assert first["model"].tolist() == ["toy-better", "toy"]  # sorted by mPC
    assert first["mPC"].is_monotonic_decreasing
    paper = board[board["source"].str.startswith("published")]
    assert set(paper["protocol"]).isdisjoint(ours["protocol"])  # published rows never share a table with ours
    hrnet = paper[(paper["model"] == "HRNet-W32") & (paper["method"] == "AdvMix")
                  & (paper["input_size"] == "256x192")]
    assert hrnet[["clean", "mPC", "rPC"]].values.tolist() == [[74.7, 55.5, 74.3]]  # Tables 2 and 8: one row
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert md.count("## Protocol") == board["protocol"].nunique()
    with Image.open(tmp_path / "lb" / "leaderboard.png") as im:
        assert im.format == "PNG"
    res = runner.invoke(cli, ["leaderboard", str(tmp_path), "--out", str(tmp_path / "lb2")])
    assert res.exit_code == 1 and "summary.json" in res.output


def test_markdown_table_keeps_whole_numbers_whole():
    from robustpose.report.render import markdown_table

    frame = pd.DataFrame({"seeds": [2, 3], "AP": [62.849, float("nan")], "name": ["a", "b"]},
                         index=pd.Index(["standard", "advmix"], name="method"))
    assert markdown_table(frame).splitlines() == [
        "| method | seeds | AP | name |", "|---|---|---|---|",
        "| standard | 2 | 62.8 | a |", "| advmix | 3 | – | b |"]


def test_cells_scored_in_worker_processes_equal_one_process_and_errors_name_the_file(coco_run, tmp_path):
    serial = evaluate_run(coco_run / "preds", "coco", coco_run / "gt.json")
    seen = []
    progress = lambda it, total: (seen.append(total), it)[1]
    parallel = evaluate_run(coco_run / "preds", "coco", coco_run / "gt.json", jobs=2, progress=progress)
    assert parallel.clean == serial.clean and parallel.cells == serial.cells  # every stat of every cell, exactly
    assert list(parallel.cells) == list(serial.cells) and parallel.summary == serial.summary
    assert seen == [76]
    preds = tmp_path / "preds"
    shutil.copytree(coco_run / "preds", preds)
    bad = preds / "fog" / "4.json"
    records = json.loads(bad.read_text())
    records[3]["keypoints"] = records[3]["keypoints"][:-3]
    bad.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"fog/4\.json: result 3 has 48 keypoint numbers"):
        evaluate_run(preds, "coco", coco_run / "gt.json", jobs=2)
    with pytest.raises(ValueError, match="jobs must be >= 0"):
        evaluate_run(preds, "coco", coco_run / "gt.json", jobs=-1)


def test_eval_jobs_writes_the_same_report(coco_run, tmp_path):
    tables = []
    for jobs in ("1", "2"):
        out = tmp_path / f"report{jobs}"
        res = CliRunner().invoke(cli, ["eval", "--preds", str(coco_run / "preds"), "--dataset", "coco", "--ann",
                                       str(coco_run / "gt.json"), "--out", str(out), "--jobs", jobs, "-q"])
        assert res.exit_code == 0, res.output
        tables.append((out / "results.csv").read_bytes())
    assert tables[0] == tables[1]
