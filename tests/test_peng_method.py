"""Peng et al.'s methods in the engine: what a step feeds the pose net, the agent step's rule, gradient isolation,
pre-training targets, AHO off at validation, exact resume, the CLI."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.datasets.keypoints import COCO
from robustpose.inference.decode import decode_heatmaps
from robustpose.metrics.coco import COCO_SIGMAS
from robustpose.models import create_model, load_checkpoint, torch_load
from robustpose.train import StandardMethod, resolve_config, train
from robustpose.train.data import TopDownDataset
from robustpose.train.engine import build_datasets, validation_score
from robustpose.train.peng import (
    ROTATION_BINS,
    SCALE_BINS,
    Agent,
    PengAgentConfig,
    PengAgentMethod,
    PengConfig,
    PengMethod,
    cell_mask,
    move_target,
)
from robustpose.train.peng.bins import asr_params, sample_value

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16],
                                                   "skip_connections": True}}


def tiny(shared_data: Path, out: Path, **over: Any):
    d = shared_data / "coco"
    layer = {"data": {"dataset": "coco", "train_ann": str(d / "test_coco.json"), "train_images": str(d),
                      "val_ann": str(d / "test_coco.json"), "val_images": str(d), "input_size": [128, 96],
                      "heatmap_size": [32, 24], "sigma": 2.0},
             "model": TINY, "optim": {"lr": 5e-3, "milestones": [2]}, "epochs": 1, "batch_size": 4, "threads": 1,
             "device": "cpu", "seed": 5, "decode": "dark", "out": str(out)}
    return resolve_config(layer, over)


@pytest.fixture(scope="module")
def standard(shared_data, tmp_path_factory) -> Path:
    return train(tiny(shared_data, tmp_path_factory.mktemp("std") / "run"), StandardMethod).best


@pytest.fixture(scope="module")
def agent_run(shared_data, standard, tmp_path_factory) -> Path:
    config = tiny(shared_data, tmp_path_factory.mktemp("agent") / "run", epochs=2, method="peng-agent",
                  method_settings={"init": str(standard), "mode": "asr+aho", "agent_width": 8})
    return train(config, PengAgentMethod).checkpoint


def _method(shared_data, tmp_path, standard, agent_run, **settings):
    config = tiny(shared_data, tmp_path / "m")
    train_set, val_set, val_ann = build_datasets(config)
    model = create_model(config.model.arch, num_joints=17, **config.model.kwargs)
    method = PengMethod(model, config, torch.device("cpu"),
                        settings=PengConfig(init=str(standard), agent=str(agent_run), **settings))
    method.bind_data(train_set)
    return method, train_set, (config, val_set, val_ann)


def _batch(ds: TopDownDataset, indices: list[int]) -> dict[str, torch.Tensor]:
    items = [ds[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_a_thirds_step_feeds_random_asr_and_aho_samples(shared_data, tmp_path, standard, agent_run, monkeypatch):
    method, ds, _ = _method(shared_data, tmp_path, standard, agent_run, mode="asr+aho", split="thirds")
    method.start_epoch(0)
    seen = {}
    real = method.pose_step

    def spy(images, target, weight, mask, kinds):
        seen.update(images=images.clone(), target=target.clone(), mask=mask, kinds=kinds)
        return real(images, target, weight, mask, kinds)

    monkeypatch.setattr(method, "pose_step", spy)
    indices = [0, 1, 2, 3, 4, 5]
    batch = _batch(ds, indices)
    logs = method.step(batch)
    assert seen["kinds"] == ["random"] * 2 + ["asr"] * 2 + ["aho"] * 2
    assert {"loss_random", "loss_asr", "loss_aho", "loss_agent"} <= set(logs)
    for b, i in enumerate(indices):
        plain = ds.draw_params(i, None)
        if b < 2:  # random: the loader's crop as it was
            expected = ds[i]
        elif b < 4:  # asr: re-cropped inside the drawn bins, the random crop's flip kept
            rng = ds.extras_rng(i, "peng-asr")
            probs = method.distributions(method.tools.features(ds.crop(i, plain)["image"][None]), 1)
            js, x = sample_value(probs["scale"][0], SCALE_BINS, rng)
            jr, r = sample_value(probs["rotation"][0], ROTATION_BINS, rng)
            assert abs(x - SCALE_BINS.centers[js]) <= SCALE_BINS.sigma and abs(r - ROTATION_BINS.centers[jr]) <= 5
            expected = ds.crop(i, replace(plain, scale=plain.scale * 2**x, rotation=r, flip=ds.params(i).flip))
        else:  # aho: the un-augmented crop, its features occluded
            expected = ds.crop(i, plain)
        assert torch.allclose(seen["images"][b], expected["image"]) and torch.equal(seen["target"][b],
                                                                                       expected["target"])
        zeros = int((seen["mask"][b] == 0).sum())
        assert zeros == (2 if b >= 4 else 0)


def test_the_alternate_split_uses_whole_batches(shared_data, tmp_path, standard, agent_run):
    method, ds, _ = _method(shared_data, tmp_path, standard, agent_run, mode="asr", split="alternate")
    method.start_epoch(0)
    first, second = method.step(_batch(ds, [0, 1, 2, 3])), method.step(_batch(ds, [4, 5, 6, 7]))
    assert "loss_random" in first and "loss_asr" not in first and "loss_agent" not in first
    assert "loss_asr" in second and "loss_random" not in second and "loss_agent" in second
    third = method.step(_batch(ds, [0, 1, 2, 3]))
    fourth = method.step(_batch(ds, [4, 5, 6, 7]))
    assert "loss_agent" not in third and "loss_agent" not in fourth  # agent_every epoch: once per epoch
    method.start_epoch(1)
    method.step(_batch(ds, [0, 1, 2, 3]))
    assert "loss_agent" in method.step(_batch(ds, [4, 5, 6, 7]))


def test_the_agent_step_rewards_harder_choices_and_treats_ties_as_penalties(shared_data, tmp_path, standard,
                                                                            agent_run, monkeypatch):
    method, ds, _ = _method(shared_data, tmp_path, standard, agent_run, mode="asr+aho", agent_every="batch")
    indices = [0, 1, 2, 3]
    plain = [ds.draw_params(i, None) for i in indices]
    plain_batch = method.tools.crops(indices, plain)
    feats = method.tools.features(plain_batch["image"])
    probs = method.distributions(feats, 4)
    picks = method.choices(indices, probs)
    # references score (0.5, 0.5, 0.5, 0.5), the agent's choices (0.4, 0.5, 0.6, 0.5): harder, tie, easier, tie
    calls = iter([np.full(4, 0.5), np.array([0.4, 0.5, 0.6, 0.5])] * 3)
    monkeypatch.setattr(method.tools, "scores", lambda batch, areas, mask=None: next(calls))
    captured = {}
    real_kl = __import__("robustpose.train.peng.method", fromlist=["kl_loss"]).kl_loss

    def spy(target, logits):
        captured.setdefault("targets", []).append(target.numpy().copy())
        return real_kl(target, logits)

    monkeypatch.setattr("robustpose.train.peng.method.kl_loss", spy)
    logs = method.agent_step(indices, plain, plain_batch, feats, probs, picks)
    assert logs["harder_scale"] == logs["harder_rotation"] == logs["harder_occlusion"] == 0.25
    for head, key, target in zip(("scale", "rotation", "occlusion"), ("js", "jr", "cells"), captured["targets"]):
        for b, harder in enumerate([True, False, False, False]):
            assert target[b] == pytest.approx(move_target(probs[head][b], picks[key][b], harder))


def test_no_gradient_crosses_between_agent_and_pose_net(shared_data, tmp_path, standard, agent_run):
    method, ds, _ = _method(shared_data, tmp_path, standard, agent_run, mode="asr+aho", agent_every="batch")
    pose, agent = list(method.model.parameters()), list(method.agent.parameters())
    indices = [0, 1, 2, 3]
    plain = [ds.draw_params(i, None) for i in indices]
    plain_batch = method.tools.crops(indices, plain)
    feats = method.tools.features(plain_batch["image"])
    assert not any(f.requires_grad for f in feats)
    probs = method.distributions(feats, 4)
    picks = method.choices(indices, probs)
    mask = method.masks(picks["cells"])
    method.pose_step(plain_batch["image"], plain_batch["target"], plain_batch["weight"], mask, ["aho"] * 4)
    assert all(p.grad is None for p in agent) and any(p.grad is not None for p in pose)
    for p in pose:
        p.grad = None
    before = [p.detach().clone() for p in pose]
    method.agent_step(indices, plain, plain_batch, feats, probs, picks)
    assert all(p.grad is None for p in pose) and any(p.grad is not None for p in agent)
    assert all(torch.equal(a, p) for a, p in zip(before, pose))  # the agent step leaves the pose net alone


def test_pretraining_targets_follow_the_rule(shared_data, tmp_path, standard):
    config = tiny(shared_data, tmp_path / "a", method="peng-agent")
    train_set, _, _ = build_datasets(config)
    model = create_model(config.model.arch, num_joints=17, **config.model.kwargs)
    method = PengAgentMethod(model, config, torch.device("cpu"),
                             settings=PengAgentConfig(init=str(standard), mode="asr+aho", agent_width=8))
    method.bind_data(train_set)
    indices = [0, 3]
    got = method.targets(indices)
    frozen = load_checkpoint(standard).model.eval()
    for b, i in enumerate(indices):
        plain = train_set.draw_params(i, None)
        for head, crops in (("scale", [replace(plain, scale=plain.scale * 2**c) for c in SCALE_BINS.centers]),
                            ("rotation", [replace(plain, rotation=c) for c in ROTATION_BINS.centers])):
            items = [train_set.crop(i, p) for p in crops]
            with torch.no_grad():
                pred = frozen(torch.stack([it["image"] for it in items])).numpy()
            target = np.stack([it["target"].numpy() for it in items])
            weight = np.stack([it["weight"].numpy() for it in items])
            xy, _ = decode_heatmaps(pred, "dark", 2.0)
            gt, _ = decode_heatmaps(target, "dark", 2.0)
            area = 32 * 24 / 1.25**2 * np.array([(plain.scale[1] / p.scale[1]) ** 2 for p in crops])
            oks = np.exp(-((xy - gt) ** 2).sum(-1) / (2 * area[:, None] * (2 * COCO_SIGMAS) ** 2))
            score = (oks * (weight > 0)).sum(1) / np.maximum((weight > 0).sum(1), 1)
            hard = 1 - score
            expected = hard / hard.sum() if hard.sum() > 0 else np.full(7, 1 / 7)
            assert got[head][b] == pytest.approx(expected, abs=1e-6)
        item = train_set.crop(i, plain)
        votes = np.zeros(12)
        jxy, _ = decode_heatmaps(item["target"].numpy()[None], "dark", 2.0)
        for j in np.flatnonzero(item["weight"].numpy() > 0):
            x, y = jxy[0, j]
            votes[int(y * 4 // 32) * 3 + int(x * 3 // 24)] += 1
        assert got["occlusion"][b] == pytest.approx(votes / votes.sum() if votes.sum() else np.full(12, 1 / 12))


def test_aho_is_off_at_validation(shared_data, tmp_path, standard, agent_run, monkeypatch):
    method, ds, (config, val_set, val_ann) = _method(shared_data, tmp_path, standard, agent_run, mode="aho")
    method.start_epoch(0)
    masked: list[bool] = []
    from robustpose.models import resnet

    real = resnet.apply_feature_mask
    monkeypatch.setattr(resnet, "apply_feature_mask", lambda x, m: masked.append(m is not None) or real(x, m))
    method.step(_batch(ds, [0, 1, 2, 3]))
    assert any(masked)  # the training step occluded
    masked.clear()
    score = validation_score(config, method.model, val_set, val_ann, torch.device("cpu"))
    assert masked and not any(masked)
    twin = create_model(config.model.arch, num_joints=17, **config.model.kwargs)
    twin.load_state_dict(method.model.state_dict())
    assert validation_score(config, twin, val_set, val_ann, torch.device("cpu")) == score


def test_a_bin_at_scale_one_rotation_zero_is_the_standard_crop(shared_data, tmp_path, standard, agent_run):
    _, ds, (_config, val_set, _) = _method(shared_data, tmp_path, standard, agent_run)
    for i in range(len(ds)):
        got = ds.crop(i, asr_params(ds.draw_params(i, None), SCALE_BINS.centers[3], ROTATION_BINS.centers[3]))
        assert all(torch.equal(got[k], val_set[i][k]) for k in ("image", "target", "weight"))


def _agent_state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch_load(ckpt)["train_state"]["method"]["agent"]


@pytest.mark.parametrize("settings", [{"mode": "asr+aho", "agent_every": "batch"},
                                      {"mode": "asr", "split": "alternate"}], ids=["asr+aho-thirds", "asr-alternate"])
def test_three_epochs_equal_one_plus_a_resume_for_two(shared_data, tmp_path, standard, agent_run, settings):
    s = {"method": "peng", "method_settings": {"init": str(standard), "agent": str(agent_run), **settings}}
    full = train(tiny(shared_data, tmp_path / "full", epochs=3, **s), PengMethod)
    train(tiny(shared_data, tmp_path / "cut", epochs=1, **s), PengMethod)
    resumed = train(tiny(shared_data, tmp_path / "cut", epochs=3, **s), PengMethod, resume=True)
    a, b = torch_load(full.checkpoint), torch_load(resumed.checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    ga, gb = _agent_state(full.checkpoint), _agent_state(resumed.checkpoint)
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    assert any(not torch.equal(ga[k], _agent_state(agent_run)[k]) for k in ga)  # the agent did learn
    assert [r["loss"] for r in full.log] == [r["loss"] for r in resumed.log]
    assert [r["loss_agent"] for r in full.log] == [r["loss_agent"] for r in resumed.log]
    meta = load_checkpoint(full.best).meta
    assert meta.training_method.startswith(f"peng-{settings['mode']}")
    assert set(meta.training_info["files"]) == {"init", "agent"}


def test_pretraining_lowers_the_kl(shared_data, tmp_path, standard):
    config = tiny(shared_data, tmp_path / "a", epochs=6, method="peng-agent",
                  method_settings={"init": str(standard), "mode": "asr", "agent_width": 8, "agent_lr": 2e-3})
    log = train(config, PengAgentMethod).log
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]
    assert "kl_scale" in log[0] and "kl_occlusion" not in log[0]


def test_the_agent_file_is_checked(shared_data, tmp_path, standard, agent_run):
    with pytest.raises(ValueError, match="not a peng-agent checkpoint"):
        train(tiny(shared_data, tmp_path / "x", method="peng",
                   method_settings={"init": str(standard), "agent": str(standard), "mode": "asr"}), PengMethod)
    config = tiny(shared_data, tmp_path / "y", method="peng-agent",
                  method_settings={"init": str(standard), "mode": "asr", "agent_width": 8})
    asr_only = train(config, PengAgentMethod).checkpoint
    with pytest.raises(ValueError, match="head was not pre-trained"):
        train(tiny(shared_data, tmp_path / "z", method="peng",
                   method_settings={"init": str(standard), "agent": str(asr_only), "mode": "aho"}), PengMethod)


def test_random_mode_draws_uniformly_without_an_agent(shared_data, tmp_path, standard):
    result = train(tiny(shared_data, tmp_path / "r", epochs=1, method="peng",
                        method_settings={"init": str(standard), "mode": "random"}), PengMethod)
    row = result.log[0]
    assert row["p_scale0"] == pytest.approx(1 / 7) and "loss_agent" not in row
    assert {"loss_random", "loss_asr", "loss_aho"} <= set(row)
    assert load_checkpoint(result.best).meta.training_method == "peng-random"


def test_cli_pretrains_trains_and_resumes(shared_data, tmp_path, standard):
    d = shared_data / "coco"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  arch: simplebaseline_res18\n  kwargs: {stem_width: 8, deconv_channels: [16, 16, 16]}\n")
    common = ["--data", "coco", "--train-ann", str(d / "test_coco.json"), "--train-images", str(d), "--val-ann",
              str(d / "test_coco.json"), "--val-images", str(d), "--config", str(cfg), "--input-size", "128x96",
              "--batch-size", "4", "--threads", "1", "--device", "cpu", "--epochs", "1"]
    init = train(tiny(shared_data, tmp_path / "std", model={"arch": "simplebaseline_res18",
                                                            "kwargs": {"stem_width": 8,
                                                                       "deconv_channels": [16, 16, 16]}}),
                 StandardMethod).best
    agent = CliRunner().invoke(cli, ["train", "peng-agent", *common, "--init", str(init), "--mode", "asr",
                                     "--agent-width", "8", "--samples-per-epoch", "8", "--out", str(tmp_path / "ag")])
    assert agent.exit_code == 0, agent.output
    missing = CliRunner().invoke(cli, ["train", "peng", *common, "--init", str(init), "--out", str(tmp_path / "p")])
    assert missing.exit_code == 2 and "--agent" in missing.output
    run = tmp_path / "p"
    ok = CliRunner().invoke(cli, ["train", "peng", *common, "--init", str(init), "--agent",
                                  str(tmp_path / "ag" / "checkpoint.pth"), "--agent-every", "batch", "--out", str(run)])
    assert ok.exit_code == 0, ok.output
    again = CliRunner().invoke(cli, ["train", "peng", "--out", str(run), "--resume", "--epochs", "2"])
    assert again.exit_code == 0, again.output
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and "loss_asr" in rows[0]
    assert load_checkpoint(run / "checkpoint.pth").meta.training_method == "peng-asr[agent_every=batch]"
    bad = CliRunner().invoke(cli, ["train", "peng", "--out", str(run), "--resume", "--epochs", "3",
                                   "--split", "thirds"])
    assert bad.exit_code == 2 and "--split" in bad.output


def test_hrnet_runs_both_agents(shared_data, tmp_path):
    hr = {"arch": "hrnet_w32", "kwargs": {"width": 4, "stage_modules": [1, 1, 1], "num_blocks": 1, "stem_width": 8,
                                          "layer1_blocks": 1}}
    std = train(tiny(shared_data, tmp_path / "s", model=hr), StandardMethod).best
    ag = train(tiny(shared_data, tmp_path / "a", model=hr, method="peng-agent",
                    method_settings={"init": str(std), "mode": "asr+aho", "agent_width": 8,
                                     "samples_per_epoch": 8}), PengAgentMethod).checkpoint
    result = train(tiny(shared_data, tmp_path / "p", model=hr, method="peng",
                        method_settings={"init": str(std), "agent": str(ag), "mode": "asr+aho",
                                         "agent_every": "batch"}), PengMethod)
    assert {"loss_asr", "loss_aho", "loss_agent"} <= set(result.log[0])


def test_agent_grid_matches_masks(shared_data, tmp_path, standard, agent_run):
    method, _, _ = _method(shared_data, tmp_path, standard, agent_run, mode="aho")
    assert isinstance(method.agent, Agent) and method.grid == (4, 3)
    m = method.masks([[0, 11], None])
    assert torch.equal(m[0], torch.from_numpy(cell_mask([0, 11], (4, 3)))) and bool((m[1] == 1).all())
    assert COCO.num_joints == 17


def test_ddp_runs_pretraining_and_joint_training_on_two_cpu_ranks(shared_data, tmp_path, standard):
    """torchrun with Gloo: the agent is DDP-wrapped too (every head gets a gradient, so no rank waits)."""
    import os
    import subprocess
    import sys

    d = shared_data / "coco"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  arch: simplebaseline_res18\n  kwargs: {stem_width: 8, deconv_channels: [16, 16, 16],"
                   " skip_connections: true}\ndata: {sigma: 2.0}\n")
    common = ["--data", "coco", "--train-ann", str(d / "test_coco.json"), "--train-images", str(d), "--val-ann",
              str(d / "test_coco.json"), "--val-images", str(d), "--config", str(cfg), "--input-size", "128x96",
              "--batch-size", "2", "--threads", "1", "--device", "cpu", "--epochs", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "robustpose",
           "train"]
    agent = subprocess.run([*run, "peng-agent", *common, "--init", str(standard), "--mode", "asr+aho",
                            "--agent-width", "8", "--out", str(tmp_path / "ag")], env=env, capture_output=True, check=False,
                           text=True, timeout=600)
    assert agent.returncode == 0, agent.stderr[-2000:]
    joint = subprocess.run([*run, "peng", *common, "--init", str(standard), "--agent", str(tmp_path / "ag" /
                                                                                          "checkpoint.pth"),
                            "--mode", "asr", "--agent-every", "batch", "--out", str(tmp_path / "pj")], env=env, check=False,
                           capture_output=True, text=True, timeout=600)
    assert joint.returncode == 0, joint.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "pj" / "log.csv").open()))
    assert "loss_agent" in rows[0] and "loss_asr" in rows[0]


@pytest.mark.parametrize("dataset, ann", [("mpii", "mpii/test_mpii.json"), ("ochuman", "ochuman/test_ochuman.json")])
def test_mpii_and_ochuman_pretrain_and_train(shared_data, tmp_path, dataset, ann):
    a, images = shared_data / ann, shared_data / ann.split("/")[0]
    data = {"dataset": dataset, "train_ann": str(a), "train_images": str(images), "val_ann": str(a),
            "val_images": str(images)}
    std = train(tiny(shared_data, tmp_path / "s", data=data), StandardMethod).best
    ag = train(tiny(shared_data, tmp_path / "a", data=data, method="peng-agent",
                    method_settings={"init": str(std), "mode": "asr+aho", "agent_width": 8, "samples_per_epoch": 8}),
               PengAgentMethod)
    assert np.isfinite(ag.log[0]["kl_scale"]) and np.isfinite(ag.log[0]["kl_occlusion"])
    result = train(tiny(shared_data, tmp_path / "p", data=data, method="peng",
                        method_settings={"init": str(std), "agent": str(ag.checkpoint), "mode": "asr+aho",
                                         "agent_every": "batch"}), PengMethod)
    assert {"loss_asr", "loss_aho", "harder_scale", "harder_occlusion"} <= set(result.log[0])
    assert load_checkpoint(result.best).meta.keypoints == ("mpii" if dataset == "mpii" else "coco")
