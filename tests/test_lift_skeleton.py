"""Skeleton geometry of the lifting track: bones, Rodrigues (against scipy), the projection (against the pinhole
and Brown-Conrady formulas written out here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from robustpose.lift.skeleton import (
    FLIP,
    JOINTS,
    LEFT,
    PARENTS,
    RIGHT,
    bone_lengths,
    bones_to_pose,
    pose_to_bones,
    project,
    rodrigues,
)

torch.set_default_dtype(torch.float32)


def test_topology_matches_the_notes() -> None:
    assert JOINTS[9] == "Head" and JOINTS[10] == "LShoulder" and PARENTS[10] == PARENTS[13] == 8
    assert PARENTS[7] == 0 and PARENTS[8] == 7 and PARENTS[9] == 8
    assert all(JOINTS[l][0] == "L" and JOINTS[r][0] == "R" and JOINTS[l][1:] == JOINTS[r][1:]
               for l, r in zip(LEFT, RIGHT))
    assert [FLIP[FLIP[j]] for j in range(16)] == list(range(16))


def test_bone_pose_round_trip() -> None:
    pose = torch.randn(7, 16, 3, dtype=torch.float64)
    bones = pose_to_bones(pose)
    assert torch.allclose(bones[:, 9], pose[:, 10] - pose[:, 8])  # bone b = joint b+1 minus its parent
    assert torch.allclose(bones_to_pose(bones, pose[:, 0]), pose)
    assert torch.allclose(bone_lengths(pose)[:, 0], (pose[:, 1] - pose[:, 0]).norm(dim=-1))


def test_rodrigues_matches_scipy_and_is_a_rotation() -> None:
    rng = np.random.default_rng(0)
    rotvecs = np.concatenate([rng.normal(size=(20, 3)) * 2, rng.normal(size=(5, 3)) * 1e-6, np.zeros((1, 3))])
    r = rodrigues(torch.as_tensor(rotvecs)).numpy()
    np.testing.assert_allclose(r, Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-10)


def test_rodrigues_gradient_is_finite_at_zero() -> None:
    v = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    rodrigues(v).sum().backward()
    assert torch.isfinite(v.grad).all()
    assert torch.autograd.gradcheck(rodrigues, (torch.randn(3, 3, dtype=torch.float64, requires_grad=True),))


def test_projection_is_the_pinhole_formula_and_differentiable() -> None:
    pose = torch.tensor([[[0.3, -0.2, 4.0], [-1.0, 0.5, 5.0]]], dtype=torch.float64)
    k = torch.tensor([[1100.0, 1120.0, 500.0, 510.0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    uv = project(pose, k)
    expected = [[1100 * 0.3 / 4 + 500, 1120 * -0.2 / 4 + 510], [1100 * -1 / 5 + 500, 1120 * 0.5 / 5 + 510]]
    np.testing.assert_allclose(uv[0].numpy(), expected)
    assert torch.autograd.gradcheck(lambda p: project(p, k), (pose.clone().requires_grad_(True),))


def test_projection_distortion_is_brown_conrady() -> None:
    x, y = 0.3 / 4, -0.2 / 4
    k1, k2, k3, p1, p2 = -0.2, 0.1, 0.01, 0.001, -0.002
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    k = torch.tensor([[1000.0, 1000.0, 500.0, 500.0, k1, k2, k3, p1, p2]], dtype=torch.float64)
    uv = project(torch.tensor([[[0.3, -0.2, 4.0]]], dtype=torch.float64), k)
    np.testing.assert_allclose(uv[0, 0].numpy(), [1000 * xd + 500, 1000 * yd + 500])


@pytest.mark.parametrize("shape", [(16, 3), (2, 3, 16, 3)])
def test_batch_shapes(shape) -> None:
    pose = torch.randn(*shape)
    assert bones_to_pose(pose_to_bones(pose)).shape == shape
