"""``robustpose lift synth``: procedural Human3.6M-topology skeletons seen by pinhole cameras, with a training split
and deliberately shifted test splits (unseen poses, unseen views, unseen body proportions).

The numbers measured on these data are **synthetic**: they show whether a method generalises across a controlled
shift, and are not comparable with published Human3.6M / 3DHP / 3DPW results.

Generation, per subject: bone lengths from a Human3.6M-like template (metres) times a subject scale and per-bone-pair
factors (left and right equal); per frame: joint angles drawn uniformly within limits (hip flexion/abduction, knee,
spine bend and twist, neck, shoulder flexion/abduction, elbow), a random heading and a root position near the origin;
each frame is seen by the subject's 4 cameras placed around the person at 4-6 m, aimed at the pelvis region, with
Human3.6M-like intrinsics (f ~ 1145 px, 1000 x 1002 images, no distortion). The 2D keypoints are the exact
projections (the ``gt`` source); corrupted 2D inputs come from :mod:`robustpose.lift.corruptions`.

Shifts: ``test-pose`` draws hip/knee/shoulder/spine angles from ranges disjoint from training (crouching, raised
arms, deep bends); ``test-view`` raises the cameras to 3.5-5 m (looking down 30-50 degrees) with a roll of up to 20
degrees; ``test-body`` scales subjects to 0.75-0.85 or 1.15-1.25 of the template with leg and arm proportions
changed by 10-20 %.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustpose.datasets.imageio import write_atomic

from .data import SPLITS_FILE, matrix_to_quat, write_h36m_npz
from .skeleton import NUM_BONES, PARENTS

# Bone template (metres), bone b joins joint b + 1 to its parent; rest directions in the body frame (x: the
# subject's left, y: forward, z: up).
BONE_LENGTHS = (0.13, 0.45, 0.44, 0.13, 0.45, 0.44, 0.23, 0.25, 0.22, 0.15, 0.28, 0.25, 0.15, 0.28, 0.25)
LEGS, ARMS = (1, 2, 4, 5), (10, 11, 13, 14)
# Joint-angle ranges in degrees: (training / in-distribution, shifted test-pose).
ANGLES = {
    "hip_flex": ((-25, 50), (60, 110)), "hip_abd": ((-5, 25), (30, 50)), "knee": ((0, 70), (75, 140)),
    "bend": ((-10, 25), (30, 60)), "side": ((-10, 10), (-25, 25)), "twist": ((-25, 25), (-50, 50)),
    "nod": ((-20, 30), (-20, 30)), "sh_flex": ((-40, 70), (90, 170)), "sh_abd": ((5, 60), (70, 150)),
    "elbow": ((0, 100), (100, 150)),
}
CAMERA_AZIMUTHS = (45.0, 135.0, 225.0, 315.0)
SPLIT_KINDS = {"train": "train", "val": "train", "test": "train", "test-pose": "pose", "test-view": "view",
               "test-body": "body"}


@dataclass(frozen=True)
class LiftSynthConfig:
    """Sizes of ``lift synth``: subjects per split and frames per subject (each seen by 4 cameras)."""

    train_subjects: int = 5
    train_frames: int = 1000
    val_subjects: int = 1
    test_subjects: int = 2
    test_frames: int = 500
    seed: int = 0

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if name != "seed" and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def _rot(axis: int, degrees: np.ndarray) -> np.ndarray:
    """``(N,)`` angles -> ``(N, 3, 3)`` right-handed rotations about axis 0/1/2."""
    a = np.deg2rad(np.asarray(degrees, np.float64))
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.zeros((len(a), 3, 3))
    r[:, axis, axis] = 1
    r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
    return r


def _apply(r: np.ndarray, v: tuple[float, float, float]) -> np.ndarray:
    return r @ np.asarray(v, np.float64)


def subject_lengths(rng: np.random.Generator, kind: str) -> np.ndarray:
    """(15,) bone lengths of one subject; ``kind == 'body'`` draws the shifted proportions."""
    lengths = np.asarray(BONE_LENGTHS) * rng.normal(1.0, 0.04, NUM_BONES)
    lengths[[3, 4, 5, 12, 13, 14]] = lengths[[0, 1, 2, 9, 10, 11]]  # left = right
    if kind == "body":
        scale = rng.uniform(0.75, 0.85) if rng.random() < 0.5 else rng.uniform(1.15, 1.25)
        legs = rng.uniform(0.8, 0.9) if rng.random() < 0.5 else rng.uniform(1.1, 1.2)
        arms = rng.uniform(0.8, 0.9) if rng.random() < 0.5 else rng.uniform(1.1, 1.2)
        lengths[list(LEGS)] *= legs
        lengths[list(ARMS)] *= arms
    else:
        scale = rng.uniform(0.92, 1.08)
    return lengths * scale


def sample_poses(rng: np.random.Generator, lengths: np.ndarray, n: int, kind: str) -> np.ndarray:
    """``(n, 16, 3)`` world poses (metres, z up) of a subject with bone ``lengths``."""
    shifted = kind == "pose"

    def angle(name: str) -> np.ndarray:
        lo, hi = ANGLES[name][1 if shifted else 0]
        return rng.uniform(lo, hi, n)

    down, up = (0.0, 0.0, -1.0), (0.0, 0.0, 1.0)
    dirs = np.zeros((n, NUM_BONES, 3))
    r_spine = _rot(2, angle("twist") / 2) @ _rot(0, -angle("bend")) @ _rot(1, angle("side"))
    r_thorax = r_spine @ _rot(2, angle("twist") / 2) @ _rot(0, -angle("bend") / 3)
    dirs[:, 6], dirs[:, 7] = _apply(r_spine, up), _apply(r_thorax, up)
    dirs[:, 8] = _apply(r_thorax @ _rot(0, -angle("nod")), up)
    for side, (hip, thigh, shin, shoulder, upper, fore) in ((-1, (0, 1, 2, 12, 13, 14)), (1, (3, 4, 5, 9, 10, 11))):
        dirs[:, hip] = (side, 0.0, 0.0)
        r_thigh = _rot(0, angle("hip_flex")) @ _rot(1, -side * angle("hip_abd"))
        dirs[:, thigh] = _apply(r_thigh, down)
        dirs[:, shin] = _apply(r_thigh @ _rot(0, -angle("knee")), down)
        dirs[:, shoulder] = _apply(r_thorax, (side, 0.0, 0.0))
        r_upper = r_thorax @ _rot(0, angle("sh_flex")) @ _rot(1, -side * angle("sh_abd"))
        dirs[:, upper] = _apply(r_upper, down)
        dirs[:, fore] = _apply(r_upper @ _rot(0, angle("elbow")), down)
    bones = dirs * lengths[None, :, None]
    heading = _rot(2, rng.uniform(0, 360, n))
    root = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n), np.full(n, 0.95)], axis=1)
    pose = np.zeros((n, NUM_BONES + 1, 3))
    pose[:, 0] = root
    for j in range(1, NUM_BONES + 1):
        pose[:, j] = pose[:, PARENTS[j]] + np.einsum("nij,nj->ni", heading, bones[:, j - 1])
    return pose


def look_at(centre: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """Camera -> world rotation (columns: image right, image down, viewing direction) of a camera at ``centre``."""
    f = (target - centre) / np.linalg.norm(target - centre)
    r = np.cross(f, (0.0, 0.0, 1.0))
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    a = np.deg2rad(roll_deg)
    r, d = np.cos(a) * r + np.sin(a) * d, -np.sin(a) * r + np.cos(a) * d
    return np.stack([r, d, f], axis=1)


def subject_cameras(rng: np.random.Generator, kind: str) -> list[dict[str, Any]]:
    """The 4 cameras of one subject (the file layout's camera dicts; intrinsics in pixels)."""
    cams = []
    for az in CAMERA_AZIMUTHS:
        a = np.deg2rad(az + rng.uniform(-10, 10))
        dist = rng.uniform(4.0, 6.0)
        height = rng.uniform(3.5, 5.0) if kind == "view" else rng.uniform(1.2, 1.8)
        roll = rng.uniform(-20, 20) if kind == "view" else rng.uniform(-2, 2)
        centre = np.array([dist * np.cos(a), dist * np.sin(a), height])
        target = np.array([0.0, 0.0, 0.9]) + rng.normal(0, 0.1, 3)
        f = rng.normal(1145.0, 5.0)
        cams.append({"orientation": matrix_to_quat(look_at(centre, target, roll)), "translation": centre,
                     "intrinsic": np.array([f, f + rng.normal(0, 1.0), 512 + rng.normal(0, 3), 515 + rng.normal(0, 3),
                                            0, 0, 0, 0, 0], np.float64), "res_w": 1000, "res_h": 1002})
    return cams


def project_pixels(world: np.ndarray, camera: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(camera-coordinate joints, pixel keypoints) of world poses ``(..., 16, 3)`` (no distortion: synthetic)."""
    from .data import world_to_camera

    cam = world_to_camera(world, camera)
    k = camera["intrinsic"]
    uv = cam[..., :2] / cam[..., 2:3] * k[:2] + k[2:4]
    return cam, uv


def split_subjects(config: LiftSynthConfig) -> dict[str, list[str]]:
    """Subject names per split: S1.. (train), V.. (val), T.. (test), P.. / W.. / B.. (shifted pose, view, body)."""
    n = {"train": config.train_subjects, "val": config.val_subjects}
    prefix = {"train": "S", "val": "V", "test": "T", "test-pose": "P", "test-view": "W", "test-body": "B"}
    return {split: [f"{prefix[split]}{i + 1}" for i in range(n.get(split, config.test_subjects))]
            for split in SPLIT_KINDS}


def generate(config: LiftSynthConfig) -> tuple[dict, dict, dict, dict[str, list[str]]]:
    """``(positions_3d, positions_2d, cameras, splits)`` in the layout of :mod:`robustpose.lift.data`.

    Each subject draws from its own generator ``default_rng([seed, split index, subject index])``, so changing one
    split's size leaves the other splits' subjects as they were.
    """
    config.validate()
    splits = split_subjects(config)
    pos3d, pos2d, cams = {}, {}, {}
    for si, (split, subjects) in enumerate(splits.items()):
        kind = SPLIT_KINDS[split]
        frames = config.train_frames if split == "train" else config.test_frames
        for i, subject in enumerate(subjects):
            rng = np.random.default_rng([config.seed, si, i])
            lengths = subject_lengths(rng, kind)
            world = sample_poses(rng, lengths, frames, kind)
            cams[subject] = subject_cameras(rng, kind)
            pos3d[subject] = {"Poses": world.astype(np.float32)}
            pos2d[subject] = {"Poses": [project_pixels(world, c)[1].astype(np.float32) for c in cams[subject]]}
    return pos3d, pos2d, cams, splits


def write_synth(out: str | Path, config: LiftSynthConfig) -> dict[str, Path]:
    """Write ``data_3d_synth.npz``, ``data_2d_synth_gt.npz``, ``splits.json`` and ``synth.json`` (the config)."""
    out = Path(out)
    pos3d, pos2d, cams, splits = generate(config)
    paths = {"3d": out / "data_3d_synth.npz", "2d": out / "data_2d_synth_gt.npz", "splits": out / SPLITS_FILE,
             "config": out / "synth.json"}
    write_h36m_npz(paths["3d"], paths["2d"], pos3d, pos2d, cams)
    write_atomic(paths["splits"], json.dumps(splits, indent=1).encode())
    write_atomic(paths["config"], json.dumps(asdict(config), indent=1).encode())
    return paths
