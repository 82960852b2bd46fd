"""evaluate_checkpoint: cell files in eval's layout, on-the-fly == built -C set, resume, protocol guard."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from robustpose.datasets.build_c import BuildConfig, build_c
from robustpose.inference import InferenceConfig
from robustpose.inference.evaluate import EvalSpec, evaluate_checkpoint
from robustpose.models import default_meta, load_checkpoint, save_checkpoint
from robustpose.models.registry import create_model
from robustpose.report import evaluate_run

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORRUPTIONS = ("motion_blur", "jpeg_compression")
SEVERITIES = (1, 5)
TINY = {"deconv_channels": (16, 16, 16)}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("simplebaseline_res18", **TINY).eval()
    meta = default_meta("simplebaseline_res18", 17, source="robustpose", arch_kwargs=TINY, input_size=(128, 96))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", model, meta)


def spec(out: Path, **kw) -> EvalSpec:
    return EvalSpec(dataset="coco", ann=DATA / "coco" / "test_coco.json", images=DATA / "coco", out=out,
                    corruptions=CORRUPTIONS, severities=SEVERITIES, **kw)


def test_on_the_fly_equals_built_set_and_resumes(tmp_path: Path, ckpt: Path) -> None:
    build_c(BuildConfig(out=tmp_path / "coco-C", images_dir=DATA / "coco", dataset="coco",
                        ann_file=DATA / "coco" / "test_coco.json", corruptions=CORRUPTIONS, severities=SEVERITIES))
    loaded = load_checkpoint(ckpt)
    config = InferenceConfig(batch_size=8)
    fly = evaluate_checkpoint(loaded, spec(tmp_path / "fly"), config)
    built = evaluate_checkpoint(loaded, spec(tmp_path / "built", data_c=tmp_path / "coco-C"), config)
    assert len(fly.computed) == len(built.computed) == 1 + len(CORRUPTIONS) * len(SEVERITIES)
    files = sorted(p.relative_to(tmp_path / "fly") for p in (tmp_path / "fly").rglob("*.json")
                   if p.name not in ("inference.json",))
    assert len(files) == 1 + 4 + 1  # clean, 4 cells, run.json
    for rel in files:
        assert (tmp_path / "fly" / rel).read_bytes() == (tmp_path / "built" / rel).read_bytes(), rel
    clean = json.loads((tmp_path / "fly" / "clean.json").read_text())
    noisy = json.loads((tmp_path / "fly" / "motion_blur" / "5.json").read_text())
    assert len(clean) >= 1 and clean != noisy  # the corruption reached the model
    assert fly.times.crops == 12 * 5

    # resume: a deleted cell is recomputed, the others are skipped
    (tmp_path / "fly" / "motion_blur" / "5.json").unlink()
    again = evaluate_checkpoint(loaded, spec(tmp_path / "fly"), config)
    assert again.computed == [("motion_blur", 5)] and len(again.skipped) == 4
    assert (tmp_path / "fly" / "motion_blur" / "5.json").read_bytes() == \
        (tmp_path / "built" / "motion_blur" / "5.json").read_bytes()

    # a different protocol into the same folder is refused
    with pytest.raises(ValueError, match="different evaluation.*flip_test"):
        evaluate_checkpoint(loaded, spec(tmp_path / "fly"), InferenceConfig(flip_test=False))

    # the folder is what `eval --preds` scores
    result = evaluate_run(tmp_path / "fly", "coco", DATA / "coco" / "test_coco.json", tmp_path / "fly",
                          backend="pycocotools", partial=True)
    assert set(result.cells) == {(c, s) for c in CORRUPTIONS for s in SEVERITIES}
    run = json.loads((tmp_path / "fly" / "run.json").read_text())
    assert run["model"] == "simplebaseline_res18" and run["input_size"] == "128x96" and run["flip_test"] is True
    assert json.loads((tmp_path / "built" / "run.json").read_text())["seeding"] == run["seeding"]


def test_mpii_cells_hold_one_entry_per_person(tmp_path: Path, ckpt: Path) -> None:
    coco_ckpt = ckpt
    torch.manual_seed(0)
    meta = default_meta("simplebaseline_res18", 16, source="robustpose", arch_kwargs={**TINY, "num_joints": 16},
                        input_size=(128, 128))
    ckpt = save_checkpoint(tmp_path / "mpii.pth", create_model("simplebaseline_res18", num_joints=16, **TINY), meta)
    s = EvalSpec(dataset="mpii", ann=DATA / "mpii" / "test_mpii.json", images=DATA / "mpii", out=tmp_path / "run",
                 corruptions=("jpeg_compression",), severities=(2,))
    evaluate_checkpoint(load_checkpoint(ckpt), s, InferenceConfig(batch_size=2))
    for rel in ("clean.json", "jpeg_compression/2.json"):
        records = json.loads((tmp_path / "run" / rel).read_text())
        assert [r["person"] for r in records] == [0, 1, 2, 3, 4]
        assert all(len(r["joints"]) == 16 for r in records)
    with pytest.raises(ValueError, match="predicts 17 joints \\(coco\\) but mpii is scored on 16"):
        evaluate_checkpoint(load_checkpoint(coco_ckpt), dataclasses.replace(s, out=tmp_path / "other"))
    with pytest.raises(ValueError, match="--boxes must be gt"):
        EvalSpec(dataset="mpii", ann=s.ann, images=s.images, out=tmp_path, boxes="dets.json")


def test_shards_split_the_cells(tmp_path: Path, ckpt: Path) -> None:
    loaded = load_checkpoint(ckpt, input_size=(64, 64))
    s = EvalSpec(dataset="coco", ann=DATA / "coco" / "test_coco.json", images=DATA / "coco", out=tmp_path,
                 corruptions=("jpeg_compression",), severities=(1, 2))
    config = InferenceConfig(flip_test=False)
    first = evaluate_checkpoint(loaded, s, config, shard=(0, 2))
    second = evaluate_checkpoint(loaded, s, config, shard=(1, 2))
    assert first.computed == [None, ("jpeg_compression", 2)] and second.computed == [("jpeg_compression", 1)]
    with pytest.raises(ValueError, match="shard"):
        evaluate_checkpoint(loaded, s, config, shard=(2, 2))
