"""``--select final|clean|holdout-c``: which weights best.pth holds, what the checkpoints record, and that the
held-out score never sees a benchmark corruption.

The held-out images are checked against ``robustpose build-c``'s files of the validation split pixel for pixel, and
the score against a hand-computed mean over the 20 cells (a stand-in scorer that tells the cells apart: tiny test
models score 0 AP everywhere, which would hide a wrong aggregate).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.corruptions import GROUPS, SEVERITIES
from robustpose.datasets.build_c import BuildConfig, build_c, cell_path
from robustpose.datasets.imageio import load_rgb
from robustpose.datasets.synthpose import SynthConfig, generate_split
from robustpose.models import load_checkpoint, torch_load
from robustpose.train import StandardMethod, resolve_config, train
from robustpose.train import engine as engine_module
from robustpose.train.data import TopDownDataset, keypoint_set_for, read_samples

TINY = {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16]}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_split(root, "train", 6, SynthConfig(), 0)
    generate_split(root, "val", 2, SynthConfig(), 1)
    return root


def run(synth: Path, out: Path, select: str, epochs: int = 3):
    config = resolve_config({"data": {"dataset": "synth", "root": str(synth), "input_size": [64, 64],
                                      "heatmap_size": [16, 16]},
                             "model": TINY, "optim": {"lr": 5e-3, "milestones": [100]}, "epochs": epochs,
                             "batch_size": 4, "seed": 2, "device": "cpu", "amp": False, "select": select,
                             "out": str(out)})
    return config, train(config, StandardMethod)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch_load(path)["state_dict"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def logged(out: Path) -> list[dict]:
    with open(out / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_final_keeps_the_last_epoch_and_says_so(synth, tmp_path):
    _, result = run(synth, tmp_path / "final", "final")
    assert same(weights(result.best), weights(result.checkpoint))
    assert torch_load(result.best)["epoch"] == 2
    assert load_checkpoint(result.best).meta.training_info["select"] == "final"
    assert load_checkpoint(result.checkpoint).meta.training_info["select"] == "final"


def test_clean_keeps_the_epoch_with_the_best_clean_score(synth, tmp_path):
    _, result = run(synth, tmp_path / "clean", "clean", epochs=4)
    rows = logged(tmp_path / "clean")
    scores = [float(r["val_score"]) for r in rows]
    best_epoch = int(np.argmax(scores))  # the first of equal scores, as the engine keeps it
    assert torch_load(result.best)["epoch"] == best_epoch
    assert load_checkpoint(result.best).meta.training_info["select"] == "clean"
    # checkpoint.pth is always the last epoch, whatever the rule
    assert load_checkpoint(result.checkpoint).meta.training_info["select"] == "final"
    assert rows[0]["val_metric"] == "AP"


def test_holdout_runs_only_the_held_out_corruptions_and_records_the_rule(synth, tmp_path, monkeypatch):
    seen: list[str] = []
    original = engine_module.OnTheFlyImages

    def spy(images, corruption, severity, *args, **kwargs):
        seen.append(corruption)
        return original(images, corruption, severity, *args, **kwargs)

    monkeypatch.setattr(engine_module, "OnTheFlyImages", spy)
    _, result = run(synth, tmp_path / "held", "holdout-c", epochs=2)
    assert sorted(set(seen)) == sorted(GROUPS["extra"]) and len(seen) == 4 * len(SEVERITIES)
    assert set(seen).isdisjoint(GROUPS["benchmark"])
    rows = logged(tmp_path / "held")
    assert all(r["val_metric"] == "AP held-out-C" and r["val_clean"] != "" for r in rows)
    assert load_checkpoint(result.best).meta.training_info["select"] == "holdout-c"


def test_holdout_images_are_build_c_files_pixel_for_pixel(synth, tmp_path):
    ann = synth / "annotations" / "person_keypoints_val.json"
    data_c = tmp_path / "val-C"
    build_c(BuildConfig(out=data_c, images_dir=synth / "images", dataset="coco", ann_file=ann,
                        corruptions=GROUPS["extra"], severities=SEVERITIES))
    samples = read_samples("synth", ann, synth / "images", 1.0)
    val = TopDownDataset(samples, keypoint_set_for("synth"), (64, 64), (16, 16), 2.0, None)
    cells = engine_module.holdout_sets(val, synth / "images")
    assert [c for c, _ in cells] == [(c, s) for c in GROUPS["extra"] for s in SEVERITIES]
    for (corruption, severity), cell in cells:
        for sample in {s.image: s for s in samples}.values():
            name = sample.image.relative_to(synth / "images").as_posix()
            built = load_rgb(data_c / cell_path("robustpose", corruption, severity, name, "jpg"))
            assert np.array_equal(cell.load_image(sample.image), built), (corruption, severity, name)
        assert torch.equal(cell[0]["target"], val[0]["target"])  # same people, same targets


def test_holdout_score_is_the_mean_over_the_twenty_cells(synth, monkeypatch):
    # a stand-in scorer that tells the cells apart: 10 x severity + the corruption's position in GROUPS["extra"]
    def fake_score(config, model, dataset, ann, device):
        loader = dataset.load_image
        if not isinstance(loader, engine_module.HeldOutImages):
            return "AP", 77.0
        source = loader.source
        return "AP", 10.0 * source.severity + GROUPS["extra"].index(source.corruption)

    monkeypatch.setattr(engine_module, "validation_score", fake_score)
    ann = synth / "annotations" / "person_keypoints_val.json"
    val = TopDownDataset(read_samples("synth", ann, synth / "images", 1.0), keypoint_set_for("synth"), (64, 64),
                         (16, 16), 2.0, None)
    config = resolve_config({"select": "holdout-c", "out": "x"})
    out = engine_module.selection_scores(config, None, val, ann, torch.device("cpu"),
                                         engine_module.holdout_sets(val, synth / "images"))
    # mean over severities 1..5 of 10 s is 30, over positions 0..3 is 1.5
    assert out == {"val_metric": "AP held-out-C", "val_score": 31.5, "val_clean": 77.0}
    clean = engine_module.selection_scores(resolve_config({"select": "clean", "out": "x"}), None, val, ann,
                                           torch.device("cpu"), [])
    assert clean == {"val_metric": "AP", "val_score": 77.0}


def test_select_is_validated_and_refused_on_resume(synth, tmp_path):
    with pytest.raises(ValueError, match="select must be one of final, clean, holdout-c"):
        resolve_config({"select": "best", "out": "x"})
