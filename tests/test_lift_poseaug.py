"""PoseAug's parts (trainers.md section 4.8, tests 1-13): augmentor invariants, KCS, losses, schedule, warm-up,
discriminator cadence, replay pool, buffer filter and gradient isolation. Test 14 and exact resume are in
tests/test_lift_train.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.lift import poseaug as pa
from robustpose.lift.skeleton import BL_GROUPS, NUM_BONES, bone_lengths, pose_to_bones, project, root_relative

torch.set_default_dtype(torch.float32)


def _poses(n: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(n, 16, 3, generator=g, dtype=torch.float64) * 0.3
    pose[:, :, 2] += 5.0
    return pose


def _unit(pose: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(pose_to_bones(pose), dim=-1)


def test_ba_keeps_lengths_and_the_fixed_bones() -> None:
    torch.manual_seed(0)
    ba = pa.BoneAngle(32, 8).double().eval()
    pose = root_relative(_poses())
    out, cos = ba(pose)
    torch.testing.assert_close(bone_lengths(out), bone_lengths(pose))
    torch.testing.assert_close(_unit(out)[:, [6, 7]], _unit(pose)[:, [6, 7]])
    assert (_unit(out) - _unit(pose)).abs().max() > 1e-3  # the other bones do turn
    expected = 1 - (_unit(out) * _unit(pose)).sum(-1)
    torch.testing.assert_close(cos, expected)
    assert torch.all(cos[:, [6, 7]].abs() < 1e-12)


def test_bl_keeps_directions_bounds_symmetry_and_the_masked_bone() -> None:
    torch.manual_seed(1)
    bl = pa.BoneLength(32, 8).double().eval()
    with torch.no_grad():
        bl.net[-1].bias.fill_(5.0)  # saturate tanh: ratios at the +-20 % bounds
    pose = root_relative(_poses())
    out, ratio = bl(pose)
    torch.testing.assert_close(_unit(out), _unit(pose))
    change = bone_lengths(out) / bone_lengths(pose) - 1
    assert change.abs().max() <= 0.2 + 1e-9 and change.abs().max() > 0.19
    for group in BL_GROUPS:
        torch.testing.assert_close(change[:, group[0]], change[:, group[-1]])
    torch.testing.assert_close(change[:, 7], torch.zeros_like(change[:, 7]))  # spine -> thorax masked
    assert ratio.shape == (8, 9)


def test_rt_is_rigid_with_positive_depth_translation() -> None:
    torch.manual_seed(2)
    rt = pa.RotationTranslation(32, 8, init_gain=50.0).double().eval()  # large gain: big rotations
    pose = _poses()
    out, r = rt(root_relative(pose), pose)
    torch.testing.assert_close(torch.cdist(out, out), torch.cdist(pose, pose))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(8, dtype=torch.float64))
    assert (r - torch.eye(3, dtype=torch.float64)).abs().max() > 0.5
    torch.manual_seed(5)
    a, _ = rt(root_relative(pose), pose)
    torch.manual_seed(5)
    b, _ = rt(root_relative(pose), pose + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(a, b)  # R acts on the root-relative pose: where the input stood does not matter
    with torch.no_grad():
        rt.trans[-1].bias.copy_(torch.tensor([0.0, 0.0, -3.0]))  # raw t_z negative: squared, still >= 0
    out, _ = rt(root_relative(pose), pose)
    assert (out[:, 0, 2] >= 0).all()


def test_kcs_is_symmetric_and_length_invariant() -> None:
    pose = root_relative(_poses())
    psi = pa.kcs(pose)
    assert psi.shape == (8, NUM_BONES, NUM_BONES)
    torch.testing.assert_close(psi, psi.transpose(1, 2))
    torch.testing.assert_close(torch.diagonal(psi, dim1=1, dim2=2), torch.ones(8, NUM_BONES, dtype=torch.float64))
    scaled = pa.swap_bone_lengths(pose, torch.rand(1, NUM_BONES, dtype=torch.float64) + 0.5,
                                  torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(pa.kcs(scaled), psi)
    mask = torch.zeros(NUM_BONES, dtype=torch.float64)
    mask[[0, 1, 2]] = 1
    masked = pa.kcs(pose, mask)
    assert masked[:, 3:, :].abs().max() == 0 and masked[:, :3, :3].abs().min() > 0


def test_dead_zone_feedback_shape() -> None:
    orig = torch.ones(4)
    aug = torch.tensor([3.0, 4.5, 6.0, 0.0])  # rho - beta with beta 4, std 1: -1, 0.5, 2, -4
    expected = (0 + 0 + 4 + 16) / 4  # |gap| = 1 is inside the zone (strict >)
    assert float(pa.feedback_code(aug, orig, 4.0, 1.0)) == pytest.approx(expected)
    paper = pa.feedback_paper(torch.tensor([2.0]), torch.tensor([0.5]), 4.0)
    assert float(paper) == pytest.approx(abs(1 - np.exp(2.0 - 2.0)))
    assert float(pa.dead_zone(torch.tensor([0.0, 0.2, 0.5]), 0.04, 0.37)) == pytest.approx(
        (0.04 ** 2 + 0 + 0.13 ** 2) / 3)


def test_regulariser_by_hand() -> None:
    cos = torch.full((2, 15), 0.5)  # mean 0.5 > 0.37
    ratio = torch.tensor([[0.15, -0.05, 0, 0, 0, 0, 0, 0, 0], [0.0] * 9])
    expected = 0.13 ** 2 + (0.05 ** 2) / 18
    assert float(pa.regulariser(cos, ratio)) == pytest.approx(expected, rel=1e-5)


def test_hardness_weights_and_groups() -> None:
    pred, target = torch.zeros(1, 16, 3), torch.zeros(1, 16, 3)
    pred[0, 1, 0] = 1.0  # RHip error 1, weight 5, in the first group of 4 joints
    pred[0, 9, 0] = 2.0  # Head error 2, weight 1, in the second group of 5 joints
    pred[0, 7, 0] = 9.0  # Spine: in no group
    assert float(pa.hardness(pred, target)) == pytest.approx((5 / 4 + 2 / 5 + 0) / 3)


def test_beta_schedule() -> None:
    assert [pa.beta_schedule(e, 5) for e in range(5)] == pytest.approx([3.0, 3.5, 4.0, 4.5, 5.0])
    assert pa.beta_schedule(0, 1) == 3.0


def test_buffer_filter_checks_both_bounds() -> None:
    x = torch.zeros(4, 16, 2)
    x[1, 3, 0] = 1.2
    x[2, 5, 1] = -1.2
    x[3, 0, 0] = 1.0
    assert pa.in_frame(x).tolist() == [True, False, False, True]


def test_replay_pool() -> None:
    torch.manual_seed(0)
    pool = pa.ReplayPool(size=4, swap=0.5)
    first = torch.arange(4.0)[:, None]
    torch.testing.assert_close(pool.query(first), first)  # filling: returned as given
    assert pool.count == 4
    later = torch.arange(100.0, 300.0)[:, None]
    out = pool.query(later)
    swapped = out[:, 0] != later[:, 0]
    assert 60 < int(swapped.sum()) < 140  # about half swapped
    assert torch.isin(out[swapped], torch.cat([first, later[:-1]])).all()  # an earlier fake or an original
    kept = torch.cat([first, later])
    assert torch.isin(pool.items, kept).all() and len(torch.unique(pool.items)) == 4
    state = pool.state_dict()
    other = pa.ReplayPool(size=4)
    other.load_state_dict(state)
    torch.testing.assert_close(other.items, pool.items)
    assert pa.ReplayPool(size=0).query(later) is later


def test_bone_swap_keeps_directions_and_root() -> None:
    pose = _poses()
    templates = torch.rand(3, NUM_BONES, dtype=torch.float64) + 0.2
    choice = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out = pa.swap_bone_lengths(pose, templates, choice)
    torch.testing.assert_close(bone_lengths(out), templates[choice])
    torch.testing.assert_close(_unit(out), _unit(pose))
    torch.testing.assert_close(out[:, 0], pose[:, 0])
    sub = np.array(["a"] * 4 + ["b"] * 4)
    tmpl = pa.subject_templates(out.numpy(), sub)
    np.testing.assert_allclose(tmpl[0], templates[choice[:4]].mean(0).numpy())


def test_augmentor_projects_its_rt_output() -> None:
    torch.manual_seed(3)
    g = pa.PoseAugmentor(32, 8).double()
    pose = _poses()
    k = torch.tensor([[2.0, 2.0, 0.0, 0.0, 0, 0, 0, 0, 0]], dtype=torch.float64).expand(8, 9)
    out = g(pose, k)
    torch.testing.assert_close(out["rt2d"], project(out["rt"], k))
    assert out["ba"].shape == out["bl"].shape == (8, 16, 3) and torch.all(out["ba"][:, 0] == 0)


def test_rt_offset_only_pushes_poses_away() -> None:
    torch.manual_seed(4)
    rt = pa.RotationTranslation(32, 8, init_gain=50.0, translation="offset").double().eval()
    pose = _poses()
    out, _ = rt(root_relative(pose), pose, pose[:, 0])
    torch.testing.assert_close(torch.cdist(out, out), torch.cdist(pose, pose))
    assert (out[:, 0, 2] >= pose[:, 0, 2]).all() and (out[:, 0] - pose[:, 0]).abs().max() > 0.1
    fresh = pa.RotationTranslation(32, 8, translation="offset").double().eval()  # starts near the identity
    near, _ = fresh(root_relative(pose), pose, pose[:, 0])
    assert (near[:, 0] - pose[:, 0]).abs().max() < 0.05 and (near - pose).abs().max() < 0.3
    with pytest.raises(ValueError, match="translation must be one of"):
        pa.RotationTranslation(8, 2, translation="relative")
