"""The Human3.6M 16-joint skeleton of PoseAug / VideoPose3D, bones, Rodrigues rotations and the pinhole projection.

Joints (camera coordinates, metres): 0 Hip, 1 RHip, 2 RKnee, 3 RFoot, 4 LHip, 5 LKnee, 6 LFoot, 7 Spine, 8 Thorax,
9 Head, 10 LShoulder, 11 LElbow, 12 LWrist, 13 RShoulder, 14 RElbow, 15 RWrist. The shoulders hang from the thorax.
Bone ``b`` joins joint ``b + 1`` to its parent, so bone 6 is hip -> spine and bone 7 spine -> thorax.

Every function takes and returns torch tensors with any leading batch shape, and is differentiable (the PoseAug
augmentor back-propagates through all of them).
"""

from __future__ import annotations

import torch

JOINTS = ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Head",
          "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14)
NUM_JOINTS = len(JOINTS)
NUM_BONES = NUM_JOINTS - 1
LEFT = (4, 5, 6, 10, 11, 12)
RIGHT = (1, 2, 3, 13, 14, 15)
FLIP = tuple(RIGHT[LEFT.index(j)] if j in LEFT else LEFT[RIGHT.index(j)] if j in RIGHT else j
             for j in range(NUM_JOINTS))
FIXED_BONES = (6, 7)  # hip -> spine, spine -> thorax: PoseAug's BA leaves their directions alone
# PoseAug's BL: 9 length ratios shared by the left and right bone of a pair (bone indices per ratio).
BL_GROUPS = ((0, 3), (1, 4), (2, 5), (6,), (7,), (8,), (9, 12), (10, 13), (11, 14))
BL_MASKED = 4  # the spine -> thorax ratio is held at 0
# The part-aware KCS discriminator's 5 body parts (bone indices).
PARTS = {"right_leg": (0, 1, 2), "left_leg": (3, 4, 5), "torso": (6, 7, 8), "left_arm": (9, 10, 11),
         "right_arm": (12, 13, 14)}
# Joint counts of the files PoseAug / VideoPose3D read: 17-joint sets drop joint 9 (neck/nose) to get these 16.
H36M17_TO_16 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16)
# Human3.6M's 32-joint motion-capture skeleton -> the 16 joints (VideoPose3D keeps 17 of 32, PoseAug drops the nose).
H36M32_TO_16 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 15, 17, 18, 19, 25, 26, 27)


def pose_to_bones(pose: torch.Tensor) -> torch.Tensor:
    """``(..., 16, 3)`` joints -> ``(..., 15, 3)`` bone vectors (child minus parent)."""
    return pose[..., 1:, :] - pose[..., list(PARENTS[1:]), :]


def bones_to_pose(bones: torch.Tensor, root: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse of :func:`pose_to_bones`: ``(..., 15, 3)`` bones (+ ``(..., 3)`` root, default 0) -> ``(..., 16, 3)``."""
    joints = [torch.zeros_like(bones[..., 0, :]) if root is None else root]
    for j in range(1, NUM_JOINTS):  # parents come before their children
        joints.append(joints[PARENTS[j]] + bones[..., j - 1, :])
    return torch.stack(joints, dim=-2)


def bone_lengths(pose: torch.Tensor) -> torch.Tensor:
    """``(..., 16, 3)`` -> ``(..., 15)`` bone lengths."""
    return pose_to_bones(pose).norm(dim=-1)


def skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 3, 3)`` cross-product matrix ``[v]_x``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


def rodrigues(axis_angle: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` of axis-angle vectors ``(..., 3)`` (angle = norm, radians).

    ``R = I + a [r]_x + b [r]_x^2`` with ``a = sin(t)/t`` and ``b = (1 - cos t)/t^2``; below ``eps`` the Taylor
    series replace them, so the gradient at the zero rotation is finite (written here instead of torchgeometry).
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)
    small = theta2 < eps * eps
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta * theta))
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def project(pose: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Project camera-coordinate joints ``(..., J, 3)`` with ``(..., 9)`` intrinsics ``fx, fy, cx, cy, k1, k2, k3,
    p1, p2`` (Brown-Conrady radial + tangential distortion) -> ``(..., J, 2)`` in the intrinsics' image units.

    Depths are clamped at 1e-4 so a point behind the camera cannot divide by zero (such samples are dropped by the
    PoseAug buffer filter anyway).
    """
    f, c, k, p = (intrinsics[..., None, s] for s in (slice(0, 2), slice(2, 4), slice(4, 7), slice(7, 9)))
    xy = pose[..., :2] / pose[..., 2:3].clamp(min=1e-4)
    x, y = xy.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + k[..., 0] * r2 + k[..., 1] * r2 ** 2 + k[..., 2] * r2 ** 3
    p1, p2 = p[..., 0], p[..., 1]
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1) * f + c


def root_relative(pose: torch.Tensor) -> torch.Tensor:
    """Joints minus the hip (joint 0)."""
    return pose - pose[..., :1, :]
