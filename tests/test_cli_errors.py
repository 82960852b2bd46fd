"""The bad-input matrix: every command answers each likely mistake with one line, the right exit status and the
name of the offending file or option, before any long work starts, and writes or deletes nothing.

Exit statuses (docs/errors.md): 1 bad data or state, 2 bad usage, 130 Ctrl-C.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from robustpose.cli.main import cli
from robustpose.models import create_model, default_meta, save_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COCO_ANN, MPII_ANN = DATA / "coco" / "test_coco.json", DATA / "mpii" / "test_mpii.json"
TINY = {"deconv_channels": (16, 16, 16)}
CELL = ["--corruptions", "jpeg_compression", "--severities", "1"]


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def files_under(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size: what a failed command must leave as it was."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def assert_one_line_error(result: Result, code: int, *names: object) -> str:
    """Exactly one line on stderr, starting 'Error: ', naming each of ``names``; exit ``code``; no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny untrained 17-joint SimpleBaseline at 64x64 (seconds to run on the four sample images)."""
    torch.manual_seed(0)
    meta = default_meta("simplebaseline_res18", 17, source="robustpose", arch_kwargs=TINY, input_size=(64, 64))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", create_model("simplebaseline_res18", **TINY),
                           meta)


def eval_ckpt_args(ckpt: Path, out: Path, ann: Path = COCO_ANN, images: Path = DATA / "coco") -> list:
    return ["eval", "--ckpt", ckpt, "--dataset", "coco", "--ann", ann, "--images", images, "--out", out,
            *CELL, "--workers", "0", "--threads", "1", "--device", "cpu", "--metric-backend", "pycocotools"]


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _coco_without_annotations(tmp: Path) -> Path:
    data = json.loads(COCO_ANN.read_text())
    del data["annotations"]
    return _write(tmp / "no_annotations.json", json.dumps(data))


# (case, how to change the arguments, exit status, what the line must name)
Change = Callable[[list, Path, Path], list]


def _replace(args: list, option: str, value: object) -> list:
    i = args.index(option)
    return [*args[:i + 1], value, *args[i + 2:]]


EVAL_CKPT_CASES: list[tuple[str, Change, int, list[str]]] = [
    ("ann is not COCO", lambda a, t, c: _replace(a, "--ann", _write(t / "x.json", '{"foo": 1}')), 1,
     ["x.json", "not a COCO-format annotation file"]),
    ("MPII ann with --dataset coco", lambda a, t, c: _replace(a, "--ann", MPII_ANN), 1,
     ["test_mpii.json", "--dataset mpii"]),
    ("broken JSON ann", lambda a, t, c: _replace(a, "--ann", _write(t / "broken.json", '{"images": [')), 1,
     ["broken.json", "not valid JSON"]),
    ("empty ann", lambda a, t, c: _replace(a, "--ann", _write(t / "empty.json", "")), 1, ["empty.json"]),
    ("COCO ann without annotations", lambda a, t, c: _replace(a, "--ann", _coco_without_annotations(t)), 1,
     ["no_annotations.json", "annotations"]),
    ("text file as --ckpt", lambda a, t, c: _replace(a, "--ckpt", _write(t / "notes.pth", "epoch 1 loss 0.3\n")), 1,
     ["--ckpt", "notes.pth", "it is a text file"]),
    ("empty --ckpt", lambda a, t, c: _replace(a, "--ckpt", _write(t / "empty.pth", b"")), 1,
     ["empty.pth", "the file is empty"]),
    ("the annotation file as --ckpt", lambda a, t, c: _replace(a, "--ckpt", COCO_ANN), 1,
     ["--ckpt", "test_coco.json", "it is a JSON file"]),
    ("an image as --ckpt", lambda a, t, c: _replace(a, "--ckpt", DATA / "coco" / "000000000785.jpg"), 1,
     ["--ckpt", "000000000785.jpg", "it is an image"]),
    ("--threads -1", lambda a, t, c: _replace(a, "--threads", "-1"), 2, ["--threads"]),
    ("truncated --ckpt", lambda a, t, c: _replace(a, "--ckpt", _write(t / "half.pth", c.read_bytes()[:5000])), 1,
     ["half.pth"]),
    ("wrong --images folder", lambda a, t, c: _replace(a, "--images", DATA / "mpii"), 1,
     [str(DATA / "mpii"), "--images"]),
    ("an image is missing", lambda a, t, c: _replace(a, "--images", _three_of_four(t)), 1,
     ["000000197388.jpg", "--images"]),
    ("--input-size 64x48", lambda a, t, c: [*a, "--input-size", "64x48"], 2, ["--input-size", "64x48"]),
    ("--input-size 100x75", lambda a, t, c: [*a, "--input-size", "100x75"], 2, ["--input-size", "100x75"]),
    ("--input-size not HxW", lambda a, t, c: [*a, "--input-size", "256"], 2, ["--input-size"]),
    ("--input-size zero", lambda a, t, c: [*a, "--input-size", "0x64"], 2, ["--input-size"]),
    ("unknown --arch", lambda a, t, c: [*a, "--arch", "hrnet_w99"], 2, ["--arch", "hrnet_w32"]),
    ("missing --boxes file", lambda a, t, c: [*a, "--boxes", t / "dets.json"], 2, ["--boxes", "dets.json"]),
    ("broken --boxes file", lambda a, t, c: [*a, "--boxes", _write(t / "dets.json", "[{")], 1, ["dets.json"]),
    ("--boxes not detections", lambda a, t, c: [*a, "--boxes", _write(t / "dets.json", '[{"x": 1}]')], 1,
     ["dets.json"]),
    ("--data-c and --on-the-fly", lambda a, t, c: [*a, "--data-c", t, "--on-the-fly"], 2, ["--data-c", "--on-the-fly"]),
    ("--data-c not a build-c folder", lambda a, t, c: [*a, "--data-c", t], 1, ["dataset.json", "--data-c"]),
    ("MPII dataset with a COCO checkpoint", lambda a, t, c: _replace(_replace(_replace(
        a, "--dataset", "mpii"), "--ann", MPII_ANN), "--images", DATA / "mpii"), 1, ["17 joints", "mpii"]),
    ("--severities out of range", lambda a, t, c: _replace(a, "--severities", "0-7"), 2, ["--severities"]),
    ("unknown corruption", lambda a, t, c: _replace(a, "--corruptions", "fog_blur"), 2, ["--corruptions", "fog_blur"]),
    ("unknown --device", lambda a, t, c: [*a, "--device", "tpu"], 2, ["--device"]),
    ("--batch-size 0", lambda a, t, c: [*a, "--batch-size", "0"], 2, ["--batch-size"]),
    ("missing --ckpt file", lambda a, t, c: _replace(a, "--ckpt", t / "nowhere.pth"), 2, ["--ckpt", "nowhere.pth"]),
    ("--ckpt without --images", lambda a, t, c: [x for i, x in enumerate(a) if "--images" not in (x, a[i - 1])], 2,
     ["--images"]),
    ("--preds and --ckpt", lambda a, t, c: [*a, "--preds", t], 2, ["--preds", "--ckpt"]),
]


def _three_of_four(tmp: Path) -> Path:
    images = tmp / "images"
    images.mkdir(exist_ok=True)
    for name in ("000000000785.jpg", "000000040083.jpg", "000000196141.jpg"):
        shutil.copy(DATA / "coco" / name, images / name)
    return images


@pytest.mark.parametrize("case, change, code, names", EVAL_CKPT_CASES, ids=[c[0] for c in EVAL_CKPT_CASES])
def test_eval_ckpt_bad_input(tmp_path: Path, ckpt: Path, case: str, change: Change, code: int,
                             names: list[str]) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "run"
    args = change(eval_ckpt_args(ckpt, out), inputs, ckpt)
    before = files_under(tmp_path)
    assert_one_line_error(invoke(args), code, *names)
    assert not out.exists(), f"{case}: wrote {files_under(out)}"
    assert files_under(tmp_path) == before


def test_eval_ckpt_with_a_partial_c_set_fails_before_predicting_and_resumes(tmp_path: Path, ckpt: Path) -> None:
    data_c, out = tmp_path / "coco-C", tmp_path / "run"
    built = invoke(["build-c", "--dataset", "coco", "--ann", COCO_ANN, "--images", DATA / "coco", "--out", data_c,
                    "--corruptions", "jpeg_compression", "--severities", "1", "--workers", "1", "-q"])
    assert built.exit_code == 0, built.output
    args = [*eval_ckpt_args(ckpt, out), "--data-c", data_c, "-q"]
    wider = _replace(args, "--severities", "1,2")
    assert_one_line_error(invoke(wider), 1, str(data_c), "jpeg_compression/2", "--severities")
    assert not out.exists()  # nothing predicted, no record left to refuse the corrected rerun
    (data_c / "jpeg_compression" / "1" / "000000040083.jpg").unlink()  # a cell with an image missing
    assert_one_line_error(invoke(args), 1, str(data_c), "jpeg_compression/1", "build-c")
    assert not out.exists()
    assert invoke(["build-c", "--dataset", "coco", "--ann", COCO_ANN, "--images", DATA / "coco", "--out", data_c,
                   "--corruptions", "jpeg_compression", "--severities", "1", "--workers", "1", "-q"]).exit_code == 0
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert (out / "clean.json").is_file() and (out / "jpeg_compression" / "1.json").is_file()


def test_eval_ckpt_rerun_with_other_settings_names_them_and_offers_overwrite(tmp_path: Path, ckpt: Path) -> None:
    out = tmp_path / "run"
    args = [*eval_ckpt_args(ckpt, out), "-q"]
    assert invoke(args).exit_code == 0
    _write(out / "notes.txt", "mine")
    before = files_under(out)
    line = assert_one_line_error(invoke([*args, "--no-flip-test"]), 1, str(out), "flip_test (was true, now false)",
                                 "--overwrite")
    assert "delete" not in line.replace("deleted", "")
    assert files_under(out) == before  # refused: nothing lost
    result = invoke([*args, "--no-flip-test", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "inference.json").read_text())["flip_test"] is False
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite replaces predictions only


def test_eval_ckpt_rerun_reports_that_cells_were_already_predicted(tmp_path: Path, ckpt: Path) -> None:
    args = eval_ckpt_args(ckpt, tmp_path / "run")
    assert invoke([*args, "-q"]).exit_code == 0
    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert "all 2 cell(s) already predicted" in again.stderr and "0 crops" not in again.output


# ------------------------------------------------------------------------------------------- eval --preds


@pytest.fixture(scope="module")
def preds(tmp_path_factory) -> Path:
    """A predictions folder for the sample COCO file: clean and one cell, ground truth as predictions."""
    root = tmp_path_factory.mktemp("preds")
    gt = json.loads(COCO_ANN.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in gt["annotations"] if max(a["keypoints"]) > 0]
    _write(root / "clean.json", json.dumps(results))
    _write(root / "jpeg_compression" / "1.json", json.dumps(results))
    return root


def preds_args(preds: Path, out: Path, ann: Path = COCO_ANN, dataset: str = "coco") -> list:
    return ["eval", "--preds", preds, "--dataset", dataset, "--ann", ann, "--out", out, "--partial",
            "--metric-backend", "pycocotools"]


def test_eval_preds_sample_run_works(tmp_path: Path, preds: Path) -> None:
    result = invoke(preds_args(preds, tmp_path / "rep"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "summary.json").is_file()


PREDS_CASES = [
    ("ann is not COCO", lambda p, t: preds_args(p, t / "rep", _write(t / "x.json", '{"foo": 1}')), 1,
     ["x.json", "not a COCO-format annotation file"]),
    ("MPII ann with --dataset coco", lambda p, t: preds_args(p, t / "rep", MPII_ANN), 1, ["test_mpii.json", "mpii"]),
    ("COCO ann with --dataset mpii", lambda p, t: preds_args(p, t / "rep", COCO_ANN, "mpii"), 1,
     ["test_coco.json", "--dataset coco"]),
    ("broken JSON ann", lambda p, t: preds_args(p, t / "rep", _write(t / "b.json", "{")), 1, ["b.json", "JSON"]),
    ("COCO ann without annotations", lambda p, t: preds_args(p, t / "rep", _coco_without_annotations(t)), 1,
     ["no_annotations.json"]),
    ("--preds without clean.json", lambda p, t: preds_args(t, t / "rep"), 1, ["clean.json"]),
    ("--headboxes with coco", lambda p, t: [*preds_args(p, t / "rep"), "--headboxes", COCO_ANN], 1, ["headboxes"]),
    ("missing --ann", lambda p, t: preds_args(p, t / "rep", t / "none.json"), 2, ["--ann", "none.json"]),
    ("unknown --dataset", lambda p, t: preds_args(p, t / "rep", COCO_ANN, "crowdpose"), 2, ["--dataset"]),
    ("--ckpt options with --preds", lambda p, t: [*preds_args(p, t / "rep"), "--images", DATA / "coco",
                                                  "--no-flip-test"], 2, ["--images", "--flip-test", "--ckpt"]),
    ("--threads with --preds", lambda p, t: [*preds_args(p, t / "rep"), "--threads", "1"], 2, ["--threads", "--ckpt"]),
]


@pytest.mark.parametrize("case, make, code, names", PREDS_CASES, ids=[c[0] for c in PREDS_CASES])
def test_eval_preds_bad_input(tmp_path: Path, preds: Path, case: str, make, code: int, names: list[str]) -> None:
    args = make(preds, tmp_path)
    before = files_under(preds)
    assert_one_line_error(invoke(args), code, *names)
    assert not (tmp_path / "rep").exists()
    assert files_under(preds) == before


def test_eval_preds_broken_predictions_file_is_named(tmp_path: Path, preds: Path) -> None:
    broken = tmp_path / "preds"
    shutil.copytree(preds, broken)
    _write(broken / "jpeg_compression" / "1.json", '[{"image_id": 785, "keypoints": [1, 2')
    assert_one_line_error(invoke(preds_args(broken, tmp_path / "rep")), 1, "1.json")
    _write(broken / "jpeg_compression" / "1.json", '{"not": "a list"}')
    assert_one_line_error(invoke(preds_args(broken, tmp_path / "rep")), 1, "1.json")


# ------------------------------------------------------------------------------------------- leaderboard


def test_leaderboard_bad_input(tmp_path: Path) -> None:
    assert_one_line_error(invoke(["leaderboard", "--out", tmp_path / "lb"]), 2, "RUN_DIR")
    assert_one_line_error(invoke(["leaderboard", tmp_path, "--out", tmp_path / "lb"]), 1, "summary.json")
    _write(tmp_path / "run" / "summary.json", "{")
    assert_one_line_error(invoke(["leaderboard", tmp_path / "run", "--out", tmp_path / "lb"]), 1, "summary.json")
    _write(tmp_path / "run" / "summary.json", '{"schema": "something else"}')
    assert_one_line_error(invoke(["leaderboard", tmp_path / "run", "--out", tmp_path / "lb"]), 1, "summary.json")
    assert_one_line_error(invoke(["leaderboard", tmp_path / "nowhere", "--out", tmp_path / "lb"]), 2, "nowhere")
    assert not (tmp_path / "lb").exists()


def test_leaderboard_of_a_run_scoring_zero_shows_no_rpc(tmp_path: Path, ckpt: Path) -> None:
    """An untrained model scores AP 0 clean, so its rPC (100 x mPC / clean) is undefined: a dash, not a crash (the
    terminal table formatted None; found by the new-user walk)."""
    run = tmp_path / "run"
    assert invoke([*eval_ckpt_args(ckpt, run), "-q"]).exit_code == 0
    assert json.loads((run / "summary.json").read_text())["rPC"] is None
    result = invoke(["leaderboard", run, "--out", tmp_path / "lb"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "simplebaseline_res18" in line)
    header = next(line for line in result.stdout.splitlines() if "rPC" in line).replace("┃", "│").split("│")
    rpc = [c.strip() for c in header].index("rPC")
    assert row.split("│")[rpc].strip() == "–" and "NO (partial run)" in row, row


# ------------------------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "sp"
    result = invoke(["synth", "--out", root, "--train", "2", "--val", "2", "-q"])
    assert result.exit_code == 0, result.output
    return root


def train_args(root: Path, out: Path) -> list:
    return ["train", "standard", "--preset", "cpu-synth", "--data-root", root, "--out", out, "--epochs", "1",
            "--threads", "1"]


TRAIN_CASES = [
    ("missing --data-root", lambda r, t: train_args(t / "nowhere", t / "run"), 1, ["nowhere"]),
    ("MPII --train-ann", lambda r, t: [*train_args(r, t / "run"), "--train-ann", MPII_ANN], 1,
     ["--train-ann", "test_mpii.json"]),
    ("--val-images wrong folder", lambda r, t: [*train_args(r, t / "run"), "--val-images", DATA / "coco"], 1,
     ["--val-images"]),
    ("broken --config", lambda r, t: [*train_args(r, t / "run"), "--config", _write(t / "c.yaml", "data: [")], 1,
     ["c.yaml"]),
    ("--input-size not HxW", lambda r, t: [*train_args(r, t / "run"), "--input-size", "big"], 2, ["--input-size"]),
    ("unknown --preset", lambda r, t: _replace(train_args(r, t / "run"), "--preset", "gpu"), 2, ["--preset"]),
    ("--epochs 0", lambda r, t: _replace(train_args(r, t / "run"), "--epochs", "0"), 2, ["--epochs"]),
    ("--milestones descending", lambda r, t: [*train_args(r, t / "run"), "--milestones", "5,2"], 2,
     ["--milestones"]),
]


@pytest.mark.parametrize("case, make, code, names", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_standard_bad_input(tmp_path: Path, synth_root: Path, case: str, make, code: int,
                                  names: list[str]) -> None:
    before = files_under(synth_root)
    assert_one_line_error(invoke(make(synth_root, tmp_path)), code, *names)
    assert not (tmp_path / "run").exists()
    assert files_under(synth_root) == before


@pytest.fixture(scope="module")
def mpii_ckpt(tmp_path_factory) -> Path:
    """A tiny untrained 16-joint (MPII) SimpleBaseline."""
    torch.manual_seed(0)
    kwargs = {**TINY, "num_joints": 16}
    meta = default_meta("simplebaseline_res18", 16, source="robustpose", arch_kwargs=kwargs, input_size=(64, 64))
    return save_checkpoint(tmp_path_factory.mktemp("mpii") / "mpii16.pth", create_model("simplebaseline_res18",
                                                                                          **kwargs), meta)


# (case, args from (synth root, scratch folder, checkpoints), exit status, what the line must name)
SETTING_CASES = [
    ("unknown --arch", lambda r, t, k: [*train_args(r, t / "run"), "--arch", "hrnet_w99"], 2, ["--arch", "hrnet_w99"]),
    ("unknown arch in --config", lambda r, t, k: [*train_args(r, t / "run"), "--config",
                                                   _write(t / "c.yaml", "model:\n  arch: resnet9\n")], 2,
     ["c.yaml", "resnet9"]),
    ("--input-size not divisible by 32", lambda r, t, k: [*train_args(r, t / "run"), "--input-size", "100x75"], 2,
     ["--input-size", "100x75", "divisible by 32"]),
    ("--input-size 64x48", lambda r, t, k: [*train_args(r, t / "run"), "--input-size", "64x48"], 2,
     ["--input-size", "64x48"]),
    ("--input-size zero", lambda r, t, k: [*train_args(r, t / "run"), "--input-size", "0x64"], 2, ["--input-size"]),
    ("--input-size three sides", lambda r, t, k: [*train_args(r, t / "run"), "--input-size", "64x48x3"], 2,
     ["--input-size"]),
    ("--epochs negative", lambda r, t, k: _replace(train_args(r, t / "run"), "--epochs", "-3"), 2, ["--epochs"]),
    ("--batch-size 0", lambda r, t, k: [*train_args(r, t / "run"), "--batch-size", "0"], 2, ["--batch-size"]),
    ("--batch-size above the samples", lambda r, t, k: [*train_args(r, t / "run"), "--batch-size", "500"], 2,
     ["--batch-size", "500"]),
    ("--lr negative", lambda r, t, k: [*train_args(r, t / "run"), "--lr", "-0.1"], 2, ["--lr"]),
    ("--lr zero", lambda r, t, k: [*train_args(r, t / "run"), "--lr", "0"], 2, ["--lr"]),
    ("--lr nan", lambda r, t, k: [*train_args(r, t / "run"), "--lr", "nan"], 2, ["--lr", "nan"]),
    ("--lr inf", lambda r, t, k: [*train_args(r, t / "run"), "--lr", "inf"], 2, ["--lr", "inf"]),
    ("--milestones not numbers", lambda r, t, k: [*train_args(r, t / "run"), "--milestones", "a,b"], 2,
     ["--milestones"]),
    ("--milestones repeated", lambda r, t, k: [*train_args(r, t / "run"), "--milestones", "1,1"], 2,
     ["--milestones"]),
    ("--milestones zero", lambda r, t, k: [*train_args(r, t / "run"), "--milestones", "0"], 2, ["--milestones"]),
    ("--init a text file", lambda r, t, k: [*train_args(r, t / "run"), "--init", _write(t / "notes.txt", "hi\n")],
     1, ["--init", "notes.txt"]),
    ("--init an MPII model on COCO-format data", lambda r, t, k: [*train_args(r, t / "run"), "--init", k["mpii"]], 1,
     ["--init", "mpii16.pth", "16 joints"]),
    ("--init another network configuration", lambda r, t, k: [*train_args(r, t / "run"), "--init", k["coco"]], 1,
     ["--init", "tiny.pth", "simplebaseline_res18"]),
    ("--init another architecture", lambda r, t, k: [*train_args(r, t / "run"), "--init", k["coco"], "--arch",
                                                      "simplebaseline_res50"], 1, ["--init", "--arch"]),
    ("--device cuda without CUDA", lambda r, t, k: [*train_args(r, t / "run"), "--device", "cuda"], 2,
     ["--device", "CUDA"]),
    ("--device not a device", lambda r, t, k: [*train_args(r, t / "run"), "--device", "gpu"], 2, ["--device", "gpu"]),
    ("--device unsupported", lambda r, t, k: [*train_args(r, t / "run"), "--device", "mps"], 2, ["--device", "mps"]),
    ("--workers -1", lambda r, t, k: [*train_args(r, t / "run"), "--workers", "-1"], 2, ["--workers"]),
    ("--threads -1", lambda r, t, k: _replace(train_args(r, t / "run"), "--threads", "-1"), 2, ["--threads"]),
    ("--seed -1", lambda r, t, k: [*train_args(r, t / "run"), "--seed", "-1"], 2, ["--seed"]),
    ("unknown --decode", lambda r, t, k: [*train_args(r, t / "run"), "--decode", "argmax"], 2, ["--decode"]),
    ("--config with an unknown key", lambda r, t, k: [*train_args(r, t / "run"), "--config",
                                                       _write(t / "c.yaml", "data:\n  imgs: x\n")], 2,
     ["c.yaml", "imgs"]),
    ("--config value of the wrong type", lambda r, t, k: [*_replace(train_args(r, t / "run"), "--epochs", "1"),
                                                           "--config", _write(t / "c.yaml", "batch_size: many\n")],
     2, ["c.yaml", "batch_size", "many"]),
    ("--config not a mapping", lambda r, t, k: [*train_args(r, t / "run"), "--config", _write(t / "c.yaml", "- 1\n")],
     1, ["c.yaml", "mapping"]),
    ("--data mpii on COCO-format files", lambda r, t, k: [*train_args(r, t / "run"), "--data", "mpii"], 1,
     ["--train-ann", "--dataset coco"]),
    ("--resume without a run", lambda r, t, k: [*train_args(r, t / "run"), "--resume"], 1,
     ["--resume", "checkpoint.pth"]),
    ("--out is a file", lambda r, t, k: _replace(train_args(r, t / "run"), "--out", _write(t / "run.txt", "x")), 2,
     ["--out", "run.txt"]),
]


@pytest.mark.parametrize("case, make, code, names", SETTING_CASES, ids=[c[0] for c in SETTING_CASES])
def test_train_bad_settings(tmp_path: Path, synth_root: Path, ckpt: Path, mpii_ckpt: Path, case: str, make,
                            code: int, names: list[str]) -> None:
    if case == "--device cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = make(synth_root, inputs, {"coco": ckpt, "mpii": mpii_ckpt})
    before = files_under(tmp_path), files_under(synth_root)
    assert_one_line_error(invoke(args), code, *names)
    assert (files_under(tmp_path), files_under(synth_root)) == before  # nothing written (no run folder either)
    assert not (inputs / "run").exists()


def test_train_resume_with_changed_settings_is_refused_and_nothing_changes(tmp_path: Path, synth_root: Path) -> None:
    out = tmp_path / "run"
    args = [*train_args(synth_root, out), "--batch-size", "2"]
    done = invoke(args)
    assert done.exit_code == 0, done.output
    before = {p: p.read_bytes() for p in out.iterdir()}
    line = assert_one_line_error(invoke([*args, "--resume", "--lr", "0.5"]), 2, "--resume", "--lr", "optim.lr=0.5")
    assert "new --out" in line
    assert {p: p.read_bytes() for p in out.iterdir()} == before
    assert_one_line_error(invoke(args), 1, "checkpoint.pth", "--resume")  # the same command without --resume
    assert {p: p.read_bytes() for p in out.iterdir()} == before


def test_train_advmix_bad_init(tmp_path: Path, synth_root: Path) -> None:
    base = ["train", "advmix", "--preset", "cpu-synth", "--data-root", synth_root, "--out", tmp_path / "run",
            "--epochs", "1", "--threads", "1"]
    assert_one_line_error(invoke([*base, "--init", _write(tmp_path / "log.txt", "not a model\n")]), 1, "--init",
                          "log.txt")
    assert_one_line_error(invoke([*base, "--init", tmp_path / "none.pth"]), 2, "--init", "none.pth")
    assert_one_line_error(invoke([*base, "--init", tmp_path / "log.txt", "--views", "1"]), 2, "--views")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case, extra, code, names", [
    ("--teacher a text file", ["--teacher", "{txt}"], 1, ["--teacher", "log.txt"]),
    ("--init an MPII model", ["--init", "{mpii}"], 1, ["--init", "16 joints"]),
    ("--teacher an MPII model", ["--teacher", "{mpii}"], 1, ["--teacher", "16 joints"]),
    ("--gen-lr nan", ["--gen-lr", "nan"], 2, ["--gen-lr"]),
    ("--adv-weight inf", ["--adv-weight", "inf"], 2, ["--adv-weight"]),
    ("--alpha above 1", ["--alpha", "2"], 2, ["--alpha"]),
    ("unknown --mixer", ["--mixer", "cutmix"], 2, ["--mixer", "cutmix"]),
    ("--kd-input unknown", ["--kd-input", "teacher"], 2, ["--kd-input"]),
    ("--views 1", ["--views", "1"], 2, ["--views"]),
])
def test_train_advmix_bad_settings(tmp_path: Path, synth_root: Path, ckpt: Path, mpii_ckpt: Path, case: str,
                                   extra: list[str], code: int, names: list[str]) -> None:
    init = tmp_path / "init.pth"
    shutil.copy(ckpt, init)
    txt = _write(tmp_path / "log.txt", "not a model\n")
    # --init fits the data's joints but not the preset's network: only the checks named here may fire first
    base = ["train", "advmix", "--data-root", synth_root, "--out", tmp_path / "run", "--epochs", "1",
            "--threads", "1", "--arch", "simplebaseline_res18", "--input-size", "64x64", "--init", init]
    args = [*base, *[a.format(txt=txt, mpii=mpii_ckpt) for a in extra]]
    before = files_under(tmp_path)
    assert_one_line_error(invoke(args), code, *names)
    assert files_under(tmp_path) == before


# ------------------------------------------------------------------------------------------- synth, corrupt, demo


@pytest.mark.parametrize("args, names", [
    (["--size", "10x10"], ["--size"]), (["--size", "wide"], ["--size"]), (["--train", "-1"], ["--train"]),
    (["--max-people", "0"], ["--max-people"]),
])
def test_synth_bad_input(tmp_path: Path, args: list[str], names: list[str]) -> None:
    assert_one_line_error(invoke(["synth", "--out", tmp_path / "sp", *args]), 2, *names)
    assert not (tmp_path / "sp").exists()


def test_corrupt_help_example_runs(tmp_path: Path) -> None:
    help_text = invoke(["corrupt", "--help"]).output
    example = next(line for line in help_text.splitlines() if "photo.jpg" in line).split("#")[0].split()
    assert example[:2] == ["robustpose", "corrupt"]
    args = [str(DATA / "coco" / "000000000785.jpg") if a == "photo.jpg" else
            str(tmp_path / a) if a == "grid.png" else a for a in example[2:]]
    result = invoke(["corrupt", *args, "--max-side", "64", "--thumb-width", "32"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.png").is_file()


@pytest.mark.parametrize("case, args, code, names", [
    ("text file as image", ["{txt}", "--out", "{tmp}/g.png"], 1, ["notes.jpg"]),
    ("unknown corruption", ["--out", "{tmp}/g.png", "-c", "sepia"], 2, ["--corruptions", "sepia"]),
    ("unsupported --out", ["--out", "{tmp}/g.gif"], 2, ["--out", "g.gif"]),
    ("severity 7", ["--out", "{tmp}/g.png", "-s", "7"], 2, ["--severities"]),
    ("missing image", ["{tmp}/none.jpg", "--out", "{tmp}/g.png"], 2, ["none.jpg"]),
])
def test_corrupt_bad_input(tmp_path: Path, case: str, args: list[str], code: int, names: list[str]) -> None:
    txt = _write(tmp_path / "notes.jpg", "hello")
    args = [a.format(tmp=tmp_path, txt=txt) for a in args]
    assert_one_line_error(invoke(["corrupt", *args]), code, *names)
    assert not list(tmp_path.glob("g.*"))


@pytest.mark.parametrize("args, names", [
    (["--severities", "9"], ["--severities"]), (["--epochs", "0"], ["--epochs"]), (["--threads", "-1"], ["--threads"]),
])
def test_demo_bad_options(tmp_path: Path, args: list[str], names: list[str]) -> None:
    assert_one_line_error(invoke(["demo", "--out", tmp_path / "demo", *args]), 2, *names)
    assert not (tmp_path / "demo").exists()


def test_demo_setting_changes_get_their_own_folders(tmp_path: Path) -> None:
    from robustpose.cli.demo import stage_folders

    base = stage_folders(tmp_path, 2000, 50, 5, [1, 2, 3, 4, 5], 0)
    epochs = stage_folders(tmp_path, 2000, 50, 2, [1, 2, 3, 4, 5], 0)
    seed = stage_folders(tmp_path, 2000, 50, 5, [1, 2, 3, 4, 5], 1)
    sev = stage_folders(tmp_path, 2000, 50, 5, [3], 0)
    assert epochs["data"] == base["data"] and epochs["run"] != base["run"] and epochs["report"] != base["report"]
    assert all(seed[k] != base[k] for k in base)  # the seed changes the data, hence everything
    assert sev["run"] == base["run"] and sev["data_c"] != base["data_c"] and sev["report"] != base["report"]


# ------------------------------------------------------------------------------------------- logs


def test_long_lines_are_not_wrapped_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    built = invoke(["build-c", "--dataset", "coco", "--ann", COCO_ANN, "--images", DATA / "coco", "--out",
                    tmp_path / "C", "--corruptions", "jpeg_compression", "--severities", "1", "--workers", "1"])
    assert built.exit_code == 0, built.output
    stray = "frost/1/" + "a_long_file_name_that_does_not_fit_in_eighty_columns_" * 2 + ".jpg"
    _write(tmp_path / "C" / stray, b"x")
    result = invoke(["verify-c", tmp_path / "C"])
    assert result.exit_code == 1
    assert any(line.endswith(stray) and len(line) > 80 for line in result.stderr.splitlines()), result.stderr
    assert any(line.startswith("images: 4/4 (100%)") for line in built.stderr.splitlines()), built.stderr


def test_progress_lines_are_periodic() -> None:
    from rich.console import Console

    from robustpose.cli.output import LineProgress

    def printed(steps: int) -> list[str]:
        now = [0.0]
        console = Console(record=True, width=300, file=io.StringIO())
        lines = LineProgress(console, "training", "steps", total=steps, every_s=10, clock=lambda: now[0])
        for _ in range(steps):
            now[0] += 1
            lines.update(note="loss 0.1")
        lines.done()
        return console.export_text().splitlines()

    text = printed(95)  # a line at 10, 20, ... 90 s, then the final one
    assert len(text) == 10 and text[0].startswith("training: 10/95 (11%), 1.00 steps/s, 0:00:10 elapsed")
    assert text[-1].startswith("training: 95/95 (100%)")
    text = printed(100)  # the line at 100 s is the final count: not printed twice
    assert len(text) == 10 and text[-1].startswith("training: 100/100 (100%)")
    console = Console(record=True, width=300, file=io.StringIO())
    assert LineProgress(console, "images", "images", total=0).line() == "images: nothing to do (all finished earlier)"


# ------------------------------------------------------------------------------------------- the group


def test_unknown_command_and_option_are_one_line() -> None:
    assert_one_line_error(invoke(["evaluate"]), 2, "evaluate")
    assert_one_line_error(invoke(["eval", "--pred", "x"]), 2, "--pred")


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path: Path, monkeypatch) -> None:
    from robustpose.report import leaderboard

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(leaderboard, "build_leaderboard", boom)
    args = ["leaderboard", "--with-paper", "--out", tmp_path / "lb"]
    assert_one_line_error(invoke(args), 1, "RuntimeError", "boom", "--debug")
    debug = invoke(["--debug", *args])
    assert isinstance(debug.exception, RuntimeError)  # re-raised: the runner (or Python) prints the traceback


def test_ctrl_c_is_one_line_with_exit_130(tmp_path: Path, monkeypatch) -> None:
    from robustpose.report import leaderboard

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(leaderboard, "build_leaderboard", interrupted)
    line = assert_one_line_error(invoke(["leaderboard", "--with-paper", "--out", tmp_path / "lb"]), 130, "Ctrl-C")
    assert "rerun" in line
