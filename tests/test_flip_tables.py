"""Keypoint flip tables, flip-test fusion and the training flip, checked from the joint *names*, not the tables.

A horizontal mirror turns a person's left joints into what looks like right joints. Every expectation below takes
the mirror partner of a joint from its name (``left_*`` <-> ``right_*``, MPII ``l_*`` <-> ``r_*``), and the tables
themselves are compared with the literals of the official code (HRNet ``lib/dataset/coco.py`` / ``mpii.py``
``flip_pairs``; COCO's ``person_keypoints`` category order; HRNet's MPII joint order), so a wrong pair, a missing
pair or a wrong permutation in the code cannot also make its own expectation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from robustpose.datasets.keypoints import COCO, KEYPOINT_SETS, MPII, flip_permutation, keypoint_set
from robustpose.inference.decode import argmax_refined, fuse_flipped
from robustpose.models.metadata import default_meta
from robustpose.train.data import Augment, Sample, TopDownDataset

COCO_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle")
MPII_NAMES = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
              "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist")
HRNET_COCO_FLIP_PAIRS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]]
HRNET_MPII_FLIP_PAIRS = [[0, 5], [1, 4], [2, 3], [10, 15], [11, 14], [12, 13]]


def mirror_name(name: str) -> str:
    """The joint a mirrored ``name`` looks like: swap the side word / prefix; central joints stay."""
    for a, b in (("left_", "right_"), ("right_", "left_"), ("l_", "r_"), ("r_", "l_")):
        if name.startswith(a):
            return b + name[len(a):]
    return name


def mirror_index(names: tuple[str, ...]) -> list[int]:
    return [names.index(mirror_name(n)) for n in names]


def test_joint_orders_are_the_official_ones():
    assert COCO.joints == COCO_NAMES and MPII.joints == MPII_NAMES
    assert keypoint_set("ochuman") is COCO and keypoint_set("mpii") is MPII
    assert set(KEYPOINT_SETS) == {"coco", "ochuman", "mpii"}
    assert COCO.num_joints == 17 and MPII.num_joints == 16


@pytest.mark.parametrize(("kset", "official"), [(COCO, HRNET_COCO_FLIP_PAIRS), (MPII, HRNET_MPII_FLIP_PAIRS)])
def test_flip_pairs_equal_hrnets_and_pair_left_with_right_by_name(kset, official):
    assert [list(p) for p in kset.flip_pairs] == official
    by_name = sorted(tuple(sorted((i, j))) for i, j in enumerate(mirror_index(kset.joints)) if i < j)
    assert sorted(kset.flip_pairs) == by_name
    # every joint is in at most one pair, and only the central ones are in none
    flat = [i for p in kset.flip_pairs for i in p]
    assert len(flat) == len(set(flat))
    assert {kset.joints[i] for i in range(kset.num_joints) if i not in flat} == {
        n for n in kset.joints if mirror_name(n) == n}


def test_flip_permutation_literal():
    assert flip_permutation(17, COCO.flip_pairs) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert flip_permutation(16, MPII.flip_pairs) == [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]
    assert flip_permutation(3, ()) == [0, 1, 2]
    assert flip_permutation(17, COCO.flip_pairs) == mirror_index(COCO_NAMES)


@pytest.mark.parametrize("name", ["coco", "mpii"])
def test_checkpoint_metadata_carries_the_same_pairs(name):
    kset = keypoint_set(name)
    meta = default_meta("hrnet_w32", kset.num_joints, source="robustpose")
    assert [list(p) for p in meta.flip_pairs] == [list(p) for p in kset.flip_pairs]
    assert tuple(meta.joints) == kset.joints


def _point_maps(xy: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """One unit pixel per joint at integer ``xy`` (J, 2) on a (J, H, W) map."""
    h, w = size
    out = torch.zeros(1, len(xy), h, w)
    for j, (x, y) in enumerate(xy):
        out[0, j, int(y), int(x)] = 1.0
    return out


@pytest.mark.parametrize("kset", [COCO, MPII])
@pytest.mark.parametrize("shift", [False, True])
def test_flip_test_fusion_recovers_each_joint_from_a_mirrored_view(kset, shift):
    # A model that is right on both views: on the mirrored crop, channel n lights up where the joint that *looks
    # like* n sits, i.e. at the mirrored position of joint mirror_name(n). Fusion must give back the plain maps.
    h, w = 16, 12
    rng = np.random.default_rng(3)
    xy = np.stack([rng.integers(2, w - 2, kset.num_joints), rng.integers(0, h, kset.num_joints)], axis=1)
    plain = _point_maps(xy, (h, w))
    partner = mirror_index(kset.joints)
    # HRNet's shift compensates a mirror about x -> w - x (even width) instead of w - 1 - x
    offset = 0 if shift else 1
    seen = np.stack([w - offset - xy[partner, 0], xy[partner, 1]], axis=1)
    flipped = _point_maps(seen, (h, w))
    fused = fuse_flipped(plain, flipped, kset.flip_pairs, shift=shift)
    assert torch.equal(fused, plain)
    coords, _ = argmax_refined(fused.numpy())
    np.testing.assert_array_equal(coords[0], xy)  # border peaks: no quarter offset


def test_flip_test_fusion_with_a_wrong_pair_table_is_caught_by_this_check():
    # the check above is sensitive: swapping one COCO pair for another breaks it
    h, w = 16, 12
    xy = np.stack([np.arange(17) % 8 + 2, np.arange(17) % 16], axis=1)
    plain = _point_maps(xy, (h, w))
    seen = np.stack([w - 1 - xy[mirror_index(COCO_NAMES), 0], xy[mirror_index(COCO_NAMES), 1]], axis=1)
    wrong = ((1, 2), (3, 4), (5, 7), (6, 8), (9, 10), (11, 12), (13, 14), (15, 16))
    assert not torch.equal(fuse_flipped(plain, _point_maps(seen, (h, w)), wrong, shift=False), plain)


def _dataset(tmp_path, kset, joints_xy, augment):
    width, height = 96, 128
    path = tmp_path / "person.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    joints = np.concatenate([joints_xy, np.ones((len(joints_xy), 1))], axis=1)
    # an off-centre person: the box centre is not the image centre, so a flip that forgets the centre shows
    sample = Sample(path, np.array([40.0, 70.0]), np.array([0.36, 0.48]), joints)
    return TopDownDataset([sample], kset, (64, 48), (16, 12), 1.0, augment, seed=0)


@pytest.mark.parametrize("kset", [COCO, MPII])
def test_training_flip_moves_each_target_to_its_mirror_partner(tmp_path, kset):
    rng = np.random.default_rng(11)
    joints_xy = np.stack([rng.uniform(20, 60, kset.num_joints), rng.uniform(40, 100, kset.num_joints)], axis=1)
    plain = _dataset(tmp_path, kset, joints_xy, None)[0]
    ds = _dataset(tmp_path, kset, joints_xy, Augment(scale_factor=0.0, rotation_prob=0.0, flip=True))
    flipped = None
    for epoch in range(30):
        ds.set_epoch(epoch)
        item = ds[0]
        if not torch.equal(item["image"], plain["image"]):
            flipped = item
            break
    assert flipped is not None, "no epoch drew the flip"
    assert plain["weight"].all()
    partner = mirror_index(kset.joints)
    # The flipped crop is the plain crop mirrored about x -> W - x (HRNet flips pixels x -> width - 1 - x), so the
    # target of joint n is the plain target of its partner mirrored the same way, column for column.
    expected = plain["target"][partner].flip(-1)
    torch.testing.assert_close(flipped["target"][..., 1:], expected[..., :-1], atol=1e-4, rtol=0)
    assert torch.equal(flipped["weight"], plain["weight"][partner])
    torch.testing.assert_close(flipped["image"][..., 1:], plain["image"].flip(-1)[..., :-1], atol=1e-3, rtol=0)
