"""robustpose eval --ckpt: predicts into --out, then scores it like eval --preds."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.models import create_model, default_meta, save_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY = {"deconv_channels": (16, 16, 16)}


def test_eval_ckpt_writes_predictions_and_report(tmp_path: Path) -> None:
    torch.manual_seed(0)
    meta = default_meta("simplebaseline_res18", 17, source="robustpose", arch_kwargs=TINY, input_size=(128, 96))
    ckpt = save_checkpoint(tmp_path / "tiny.pth", create_model("simplebaseline_res18", **TINY), meta)
    args = ["eval", "--ckpt", str(ckpt), "--dataset", "coco", "--ann", str(DATA / "coco" / "test_coco.json"),
            "--images", str(DATA / "coco"), "--out", str(tmp_path / "run"), "--corruptions", "jpeg_compression",
            "--severities", "1", "--workers", "0", "--device", "cpu", "--input-size", "64x64",
            "--metric-backend", "pycocotools", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert (run / "clean.json").is_file() and (run / "jpeg_compression" / "1.json").is_file()
    assert json.loads((run / "run.json").read_text())["input_size"] == "64x64"
    summary = json.loads((run / "summary.json").read_text())
    assert summary  # scored (partial: one cell of the 75)
    assert (run / "report.md").is_file()
    # rerun: every cell is finished, nothing is predicted again, the report is rewritten
    again = CliRunner().invoke(cli, args[:-1])
    assert again.exit_code == 0 and "all 2 cell(s) already predicted" in again.output
    # the decoder is part of what the folder's predictions are: another one is refused, not mixed in
    assert json.loads((run / "inference.json").read_text())["decode"] == "quarter"
    dark = CliRunner().invoke(cli, [*args, "--decode", "dark"])
    assert dark.exit_code != 0 and "settings that differ: decode (was quarter, now dark)" in dark.output
    elsewhere = [str(tmp_path / "dark") if a == str(run) else a for a in args]
    dark = CliRunner().invoke(cli, [*elsewhere, "--decode", "dark"])
    assert dark.exit_code == 0 and json.loads((tmp_path / "dark" / "inference.json").read_text())["decode"] == "dark"


def test_eval_needs_exactly_one_of_preds_and_ckpt(tmp_path: Path) -> None:
    args = ["eval", "--dataset", "coco", "--ann", str(DATA / "coco" / "test_coco.json"), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "either --preds DIR" in result.output
    (tmp_path / "x.pth").write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(cli, [*args, "--ckpt", str(tmp_path / "x.pth"), "--images", str(DATA / "coco")])
    assert result.exit_code == 1 and "x.pth: not a readable PyTorch checkpoint" in result.output
