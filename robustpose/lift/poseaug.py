"""PoseAug (Gong et al., CVPR 2021): a differentiable augmentor of 3D skeletons trained against a lifter's error.

The augmentor G is BA -> BL -> RT (bone angles, bone lengths, global rotation and translation), all MLPs on the
root-relative pose plus Gaussian noise. Two LS-GAN discriminators keep the augmented poses plausible: the part-aware
KCS discriminator :class:`KCSDiscriminator` judges BA's output, :class:`Discriminator2D` the projection of the final
(RT) pose. The feedback loss asks the frozen lifter's error on the augmented pose to be ``beta`` times its error on
the original (the official code's dead-zone ratio loss by default, the paper's Eq. 9 with ``feedback='paper'``).
Facts and paper-vs-code differences: ``docs/lifting.md``. Nothing here copies the official code; torchgeometry's
Rodrigues is :func:`robustpose.lift.skeleton.rodrigues`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .skeleton import (
    BL_GROUPS,
    BL_MASKED,
    FIXED_BONES,
    NUM_BONES,
    NUM_JOINTS,
    PARENTS,
    PARTS,
    bones_to_pose,
    pose_to_bones,
    project,
    rodrigues,
    root_relative,
)

FEEDBACKS = ("code", "paper")
RT_TRANSLATIONS = ("absolute", "offset")
# The feedback loss's per-joint weights and the joint groups it averages within (official code).
JOINT_WEIGHTS = (1, 5, 2, 1, 5, 2, 1, 1, 1, 1, 5, 2, 1, 5, 2, 1)
HARDNESS_GROUPS = ((1, 4, 10, 13), (2, 5, 9, 11, 14), (3, 6, 12, 15))
BONE_TO_RATIO = tuple(next(i for i, g in enumerate(BL_GROUPS) if b in g) for b in range(NUM_BONES))


def _kaiming(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)


def generator_mlp(inputs: int, width: int, outputs: int) -> nn.Sequential:
    """Linear -> BN -> LeakyReLU, two blocks of (Linear-BN-LeakyReLU) x 2, then the output layer."""
    def lbl(i: int, o: int) -> list[nn.Module]:
        return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.LeakyReLU(0.2)]

    net = nn.Sequential(*lbl(inputs, width), *[m for _ in range(2) for m in lbl(width, width) + lbl(width, width)],
                        nn.Linear(width, outputs))
    _kaiming(net)
    return net


class BoneAngle(nn.Module):
    """BA: offsets added to the unit bone vectors (bones 6 and 7 fixed), renormalised, lengths kept."""

    def __init__(self, width: int, noise: int) -> None:
        super().__init__()
        self.noise = noise
        self.net = generator_mlp(NUM_JOINTS * 3 + noise, width, NUM_BONES * 3)
        mask = torch.ones(NUM_BONES, 1)
        mask[list(FIXED_BONES)] = 0
        self.register_buffer("mask", mask)

    def forward(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Root-relative ``(B, 16, 3)`` -> (BA pose ``(B, 16, 3)``, ``1 - cos`` of each bone's change ``(B, 15)``)."""
        z = torch.randn(len(pose), self.noise, device=pose.device)
        delta = self.net(torch.cat([pose.flatten(1), z], 1)).view(-1, NUM_BONES, 3) * self.mask
        bones = pose_to_bones(pose)
        length = bones.norm(dim=-1, keepdim=True)
        unit = bones / length.clamp(min=1e-8)
        new = nn.functional.normalize(unit + delta, dim=-1)
        return bones_to_pose(new * length), 1 - (unit * new).sum(-1)


class BoneLength(nn.Module):
    """BL: 9 symmetric length ratios ``r = 0.2 tanh(.)`` (spine -> thorax held at 0), ``l' = l (1 + r)``."""

    def __init__(self, width: int, noise: int) -> None:
        super().__init__()
        self.noise = noise
        self.net = generator_mlp(NUM_JOINTS * 3 + noise, width, len(BL_GROUPS))
        mask = torch.ones(len(BL_GROUPS))
        mask[BL_MASKED] = 0
        self.register_buffer("mask", mask)

    def forward(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Root-relative ``(B, 16, 3)`` -> (BL pose, the 9 ratios ``(B, 9)``)."""
        z = torch.randn(len(pose), self.noise, device=pose.device)
        ratio = 0.2 * torch.tanh(self.net(torch.cat([pose.flatten(1), z], 1))) * self.mask
        bones = pose_to_bones(pose) * (1 + ratio[:, list(BONE_TO_RATIO)]).unsqueeze(-1)
        return bones_to_pose(bones), ratio


class RotationTranslation(nn.Module):
    """RT: from the *original* pose, an axis-angle ``pi tanh(.)`` (Rodrigues) and a translation whose depth is
    squared (>= 0); output ``R (x - root) + t`` in camera coordinates.

    ``translation``: ``absolute`` (the notes' formula: ``t`` is the new root position) or ``offset`` (``t`` is added to
    the sample's original root, so ``t_z >= 0`` only ever pushes a pose away from the camera; a variant added after
    the ``absolute`` version collapsed depths towards 0 in the CPU benchmark, docs/lifting.md).

    Initialisation (the notes leave it open; see docs/lifting.md): both output layers start with weights scaled by
    ``init_gain``; with ``absolute`` the translation's bias starts at ``init_translation`` (the training data's mean
    root position, metres), with ``offset`` at 0, so the untrained RT is close to "no rotation, a typical distance"
    instead of random rotations that put joints behind the camera.
    """

    def __init__(self, width: int, noise: int, init_translation: tuple[float, float, float] = (0.0, 0.0, 5.0),
                 init_gain: float = 0.01, translation: str = "absolute") -> None:
        super().__init__()
        if translation not in RT_TRANSLATIONS:
            raise ValueError(f"translation must be one of {RT_TRANSLATIONS}, got {translation!r}")
        self.noise, self.translation = noise, translation
        if translation == "offset":
            init_translation = (0.0, 0.0, 0.0)
        self.rot = generator_mlp(NUM_JOINTS * 3 + noise, width, 3)
        self.trans = generator_mlp(NUM_JOINTS * 3 + noise, width, 3)
        x, y, zz = init_translation
        with torch.no_grad():
            self.rot[-1].weight.mul_(init_gain)
            self.trans[-1].weight.mul_(init_gain)
            self.trans[-1].bias.copy_(torch.tensor([x, y, math.sqrt(max(zz, 0.0))]))

    def forward(self, original: torch.Tensor, pose: torch.Tensor, root: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(original root-relative pose, BL pose, original root ``(B, 3)``, needed by ``offset``) ->
        (camera-coordinate RT pose ``(B, 16, 3)``, R ``(B, 3, 3)``)."""
        h = torch.cat([original.flatten(1), torch.randn(len(pose), self.noise, device=pose.device)], 1)
        r = rodrigues(math.pi * torch.tanh(self.rot(h)))
        t = self.trans(h)
        t = torch.cat([t[:, :2], t[:, 2:] ** 2], 1)
        if self.translation == "offset":
            t = t + root
        return root_relative(pose) @ r.transpose(1, 2) + t[:, None], r


class PoseAugmentor(nn.Module):
    """G = BA -> BL -> RT; :meth:`forward` also projects the RT pose with each sample's intrinsics."""

    def __init__(self, width: int = 256, noise: int = 48,
                 init_translation: tuple[float, float, float] = (0.0, 0.0, 5.0), translation: str = "absolute") -> None:
        super().__init__()
        self.ba, self.bl = BoneAngle(width, noise), BoneLength(width, noise)
        self.rt = RotationTranslation(width, noise, init_translation, translation=translation)

    def forward(self, pose: torch.Tensor, intrinsics: torch.Tensor) -> dict[str, torch.Tensor]:
        """Camera-coordinate ``(B, 16, 3)`` poses and ``(B, 9)`` normalised intrinsics -> ``ba``, ``bl``
        (root-relative), ``rt`` (camera coordinates), ``rt2d`` (normalised 2D), ``cos`` (``1 - cos`` per bone),
        ``ratio`` (BL's 9 ratios)."""
        original = root_relative(pose)
        ba, cos = self.ba(original)
        bl, ratio = self.bl(ba)
        rt, _ = self.rt(original, bl, pose[:, 0])
        return {"ba": ba, "bl": bl, "rt": rt, "rt2d": project(rt, intrinsics), "cos": cos, "ratio": ratio}


def kcs(pose: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Kinematic chain space ``Psi = B B^T`` ``(B, 15, 15)`` of the unit bone vectors (bone lengths do not enter),
    bones outside ``mask`` ``(15,)`` zeroed."""
    unit = nn.functional.normalize(pose_to_bones(pose), dim=-1)
    if mask is not None:
        unit = unit * mask[:, None]
    return unit @ unit.transpose(-1, -2)


class KCSDiscriminator(nn.Module):
    """Part-aware KCS discriminator: one path per body part (:data:`PARTS`), each an MLP with a skip on the part's
    flattened ``Psi``; returns ``(B, 5)`` scores."""

    def __init__(self, width: int = 100) -> None:
        super().__init__()
        masks = torch.zeros(len(PARTS), NUM_BONES)
        for i, bones in enumerate(PARTS.values()):
            masks[i, list(bones)] = 1
        self.register_buffer("masks", masks)
        self.inp = nn.ModuleList(nn.Linear(NUM_BONES ** 2, width) for _ in PARTS)
        self.mid = nn.ModuleList(nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                                               nn.Linear(width, width)) for _ in PARTS)
        self.out = nn.ModuleList(nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(width, 1)) for _ in PARTS)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        scores = []
        for mask, inp, mid, out in zip(self.masks, self.inp, self.mid, self.out):
            h = inp(kcs(pose, mask).flatten(1))
            scores.append(out(h + mid(h)))
        return torch.cat(scores, 1)


class Discriminator2D(nn.Module):
    """MLP on normalised 2D keypoints: 32 -> w -> w -> w (+ skip) -> w -> w -> 1, LeakyReLU."""

    def __init__(self, width: int = 100) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.2)
        self.head = nn.Sequential(nn.Linear(NUM_JOINTS * 2, width), act)
        self.mid = nn.Sequential(nn.Linear(width, width), act, nn.Linear(width, width), act)
        self.tail = nn.Sequential(nn.Linear(width, width), act, nn.Linear(width, width), act, nn.Linear(width, 1))

    def forward(self, pose2d: torch.Tensor) -> torch.Tensor:
        h = self.head(pose2d.flatten(1))
        return self.tail(h + self.mid(h))


def lsgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """LS-GAN discriminator loss, real -> 1, fake -> 0: ``0.5 (mean (real - 1)^2 + mean fake^2)``."""
    return 0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean())


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """LS-GAN generator loss: ``mean (fake - 1)^2``."""
    return ((fake - 1) ** 2).mean()


def hardness(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)`` the feedback loss's per-sample lifter error: joint errors times :data:`JOINT_WEIGHTS`, averaged
    within each of :data:`HARDNESS_GROUPS`, then over the groups."""
    err = (pred - target).norm(dim=-1) * pred.new_tensor(JOINT_WEIGHTS)
    return torch.stack([err[:, list(g)].mean(1) for g in HARDNESS_GROUPS], 1).mean(1)


def feedback_code(aug: torch.Tensor, orig: torch.Tensor, beta: float, std: float) -> torch.Tensor:
    """The official code's dead-zone ratio loss: ``mean (rho - beta)^2 [|rho - beta| > std]``, ``rho = aug/orig``."""
    gap = aug / orig.clamp(min=1e-8) - beta
    return (gap ** 2 * (gap.abs() > std)).mean()


def feedback_paper(aug: torch.Tensor, orig: torch.Tensor, beta: float, std: float = 0.0) -> torch.Tensor:
    """The paper's Eq. 9 as the notes read it: ``mean |1 - exp(aug - beta orig)|`` (``std`` unused)."""
    return (1 - torch.exp(aug - beta * orig)).abs().mean()


FEEDBACK: dict[str, Callable[..., torch.Tensor]] = {"code": feedback_code, "paper": feedback_paper}


def dead_zone(value: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``mean`` of the squared distance of ``value`` outside ``[low, high]`` (0 inside)."""
    return (torch.relu(low - value) ** 2 + torch.relu(value - high) ** 2).mean()


def regulariser(cos: torch.Tensor, ratio: torch.Tensor, band: tuple[float, float] = (0.04, 0.37),
                ratio_free: float = 0.1) -> torch.Tensor:
    """BA's dead zone on the per-sample mean ``1 - cos`` plus the rectified L2 on ``|BL ratio| > ratio_free``."""
    return dead_zone(cos.mean(1), *band) + (torch.relu(ratio.abs() - ratio_free) ** 2).mean()


def beta_schedule(epoch: int, epochs: int, start: float = 3.0, end: float = 5.0) -> float:
    """BA's feedback target, linear from ``start`` at epoch 0 to ``end`` at the last epoch."""
    return start + (end - start) * epoch / max(epochs - 1, 1)


def in_frame(pose2d: torch.Tensor) -> torch.Tensor:
    """``(B,)`` True where every normalised coordinate is within [-1, 1] (both bounds; the official filter checks
    only the upper one)."""
    return (pose2d.abs() <= 1).flatten(1).all(1)


class ReplayPool:
    """Pool of past fakes for the discriminators (Shrivastava et al.): while not full every fake is stored and
    returned; then each fake, with probability ``swap``, replaces a random stored one, which is returned instead.
    Draws from torch's global generator (saved and restored with a run)."""

    def __init__(self, size: int = 4096, swap: float = 0.5) -> None:
        self.size, self.swap = size, swap
        self.items: torch.Tensor | None = None
        self.count = 0

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        if self.items is None:
            self.items = fakes.new_zeros(self.size, *fakes.shape[1:])
        out = fakes.clone()
        for i in range(len(fakes)):
            if self.count < self.size:
                self.items[self.count] = fakes[i]
                self.count += 1
            elif torch.rand(()) < self.swap:
                j = int(torch.randint(self.size, ()))
                out[i] = self.items[j].clone()
                self.items[j] = fakes[i]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"items": None if self.items is None else self.items[:self.count].clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.items = None
        if state["items"] is not None:
            self.items = state["items"].new_zeros(self.size, *state["items"].shape[1:])
            self.items[:self.count] = state["items"]


def subject_templates(pose3d: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """``(S, 15)`` mean bone lengths of each training subject (the per-epoch bone-length swap's templates)."""
    bones = np.linalg.norm(pose3d[:, 1:] - pose3d[:, list(PARENTS[1:])], axis=-1)
    return np.stack([bones[subject == s].mean(0) for s in sorted(set(subject))])


def swap_bone_lengths(pose: torch.Tensor, templates: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """Give each camera-coordinate pose the bone lengths ``templates[choice]`` (directions and root kept)."""
    unit = nn.functional.normalize(pose_to_bones(pose), dim=-1)
    return bones_to_pose(unit * templates[choice].unsqueeze(-1), pose[:, 0])


@dataclass
class PoseAugSettings:
    """PoseAug's settings (``robustpose lift train poseaug`` flags; the official values unless noted)."""

    init: str = ""  # lift checkpoint the lifter starts from (a pre-trained standard lifter)
    feedback: str = "code"  # code: dead-zone ratio loss; paper: Eq. 9
    g_width: int = 256
    noise: int = 48
    d_width: int = 100
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    warmup: int = 2  # epochs without feedback and without lifter training (official: epoch > 2, 1-based)
    d_every: int = 2
    pool_size: int = 4096
    bone_swap: bool = True
    rt_translation: str = "absolute"  # offset: t added to the original root (docs/lifting.md)

    def validate(self) -> None:
        if self.rt_translation not in RT_TRANSLATIONS:
            raise ValueError(f"rt_translation must be one of {RT_TRANSLATIONS}, got {self.rt_translation!r}")
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"feedback must be one of {FEEDBACKS}, got {self.feedback!r}")
        for name in ("g_width", "noise", "d_width", "d_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.warmup < 0 or self.pool_size < 0:
            raise ValueError("warmup and pool_size must be >= 0")


# Loss weights and feedback targets of the official code (not settings: the notes list them as facts).
W_ADV2D, W_ADV3D, W_REG = 1.0, 6.0, 3.0
BA_BETA, BA_STD, BA_WEIGHT = (3.0, 5.0), 2.0, 0.1
RT_BETA, RT_STD, RT_WEIGHT = 17.0, 15.0, 0.01
CLIP_NORM = 1.0
