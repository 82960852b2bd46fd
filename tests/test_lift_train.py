"""The lifting loop: exact resume, PoseAug's warm-up gating, discriminator cadence and gradient isolation,
selection on the val split, checkpoint metadata, and the 2-epoch CLI smoke run (trainers.md 4.8, tests 9, 10, 13,
14)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.lift.engine import LiftConfig, load_lift_checkpoint, tensors, train_lift
from robustpose.lift.methods import LIFT_METHODS, PoseAugLift
from robustpose.lift.models import create_lifter
from robustpose.lift.synth import LiftSynthConfig, write_synth
from robustpose.models.checkpoint import torch_load

TINY = {"width": 32}
PA_TINY = {"g_width": 16, "noise": 4, "d_width": 16, "pool_size": 64}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("liftdata")
    write_synth(out, LiftSynthConfig(train_subjects=2, train_frames=40, test_subjects=1, test_frames=20))
    return out


@pytest.fixture(scope="module")
def init(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("init") / "std"
    torch.set_num_threads(1)
    train_lift(LiftConfig(data=str(data), arch_kwargs=TINY, epochs=2, batch_size=64, out=str(out), device="cpu"),
               LIFT_METHODS)
    return out / "best.pth"


def _config(data: Path, out: Path, method: str, init: Path | None, epochs: int, **settings) -> LiftConfig:
    ms = {**(PA_TINY if method == "poseaug" else {}), **settings}
    if init is not None:
        ms["init"] = str(init)
    return LiftConfig(data=str(data), arch_kwargs=TINY, epochs=epochs, batch_size=64, lr=1e-3, out=str(out),
                      device="cpu", method=method, method_settings=ms)


@pytest.mark.parametrize("method", ["standard", "poseaug"])
def test_exact_resume(method, data, init, tmp_path, one_torch_thread) -> None:
    kw = {"warmup": 1} if method == "poseaug" else {}
    straight = train_lift(_config(data, tmp_path / "a", method, init, 3, **kw), LIFT_METHODS)
    train_lift(_config(data, tmp_path / "b", method, init, 1, **kw), LIFT_METHODS)
    resumed = train_lift(_config(data, tmp_path / "b", method, init, 3, **kw), LIFT_METHODS, resume=True)
    a = torch_load(straight.checkpoint)
    b = torch_load(resumed.checkpoint)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    if method == "poseaug":
        for k, v in a["train_state"]["method"]["G"].items():
            assert torch.equal(v, b["train_state"]["method"]["G"][k]), k
    assert [r["val_score"] for r in straight.log] == [r["val_score"] for r in resumed.log]


def test_resume_with_other_settings_is_refused(data, init, tmp_path, one_torch_thread) -> None:
    train_lift(_config(data, tmp_path / "r", "poseaug", init, 1), LIFT_METHODS)
    with pytest.raises(ValueError, match="other poseaug settings: .*feedback"):
        train_lift(_config(data, tmp_path / "r", "poseaug", init, 2, feedback="paper"), LIFT_METHODS, resume=True)
    with pytest.raises(FileExistsError):
        train_lift(_config(data, tmp_path / "r", "poseaug", init, 2), LIFT_METHODS)


def test_selection_on_val_and_metadata(data, init, tmp_path, one_torch_thread) -> None:
    result = train_lift(_config(data, tmp_path / "s", "standard", init, 3), LIFT_METHODS)
    best = load_lift_checkpoint(result.best)
    scores = [r["val_score"] for r in result.log]
    init_score = load_lift_checkpoint(init)["val"]["val_score"]
    if min(scores) < init_score:
        assert best["epoch"] == scores.index(min(scores)) and best["val"]["val_score"] == min(scores)
    else:  # the starting weights stay the best candidate
        assert best["epoch"] == -1
    assert best["val"]["val_metric"] == "MPJPE" and result.best_score == min([init_score, *scores])
    info = best["meta"]["training_info"]
    assert info["method"] == "standard" and info["seed"] == 0 and len(info["files"]["init"]) == 64
    assert best["meta"]["training_method"] == "standard"


def _method(data: Path, init: Path, **settings) -> PoseAugLift:
    config = _config(data, Path("unused"), "poseaug", init, 4, **settings)
    lifter = create_lifter("martinez", **TINY)
    return PoseAugLift(lifter, config, torch.device("cpu"), config.lift_data().load("train"))


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_warmup_gates_feedback_and_lifter_training(data, init, one_torch_thread) -> None:
    torch.manual_seed(0)
    m = _method(data, init, warmup=2)
    lifter_before = _params(m.model)
    seen: list[dict] = []
    m.start_epoch(0)
    m.train_epoch(0, lambda step, values: seen.append(values))
    assert _same(lifter_before, _params(m.model))  # no lifter step in the warm-up
    assert seen and not any("fb_ba" in v or "loss" in v or "loss_fake" in v for v in seen)
    seen.clear()
    m.start_epoch(2)
    m.train_epoch(2, lambda step, values: seen.append(values))
    assert not _same(lifter_before, _params(m.model))
    assert any("fb_ba" in v for v in seen) and any("loss_fake" in v for v in seen) and any("loss" in v for v in seen)


def test_discriminators_every_second_generator_step(data, init, one_torch_thread) -> None:
    torch.manual_seed(0)
    m = _method(data, init, d_every=2, warmup=9)
    seen: list[dict] = []
    m.train_epoch(0, lambda step, values: seen.append(values))
    g_steps = len(seen)
    assert g_steps >= 4 and m.counter["g_steps"] == g_steps
    assert m.counter["d_steps"] == g_steps // 2
    assert [("loss_d" in v) for v in seen] == [(i + 1) % 2 == 0 for i in range(g_steps)]


def test_gradient_isolation(data, init, one_torch_thread) -> None:
    """G's loss moves neither the lifter nor the discriminators; D's step does not move G; the lifter's fake pass
    reads detached buffers."""
    torch.manual_seed(0)
    m = _method(data, init)
    d = tensors(m.config.lift_data().load("train"), torch.device("cpu"))
    idx = torch.arange(64)
    aug = m.G(d["pose3d"][idx], d["intrinsics"][idx])
    losses = m.generator_loss(aug, d["pose3d"][idx], d["pose2d"][idx], d["intrinsics"][idx], epoch=5)
    assert "fb_ba" in losses and "fb_rt" in losses
    with torch.no_grad():  # D3d judges BA's output, D2d the projected RT pose (LS-GAN, real = 1)
        torch.testing.assert_close(losses["adv3d"], ((m.D3d(aug["ba"]) - 1) ** 2).mean())
        torch.testing.assert_close(losses["adv2d"], ((m.D2d(aug["rt2d"]) - 1) ** 2).mean())
    m.opt_g.zero_grad()
    losses["loss_g"].backward()
    assert all(p.grad is None for p in m.model.parameters())
    assert all(p.requires_grad for p in m.model.parameters())  # unfrozen again
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.G.rt.parameters())
    assert any(p.grad is not None for p in m.D2d.parameters())  # adversarial gradients pass through D ...
    d_before = _params(m.D3d) + _params(m.D2d)
    m.opt_g.step()
    assert _same(d_before, _params(m.D3d) + _params(m.D2d))  # ... but only G's optimiser steps
    g_before = _params(m.G)
    m.G.zero_grad()
    m.discriminator_step(aug, idx)
    assert all(p.grad is None for p in m.G.parameters()) and _same(g_before, _params(m.G))
    fake2d, fake3d = m.gan_pass(5, lambda step, values: None)
    assert not fake2d.requires_grad and not fake3d.requires_grad


def test_cli_two_epoch_smoke_run(data, init, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["lift", "train", "poseaug", "--data", str(data), "--init", str(init), "--width", "32", "--epochs", "2",
            "--batch-size", "64", "--g-width", "16", "--noise", "4", "--d-width", "16", "--warmup", "1",
            "--threads", "1", "--device", "cpu", "--out", str(out)]
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "epoch 1: val MPJPE" in done.output and (out / "best.pth").is_file()
    meta = load_lift_checkpoint(out / "best.pth")["meta"]
    assert meta["training_method"] == "poseaug[g_width=16,noise=4,d_width=16,warmup=1]"
    bad = runner.invoke(cli, [*args[:-1], str(tmp_path / "other"), "--width", "48"])
    assert bad.exit_code == 1 and "--init" in bad.output and "pass the same --arch and --width" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    again = runner.invoke(cli, ["lift", "train", "poseaug", "--out", str(out), "--resume", "--feedback", "paper"])
    assert again.exit_code == 2 and "--feedback 'paper' (the run: 'code')" in again.output
    ev = runner.invoke(cli, ["lift", "eval", "--ckpt", str(out / "best.pth"), "--data", str(data), "--out",
                             str(tmp_path / "ev"), "-q", "--device", "cpu"])
    assert ev.exit_code == 0, ev.output
    assert "test-view" in ev.output and "mPC" in ev.output and (tmp_path / "ev" / "summary.json").is_file()


def test_lifters_registry_and_shapes() -> None:
    from robustpose.lift.models import LIFTER_NAMES, LIFTERS

    assert tuple(LIFTERS) == LIFTER_NAMES
    for name in LIFTER_NAMES:
        out = create_lifter(name, width=16).eval()(torch.zeros(3, 16, 2))
        assert out.shape == (3, 16, 3)
    with pytest.raises(ValueError, match="unknown lifter"):
        create_lifter("stgcn")


def test_semgcn_graph_convolution_by_hand() -> None:
    """One SemGraphConv on a 3-joint chain, recomputed here: softmax over each joint's neighbours of the edge
    weights, own features through W0, the neighbours' through W1."""
    from robustpose.lift.models import SemGraphConv, skeleton_adjacency

    adj = skeleton_adjacency((-1, 0, 1))
    assert adj.tolist() == [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    conv = SemGraphConv(2, 4, adj).double()
    with torch.no_grad():
        conv.edge_logit.copy_(torch.arange(7, dtype=torch.float64))
        conv.bias.copy_(torch.arange(4, dtype=torch.float64))
    x = torch.randn(5, 3, 2, dtype=torch.float64)
    logits = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3, (1, 2): 4, (2, 1): 5, (2, 2): 6}  # row-major edge order
    expected = torch.zeros(5, 3, 4, dtype=torch.float64)
    for i in range(3):
        nbrs = [j for j in range(3) if (i, j) in logits]
        w = torch.softmax(torch.tensor([float(logits[i, j]) for j in nbrs], dtype=torch.float64), 0)
        for wj, j in zip(w, nbrs):
            expected[:, i] += wj * (x[:, j] @ conv.weight[0 if j == i else 1])
    torch.testing.assert_close(conv(x), expected + conv.bias)


def test_epoch_inputs_take_training_subjects_bone_lengths(data, init, one_torch_thread) -> None:
    from robustpose.lift.skeleton import bone_lengths, project

    torch.manual_seed(0)
    m = _method(data, init)
    pose3d, pose2d = m.epoch_inputs()
    lengths = bone_lengths(pose3d)
    nearest = torch.cdist(lengths.double(), m.templates.double()).min(1).values
    assert nearest.max() < 1e-5 and len(m.templates) == 2
    assert (bone_lengths(m.data["pose3d"]) - lengths).abs().max() > 1e-3
    torch.testing.assert_close(pose2d, project(pose3d, m.data["intrinsics"]))
    torch.testing.assert_close(pose3d[:, 0], m.data["pose3d"][:, 0])
    off = _method(data, init, bone_swap=False)
    assert torch.equal(off.epoch_inputs()[0], off.data["pose3d"])
