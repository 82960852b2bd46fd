"""Training engine: crops and targets, a few steps on each sample dataset, exact resume, config layering."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.datasets.keypoints import COCO
from robustpose.inference.decode import argmax_refined
from robustpose.inference.transforms import heatmap_to_image
from robustpose.train import StandardMethod, resolve_config, train
from robustpose.train.data import Augment, TopDownDataset, gaussian_targets, keypoint_set_for, read_samples
from robustpose.train.engine import epoch_order

TINY = {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16]}}


def tiny_config(shared_data, dataset: str, out, **over):
    ann = {"coco": "coco/test_coco.json", "mpii": "mpii/test_mpii.json", "ochuman": "ochuman/test_ochuman.json"}
    folder = shared_data / ann[dataset].split("/")[0]
    layer = {"data": {"dataset": dataset, "train_ann": str(shared_data / ann[dataset]), "train_images": str(folder),
                      "val_ann": str(shared_data / ann[dataset]), "val_images": str(folder),
                      "input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 1.0},
             "model": TINY, "optim": {"lr": 5e-3, "milestones": [100]}, "epochs": 4, "batch_size": 2,
             "threads": 1, "out": str(out)}
    return resolve_config(layer, over)


def test_targets_decode_back_to_the_annotated_joints(shared_data):
    """Training crops + targets and the inference decoding agree: the target peaks map back onto the GT joints."""
    for dataset, ann, size in (("coco", "coco/test_coco.json", (256, 192)), ("mpii", "mpii/test_mpii.json", (256, 256))):
        samples = read_samples(dataset, shared_data / ann, shared_data / dataset, size[1] / size[0])
        kset = keypoint_set_for(dataset)
        ds = TopDownDataset(samples, kset, size, (size[0] // 4, size[1] // 4), 2.0, None)
        for i in range(len(samples)):
            item = ds[i]
            coords, _ = argmax_refined(item["target"][None].numpy())
            back = heatmap_to_image(coords, samples[i].center[None], samples[i].scale[None], ds.heatmap_size)[0]
            w = item["weight"].numpy() > 0
            stride = samples[i].scale[0] * 200 / ds.heatmap_size[1]
            assert w.sum() > 0
            assert np.abs(back[w] - samples[i].joints[w, :2]).max() <= 0.5 * stride + 1e-6


def test_gaussian_targets_peak_and_weights():
    joints = np.array([[5.0, 7.0, 1], [5.0, 7.0, 0], [-20.0, 3.0, 1], [10.25, 2.5, 1]])
    target, weight = gaussian_targets(joints, (16, 12), sigma=1.5)
    assert target.shape == (4, 16, 12) and target.dtype == np.float32
    assert weight.tolist() == [1, 0, 0, 1]
    assert target[0, 7, 5] == pytest.approx(1.0) and target[0].argmax() == 7 * 12 + 5
    assert not target[1].any() and not target[2].any()
    coords, maxvals = argmax_refined(target[None])
    assert np.allclose(coords[0, 0], [5, 7]) and abs(coords[0, 3, 0] - 10.25) <= 0.25


def test_augmentation_is_seeded_per_epoch_and_flip_swaps_pairs(shared_data):
    from robustpose.train.data import read_coco_samples

    samples = read_coco_samples(shared_data / "coco/test_coco.json", shared_data / "coco", 0.75)
    ds = TopDownDataset(samples, COCO, (64, 48), (16, 12), 1.0, Augment(), seed=1)
    a = ds[0]["image"]
    assert torch.equal(a, ds[0]["image"])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0]["image"])
    # flip only (no scale/rotation): the crop is the mirror image (HRNet flips x -> W - 1 - x, hence the 1-px
    # offset) and the left/right targets swap
    flip_only = Augment(scale_factor=0.0, rotation_prob=0.0, flip=True)
    plain = TopDownDataset(samples, COCO, (64, 48), (16, 12), 1.0, None)[3]
    ds = TopDownDataset(samples, COCO, (64, 48), (16, 12), 1.0, flip_only, seed=0)
    flipped = None
    for epoch in range(20):
        ds.set_epoch(epoch)
        item = ds[3]
        if not torch.equal(item["image"], plain["image"]):
            flipped = item
            break
    assert flipped is not None
    assert torch.allclose(flipped["image"][..., 1:], plain["image"].flip(-1)[..., :-1], atol=1e-3)
    assert torch.equal(flipped["weight"][[1, 2, 5, 6]], plain["weight"][[2, 1, 6, 5]])
    for a, b in ((5, 6), (11, 12)):
        if plain["weight"][b]:
            fy, fx = divmod(int(flipped["target"][a].argmax()), 12)
            py, px = divmod(int(plain["target"][b].argmax()), 12)
            assert fy == py and abs(fx - (11 - px)) <= 1


def test_epoch_order_is_a_seeded_permutation_split_across_ranks():
    assert sorted(epoch_order(10, 0, 3)) == list(range(10))
    assert epoch_order(10, 0, 3) == epoch_order(10, 0, 3) != epoch_order(10, 0, 4)
    r0, r1 = epoch_order(11, 0, 0, 0, 2), epoch_order(11, 0, 0, 1, 2)
    assert len(r0) == len(r1) == 5 and not set(r0) & set(r1)


@pytest.mark.parametrize("dataset", ["coco", "mpii", "ochuman"])
def test_a_few_epochs_on_each_sample_dataset_lower_the_loss(shared_data, tmp_path, dataset):
    result = train(tiny_config(shared_data, dataset, tmp_path / dataset), StandardMethod)
    losses = [row["loss"] for row in result.log]
    assert losses[-1] < 0.5 * losses[0], losses
    rows = list(csv.DictReader((tmp_path / dataset / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["val_metric"] == ("PCK@0.1" if dataset == "mpii" else "AP")
    assert (tmp_path / dataset / "best.pth").is_file() and (tmp_path / dataset / "config.yaml").is_file()


def test_decoder_and_layout_are_recorded_and_used(shared_data, tmp_path):
    from robustpose.models import load_checkpoint

    nchw = train(tiny_config(shared_data, "coco", tmp_path / "nchw", epochs=1, channels_last=False), StandardMethod)
    nhwc = train(tiny_config(shared_data, "coco", tmp_path / "nhwc", epochs=1, decode="dark"), StandardMethod)
    meta = load_checkpoint(nhwc.best).meta
    assert meta.decode == "dark" and meta.target_sigma == 1.0
    assert load_checkpoint(nchw.best).meta.decode == "quarter"
    # the memory layout changes speed, not the arithmetic beyond float rounding
    assert nchw.log[0]["loss"] == pytest.approx(nhwc.log[0]["loss"], rel=1e-2)
    with pytest.raises(ValueError, match="decode"):
        tiny_config(shared_data, "coco", tmp_path / "x", decode="udp")


def test_resume_gives_the_weights_of_an_uninterrupted_run(shared_data, tmp_path):
    full = train(tiny_config(shared_data, "coco", tmp_path / "full", epochs=3), StandardMethod)
    cut = train(tiny_config(shared_data, "coco", tmp_path / "cut", epochs=1), StandardMethod)
    after_one = torch.load(cut.checkpoint, weights_only=True)["state_dict"]
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(shared_data, "coco", tmp_path / "cut", epochs=3), StandardMethod)
    resumed = train(tiny_config(shared_data, "coco", tmp_path / "cut", epochs=3), StandardMethod, resume=True)
    a = torch.load(full.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert [r["loss"] for r in full.log] == [r["loss"] for r in resumed.log]
    assert any(not torch.equal(after_one[k], a["state_dict"][k]) for k in after_one)  # resuming did train on


def test_config_layers_and_errors(tmp_path):
    cfg = resolve_config({"epochs": 5, "optim": {"lr": 0.1}}, {"epochs": None, "optim": {"lr": 0.2}, "out": "x"})
    assert cfg.epochs == 5 and cfg.optim.lr == 0.2 and cfg.optim.milestones == [170, 200]
    with pytest.raises(ValueError, match="unknown keys"):
        resolve_config({"optim": {"learning_rate": 1}, "out": "x"})
    with pytest.raises(ValueError, match="--out"):
        resolve_config({})
    assert cfg.augment_params()["rotation_factor"] == 30.0  # synth defaults to MPII-like ranges
    preset = {"model": {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 16}}, "out": "x"}
    assert resolve_config(preset, {"model": {"arch": "hrnet_w32"}}).model.kwargs == {}
    assert resolve_config(preset, {"model": {"kwargs": {"width": 8}}}).model.kwargs == {"width": 8}
    assert resolve_config(preset, {"model": {"arch": "simplebaseline_res18"}}).model.kwargs == {"stem_width": 16}


def test_cli_train_standard(shared_data, tmp_path):
    d = shared_data / "coco"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  arch: simplebaseline_res18\n  kwargs: {stem_width: 8, deconv_channels: [16, 16, 16]}\n"
                   "data: {sigma: 1.0}\n")
    args = ["train", "standard", "--data", "coco", "--train-ann", str(d / "test_coco.json"), "--train-images", str(d),
            "--val-ann", str(d / "test_coco.json"), "--val-images", str(d), "--config", str(cfg),
            "--input-size", "64x64", "--epochs", "1", "--batch-size", "4", "--threads", "1", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(cli, [*args, "--milestones", "3,7"])
    assert result.exit_code == 0, result.output
    assert "best validation score" in result.output
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["model"]["kwargs"]["stem_width"] == 8 and saved["data"]["input_size"] == [64, 64]
    assert saved["optim"]["milestones"] == [3, 7]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "--resume" in again.output
    for bad in ("7,3", "0", "x"):
        wrong = CliRunner().invoke(cli, [*args, "--milestones", bad])
        assert wrong.exit_code == 2 and "milestones" in wrong.output


def test_step_decay_learning_rate():
    model = torch.nn.Linear(2, 2)
    cfg = resolve_config({"optim": {"lr": 1.0, "milestones": [2, 4], "gamma": 0.1}, "out": "x"})
    method = StandardMethod(model, cfg, torch.device("cpu"))
    lrs = []
    for epoch in range(6):
        method.start_epoch(epoch)
        lrs.append(method.lr())
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_demo_reuses_only_a_finished_run(tmp_path):
    from robustpose.cli.demo import training_finished

    run = tmp_path / "run"
    run.mkdir()
    assert not training_finished(run, 2)
    (run / "log.csv").write_text("epoch,loss\n0,0.1\n")
    (run / "best.pth").write_bytes(b"")
    assert not training_finished(run, 2)
    (run / "log.csv").write_text("epoch,loss\n0,0.1\n1,0.05\n")
    assert training_finished(run, 2)
