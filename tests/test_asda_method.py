"""ASDA: the paster (workers and device), the generator, the adversarial loop, and the method in the engine."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.datasets.parts import TYPE_NAMES, PartFilter, build_pool, load_pool, synth_sources
from robustpose.datasets.synthpose import SynthConfig, generate_split
from robustpose.models import create_model, load_checkpoint, torch_load
from robustpose.train import METHODS, ASDAConfig, ASDAMethod, JointsMSELoss, StandardMethod, resolve_config, train
from robustpose.train.asda import PartGenerator, PartPaster, paste, select_rt, soft_mask, theta_from, warp
from robustpose.train.asda.paster import centred_canvas
from robustpose.train.data import Augment, CropParams, Sample, TopDownDataset, keypoint_set_for, read_samples
from robustpose.train.engine import build_datasets, validation_score

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16]}}
T = len(TYPE_NAMES)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_split(root, "train", 4, SynthConfig(), 0)
    out = root / "pool"
    build_pool(synth_sources(root), out)
    return out


def tiny(shared_data, out, pool, **over):
    d = shared_data / "coco"
    settings = {"pool": str(pool), "gen_width": 4, **over.pop("settings", {})}
    layer = {"data": {"dataset": "coco", "train_ann": str(d / "test_coco.json"), "train_images": str(d),
                      "val_ann": str(d / "test_coco.json"), "val_images": str(d), "input_size": [64, 64],
                      "heatmap_size": [16, 16], "sigma": 1.0},
             "model": TINY, "optim": {"lr": 5e-3, "milestones": [2]}, "epochs": 1, "batch_size": 4, "threads": 1,
             "device": "cpu", "seed": 5, "out": str(out), "method": "asda", "method_settings": settings}
    return resolve_config(layer, over)


def _batch(shared_data, pool_dir, n: int = 4, epoch: int = 0, num_parts: int = 1) -> dict[str, torch.Tensor]:
    """A collated batch of the training crops with ASDA's extras (the loader workers' output)."""
    d = shared_data / "coco"
    samples = read_samples("coco", d / "test_coco.json", d, 1.0)
    paster = PartPaster(load_pool(pool_dir), (64, 64), TYPE_NAMES, num_parts)
    ds = TopDownDataset(samples, keypoint_set_for("coco"), (64, 64), (16, 16), 1.0,
                        Augment(rotation_factor=30, half_body_prob=0.0), seed=1, extras=paster)
    ds.set_epoch(epoch)
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _random_head(gen: PartGenerator, seed: int = 0, scale: float = 1.0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        gen.head[2].weight.copy_(torch.randn(gen.head[2].weight.shape, generator=g) * scale)


# ---------------------------------------------------------------- the generator and theta


def test_a_zero_initialised_generator_is_the_identity_and_pastes_the_centred_canvas(shared_data, pool_dir):
    batch = _batch(shared_data, pool_dir)
    gen = PartGenerator(T, width=4).train()
    per_type = gen(batch["image"])
    assert torch.equal(per_type, torch.zeros(4, T, 3))
    rt = select_rt(per_type, batch["part_type"])
    assert torch.equal(theta_from(rt), torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(4, 1, 2, 3))
    out = paste(batch["image"], batch["part_image"], batch["part_mask"], batch["part_type"], rt)
    m, p = batch["part_mask"][:, 0], batch["part_image"][:, 0]
    expected = batch["image"] * (1 - m) + p * m
    assert (batch["part_type"] >= 0).sum() >= 3 and (m > 0).any()
    assert torch.equal(out, expected)


def test_warp_is_grid_sample_with_align_corners_false():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(6, 4, 37, 52, generator=g)
    theta = theta_from(torch.rand(6, 3, generator=g) - 0.5)
    ref = F.grid_sample(src, F.affine_grid(theta, list(src.shape), align_corners=False), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    assert (warp(src, theta) - ref).abs().max() < 1e-5
    other = F.grid_sample(src, F.affine_grid(theta, list(src.shape), align_corners=True), align_corners=True)
    assert (warp(src, theta) - other).abs().max() > 1e-2  # the test tells the conventions apart


def test_theta_stays_in_range():
    gen = PartGenerator(T, width=4).train()
    _random_head(gen, scale=50.0)  # saturates the sigmoid
    out = gen(torch.randn(8, 3, 64, 64) * 10)
    assert out.abs().max() <= 0.5 and out.abs().max() > 0.45
    theta = theta_from(out)
    angle = torch.atan2(theta[..., 0, 1], theta[..., 0, 0])
    assert angle.abs().max() <= math.pi / 2 + 1e-6 and angle.abs().max() > 1.3
    assert theta[..., :, 2].abs().max() <= 1.2 + 1e-6
    assert torch.allclose(theta[..., 0, 0], theta[..., 1, 1]) and torch.allclose(theta[..., 0, 1], -theta[..., 1, 0])


def test_each_type_head_gets_gradient_only_from_its_own_type():
    gen = PartGenerator(T, width=4, head_width=8).train()
    _random_head(gen)
    t = 3
    gen(torch.randn(2, 3, 64, 64))[:, t].sum().backward()
    w1, w2 = gen.head[0].weight.grad.flatten(1), gen.head[2].weight.grad.flatten(1)
    own1, own2 = slice(8 * t, 8 * (t + 1)), slice(3 * t, 3 * (t + 1))
    assert w1[own1].abs().sum() > 0 and w2[own2].abs().sum() > 0
    mask1, mask2 = torch.ones(len(w1), dtype=bool), torch.ones(len(w2), dtype=bool)
    mask1[own1], mask2[own2] = False, False
    assert w1[mask1].abs().sum() == 0 and w2[mask2].abs().sum() == 0
    assert gen.head[0].bias.grad[mask1].abs().sum() == 0 and gen.head[2].bias.grad[mask2].abs().sum() == 0


def test_the_generator_gets_gradient_through_the_resampling(shared_data, pool_dir):
    batch = _batch(shared_data, pool_dir)
    gen = PartGenerator(T, width=4).train()
    net = torch.nn.Conv2d(3, 17, 4, stride=4)  # any differentiable pose net
    rt = select_rt(gen(batch["image"]), batch["part_type"])
    rt.retain_grad()
    out = paste(batch["image"], batch["part_image"], batch["part_mask"], batch["part_type"], rt)
    JointsMSELoss()(net(out), batch["target"], batch["weight"]).backward()
    used = batch["part_type"] >= 0
    assert rt.grad[used].abs().sum() > 0 and rt.grad[~used].abs().sum() == 0
    assert gen.head[2].weight.grad.abs().sum() > 0  # the zero-initialised last conv starts to learn


def test_empty_slots_leave_the_image_unchanged(shared_data, pool_dir):
    batch = _batch(shared_data, pool_dir, num_parts=2)
    g = torch.Generator().manual_seed(0)
    garbage = {"part_image": torch.randn(batch["part_image"].shape, generator=g),
               "part_mask": torch.rand(batch["part_mask"].shape, generator=g)}
    rt = torch.rand(4, 2, 3, generator=g) - 0.5
    empty = torch.full((4, 2), -1)
    out = paste(batch["image"], garbage["part_image"], garbage["part_mask"], empty, rt)
    assert torch.equal(out, batch["image"])
    # one empty slot of two: the same as pasting the other slot alone
    one = torch.stack([batch["part_type"][:, 0], empty[:, 1]], 1)
    two = paste(batch["image"], garbage["part_image"], garbage["part_mask"], one, rt)
    alone = paste(batch["image"], garbage["part_image"][:, :1], garbage["part_mask"][:, :1], one[:, :1], rt[:, :1])
    assert torch.equal(two, alone)


# ---------------------------------------------------------------- the worker side


def test_paster_skips_half_body_and_crops_with_few_visible_joints(pool_dir):
    paster = PartPaster(load_pool(pool_dir), (64, 48), TYPE_NAMES)
    joints = np.zeros((17, 3))
    joints[:9, 2] = 1
    sample = Sample(Path("x.jpg"), np.array([50.0, 50.0]), np.array([1.0, 1.0]), joints)
    params = CropParams(sample.center, sample.scale)
    item = {"image": torch.zeros(3, 64, 48)}
    rng = lambda: np.random.default_rng(0)
    assert paster(item, params, sample, rng())["part_type"].tolist() != [-1]
    assert paster(item, replace(params, half_body=True), sample, rng())["part_type"].tolist() == [-1]
    few = replace(sample, joints=np.concatenate([joints[:, :2], (np.arange(17) < 7)[:, None]], 1))
    empty = paster(item, params, few, rng())
    assert empty["part_type"].tolist() == [-1] and empty["part_mask"].abs().sum() == 0
    mpii = replace(paster, coco=False)
    assert mpii(item, params, few, rng())["part_type"].tolist() != [-1]  # the joint rule is COCO's only


def test_paster_size_law_and_centred_canvas(pool_dir):
    pool = load_pool(pool_dir)
    paster = PartPaster(pool, (128, 96), TYPE_NAMES, erode=0, blur=0)
    joints = np.ones((17, 3))
    sample = Sample(Path("x.jpg"), np.array([50.0, 50.0]), np.array([1.0, 1.0]), joints)
    for seed in range(20):
        scale = 1 + 0.2 * (seed % 3 - 1)
        params = CropParams(sample.center, sample.scale * scale)
        rng = np.random.default_rng(seed)
        out = paster({}, params, sample, rng)
        # redraw the same choices from the same stream: rt, then type, instance, jitter
        rng = np.random.default_rng(seed)
        rng.uniform(-0.5, 0.5, (1, 3))
        names = list(pool.by_type)
        kind = names[int(rng.integers(len(names)))]
        assert TYPE_NAMES[int(out["part_type"][0])] == kind
        rng.integers(len(pool.by_type[kind]))
        jitter = rng.uniform(0.7, 1.3)
        ys, xs = np.nonzero(out["part_mask"][0, 0].numpy() > 0)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        expected = math.hypot(128, 96) / scale / 1.25 * pool.priors[kind] * jitter
        if h < 128 and w < 96:  # not cut by the canvas
            assert math.hypot(h, w) == pytest.approx(expected, abs=1.5)
            assert abs((ys.min() + ys.max()) / 2 - 63.5) <= 1 and abs((xs.min() + xs.max()) / 2 - 47.5) <= 1
        assert (out["part_image"][0][:, out["part_mask"][0, 0] == 0] == 0).all()


def test_soft_mask_and_canvas():
    alpha = np.zeros((9, 9), np.uint8)
    alpha[2:7, 2:7] = 255
    m = soft_mask(alpha, 3, 3)
    assert m[4, 4] == 1 and m[1, 1] == 0 and m[2, 2] == pytest.approx(1 / 9)  # eroded to 3x3, then blurred
    assert np.array_equal(soft_mask(alpha, 0, 0), (alpha > 0).astype(np.float32))
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    canvas, cmask = centred_canvas(rgb, np.ones((5, 7), np.float32), (9, 9))
    assert np.array_equal(canvas[2:7, 1:8], rgb) and cmask.sum() == 35
    _, bmask = centred_canvas(np.ones((20, 3, 3), np.uint8), np.ones((20, 3), np.float32), (10, 9))
    assert bmask.sum() == 30 and bmask[:, 3:6].all()


# ---------------------------------------------------------------- the loop


def _method(shared_data, tmp_path, pool_dir, **settings) -> ASDAMethod:
    config = tiny(shared_data, tmp_path / "m", pool_dir, settings=settings)
    model = create_model(TINY["arch"], num_joints=17, **TINY["kwargs"])
    return ASDAMethod(model, config, torch.device("cpu"))


def _pose_loss(method: ASDAMethod, batch, rt=None) -> float:
    with torch.no_grad():
        rt = method._theta(batch) if rt is None else rt
        pred = method.model.train()(method._paste(batch, rt))
        return float(method.criterion(pred, batch["target"], batch["weight"]))


def test_a_generator_step_raises_the_pose_loss_and_a_pose_step_lowers_it(shared_data, pool_dir, tmp_path):
    torch.manual_seed(0)
    method = _method(shared_data, tmp_path, pool_dir, gen_lr=1e-3)
    for group in method.optimizer.param_groups:
        group["lr"] = 1e-3
    batch = _batch(shared_data, pool_dir, n=8)
    _random_head(method.generator, scale=0.3)
    rt = method._theta(batch)
    before = _pose_loss(method, batch)
    method.generator.train()
    method._generator_step(batch, method._paste(batch, rt))
    after_g = _pose_loss(method, batch)
    assert after_g > before
    frozen = method._theta(batch).detach()
    before_d = _pose_loss(method, batch, frozen)
    method.optimizer.zero_grad()
    StandardMethod.step(method, {"image": method._paste(batch, frozen), "target": batch["target"],
                                          "weight": batch["weight"]})
    assert _pose_loss(method, batch, frozen) < before_d


@pytest.mark.parametrize("settings, order", [({}, ["D", "G"]), ({"stn_first": True}, ["G", "D"]),
                                             ({"nd": 2, "ng": 3}, ["D", "D", "G", "G", "G"]),
                                             ({"random": True, "nd": 2}, ["D", "D"])])
def test_step_order_and_repeats(shared_data, pool_dir, tmp_path, monkeypatch, settings, order):
    method = _method(shared_data, tmp_path, pool_dir, **settings)
    seen: list[str] = []
    pastes: list[int] = []
    monkeypatch.setattr(StandardMethod, "step", lambda self, b, real=StandardMethod.step: (seen.append("D"),
                                                                                          real(self, b))[1])
    real_g = method._generator_step
    monkeypatch.setattr(method, "_generator_step", lambda b, p: (seen.append("G"), real_g(b, p))[1])
    real_paste = method._paste
    monkeypatch.setattr(method, "_paste", lambda b, rt: (pastes.append(len(seen)), real_paste(b, rt))[1])
    logs = method.step(_batch(shared_data, pool_dir))
    assert seen == order
    # a paste before the first step and again after each generator step that is followed by another step
    expected = [0] + [i + 1 for i, p in enumerate(order[:-1]) if p == "G"]
    assert pastes == expected
    assert ("loss_adv" in logs) == ("G" in order) and "loss" in logs and 0 < logs["pasted"] <= 1


def test_targets_and_weights_are_never_changed(shared_data, pool_dir, tmp_path, monkeypatch):
    """Byte-identical in the loader with and without the paster, and at every criterion call of the step."""
    d = shared_data / "coco"
    samples = read_samples("coco", d / "test_coco.json", d, 1.0)
    aug = Augment(rotation_factor=30)
    base = TopDownDataset(samples, keypoint_set_for("coco"), (64, 64), (16, 16), 1.0, aug, seed=1)
    pasted = TopDownDataset(samples, keypoint_set_for("coco"), (64, 64), (16, 16), 1.0, aug, seed=1,
                            extras=PartPaster(load_pool(pool_dir), (64, 64), TYPE_NAMES))
    for i in range(len(samples)):
        a, b = base[i], pasted[i]
        assert a["target"].numpy().tobytes() == b["target"].numpy().tobytes()
        assert a["weight"].numpy().tobytes() == b["weight"].numpy().tobytes()
        assert torch.equal(a["image"], b["image"])  # the paste happens on the device, never in the crop
    method = _method(shared_data, tmp_path, pool_dir)
    batch = _batch(shared_data, pool_dir)
    kept = {k: batch[k].clone() for k in ("target", "weight")}
    calls = []
    real = method.criterion.forward
    monkeypatch.setattr(method.criterion, "forward", lambda p, t, w: (calls.append((t, w)), real(p, t, w))[1])
    method.step(batch)
    assert len(calls) == 2
    for t, w in calls:
        assert t.numpy().tobytes() == kept["target"].numpy().tobytes()
        assert w.numpy().tobytes() == kept["weight"].numpy().tobytes()


def test_random_baseline_uses_the_workers_uniform_draw_and_no_generator(shared_data, pool_dir, tmp_path):
    method = _method(shared_data, tmp_path, pool_dir, random=True)
    assert method.generator is None and method.name == "asda[random=True]"
    batch = _batch(shared_data, pool_dir)
    assert torch.equal(method._theta(batch), batch["part_rt"])
    assert batch["part_rt"].abs().max() < 0.5 and batch["part_rt"].std() > 0.1
    again = _batch(shared_data, pool_dir)
    assert torch.equal(again["part_rt"], batch["part_rt"]) and torch.equal(again["part_image"], batch["part_image"])


# ---------------------------------------------------------------- in the engine


def test_validation_never_calls_the_generator(shared_data, pool_dir, tmp_path, monkeypatch):
    calls = {"n": 0, "validating": False}

    def counting(method_cls):
        def make(model, config, device):
            method = method_cls(model, config, device)
            method.generator.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
            calls["method"] = method
            return method
        return make

    from robustpose.train import engine

    real = engine.validation_score

    def watched(*args, **kwargs):
        n = calls["n"]
        out = real(*args, **kwargs)
        assert calls["n"] == n, "validation called the generator"
        calls["validating"] = True
        return out

    monkeypatch.setattr(engine, "validation_score", watched)
    result = train(tiny(shared_data, tmp_path / "run", pool_dir, epochs=2), counting(ASDAMethod))
    assert calls["validating"] and calls["n"] == sum(r["steps"] for r in result.log) == 6
    config = tiny(shared_data, tmp_path / "run", pool_dir)
    _, val, val_ann = build_datasets(config)
    n = calls["n"]
    validation_score(config, calls["method"].model, val, val_ann, torch.device("cpu"))
    assert calls["n"] == n


def test_three_epochs_equal_one_plus_a_resume_for_two(shared_data, pool_dir, tmp_path):
    full = train(tiny(shared_data, tmp_path / "full", pool_dir, epochs=3), ASDAMethod)
    train(tiny(shared_data, tmp_path / "cut", pool_dir, epochs=1), ASDAMethod)
    resumed = train(tiny(shared_data, tmp_path / "cut", pool_dir, epochs=3), ASDAMethod, resume=True)
    a, b = torch_load(full.checkpoint), torch_load(resumed.checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    ma, mb = a["train_state"]["method"], b["train_state"]["method"]
    assert all(torch.equal(ma["generator"][k], mb["generator"][k]) for k in ma["generator"])
    sa, sb = ma["gen_optimizer"]["state"], mb["gen_optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])
    assert [r["loss"] for r in full.log] == [r["loss"] for r in resumed.log]
    assert [r["loss_adv"] for r in full.log] == [r["loss_adv"] for r in resumed.log]
    # the generator learned something (it is not still the zero-initialised identity)
    assert ma["generator"]["head.2.weight"].abs().sum() > 0


def test_training_info_records_the_pool_hash_and_a_changed_pool_is_refused_on_resume(shared_data, pool_dir,
                                                                                      tmp_path):
    pool = tmp_path / "pool"
    shutil.copytree(pool_dir, pool)
    result = train(tiny(shared_data, tmp_path / "run", pool), ASDAMethod)
    meta = load_checkpoint(result.checkpoint).meta
    assert meta.training_method == "asda[gen_width=4]"
    assert meta.training_info["pools"] == {"pool": load_pool(pool_dir).hash}
    assert meta.training_info["settings"] == {"gen_width": 4}  # the pool's path is left out, its hash is in
    shutil.rmtree(pool)  # the same folder, rebuilt with other filters
    build_pool(synth_sources(pool_dir.parent), pool, PartFilter(min_fill=0.3))
    with pytest.raises(ValueError, match="part pool"):
        train(tiny(shared_data, tmp_path / "run", pool, epochs=2), ASDAMethod, resume=True)


def test_cli_trains_resumes_and_refuses_a_missing_pool(shared_data, pool_dir, tmp_path):
    d = shared_data / "coco"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  arch: simplebaseline_res18\n  kwargs: {stem_width: 8, deconv_channels: [16, 16, 16]}\n"
                   "data: {sigma: 1.0}\n")
    common = ["--data", "coco", "--train-ann", str(d / "test_coco.json"), "--train-images", str(d), "--val-ann",
              str(d / "test_coco.json"), "--val-images", str(d), "--config", str(cfg), "--input-size", "64x64",
              "--batch-size", "4", "--threads", "1", "--device", "cpu"]
    run = tmp_path / "run"
    missing = CliRunner().invoke(cli, ["train", "asda", *common, "--out", str(run)])
    assert missing.exit_code == 2 and "--pool" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = CliRunner().invoke(cli, ["train", "asda", *common, "--pool", str(empty), "--out", str(run)])
    assert bad.exit_code == 1 and "pool.json" in bad.output
    first = CliRunner().invoke(cli, ["train", "asda", *common, "--pool", str(pool_dir), "--gen-width", "4",
                                     "--random", "--epochs", "1", "--out", str(run)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["train", "asda", "--out", str(run), "--resume", "--epochs", "2"])
    assert again.exit_code == 0, again.output
    meta = load_checkpoint(run / "checkpoint.pth").meta
    assert meta.training_method == "asda[random=True]"
    contra = CliRunner().invoke(cli, ["train", "asda", "--out", str(run), "--resume", "--epochs", "3", "--nd", "2"])
    assert contra.exit_code == 2 and "--nd" in contra.output


def test_gen_init_loads_torchvision_style_resnet18_weights(tmp_path):
    src = PartGenerator(T, width=64)
    state = {k: v.clone() for k, v in src.trunk_state().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(state, tmp_path / "r18.pth")
    gen = PartGenerator(T, width=64)
    gen.load_trunk(tmp_path / "r18.pth")
    assert all(torch.equal(gen.trunk_state()[k], v) for k, v in src.trunk_state().items())
    assert gen.head[2].weight.abs().sum() == 0
    del state["layer4.1.conv2.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="layer4.1.conv2.weight"):
        PartGenerator(T, width=64).load_trunk(tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="gen_width 64"):
        ASDAConfig(pool="p", gen_init="x", gen_width=16).validate()


def test_registered():
    assert METHODS["asda"] is ASDAMethod and partial(ASDAMethod, settings=ASDAConfig(pool="p"))
