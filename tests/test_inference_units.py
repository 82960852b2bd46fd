"""Pipeline pieces against hand-computed HRNet values: boxes, MPII centres, affine maps, flip fusion, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.inference import (
    affine_matrix,
    argmax_refined,
    box_to_center_scale,
    dark_refined,
    decode_heatmaps,
    detection_people,
    fuse_flipped,
    heatmap_to_image,
    mpii_center_scale,
    sanitize_box,
)
from robustpose.inference.topdown import InferenceConfig, normalise
from robustpose.models import CheckpointMeta, default_meta
from robustpose.train.data import gaussian_targets


def test_box_aspect_fix_and_padding() -> None:
    centers, scales = box_to_center_scale(np.array([[0, 0, 150, 100], [10, 20, 30, 80]]), 0.75)
    np.testing.assert_allclose(centers, [[75, 50], [25, 60]])
    # wide box: height grows to 150 / 0.75 = 200; tall box: width grows to 80 * 0.75 = 60; then x1.25, /200
    np.testing.assert_allclose(scales, [[150 * 1.25 / 200, 200 * 1.25 / 200], [60 * 1.25 / 200, 80 * 1.25 / 200]])


def test_sanitize_box_like_hrnet() -> None:
    np.testing.assert_allclose(sanitize_box([-5, 10, 30, 20], 100, 50), [0, 10, 29, 19])
    np.testing.assert_allclose(sanitize_box([90, 40, 30, 30], 100, 50), [90, 40, 9, 9])
    assert sanitize_box([10, 10, 0, 5], 100, 50) is None


def test_mpii_center_scale() -> None:
    c, s = mpii_center_scale([100.0, 50.0], 2.0)
    np.testing.assert_allclose(c, [99, 79])  # y + 15 * 2, then 1-based -> 0-based
    np.testing.assert_allclose(s, [2.5, 2.5])


def test_affine_is_isotropic_and_inverts() -> None:
    center, scale = np.array([320.0, 200.0]), np.array([1.2, 1.6])
    m = affine_matrix(center, scale, (192, 256))
    s = 192 / (1.2 * 200)
    np.testing.assert_allclose(m, [[s, 0, 96 - s * 320], [0, s, 128 - s * 200]], atol=1e-4)
    inv = affine_matrix(center, scale, (192, 256), inverse=True)
    pts = np.array([[0.0, 0.0], [191.0, 255.0]])
    back = (pts @ inv[:, :2].T + inv[:, 2]) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(back, pts, atol=1e-3)
    # heatmap -> image equals the inverse crop map scaled by the stride (64x48 heatmaps of a 256x192 input)
    hm = np.array([[[10.0, 20.0], [47.0, 63.0]]])
    img = heatmap_to_image(hm, center[None], scale[None], (64, 48))
    np.testing.assert_allclose(img[0], (hm[0] * 4) @ inv[:, :2].T + inv[:, 2], atol=1e-3)


def test_fuse_flipped_swaps_pairs_mirrors_and_shifts() -> None:
    h = torch.zeros(1, 3, 4, 8)
    flipped = torch.zeros(1, 3, 4, 8)
    flipped[0, 1, 2, 8 - 1 - 3] = 1.0  # joint 1 (paired with 2) seen at mirrored column 4 in the flipped crop
    fused = fuse_flipped(h, flipped, [(1, 2)], shift=True)
    expected = torch.zeros(1, 3, 4, 8)
    expected[0, 2, 2, 4] = 0.5  # un-mirrored to column 3, moved to channel 2, shifted one column right
    assert torch.equal(fused, expected)
    unshifted = fuse_flipped(h, flipped, [(1, 2)], shift=False)
    assert unshifted[0, 2, 2, 3] == 0.5 and unshifted.sum() == 0.5


def test_fuse_flipped_keeps_column_zero() -> None:
    flipped = torch.zeros(1, 1, 2, 4)
    flipped[0, 0, :, 3] = 1.0  # mirrored to column 0
    fused = fuse_flipped(torch.zeros(1, 1, 2, 4), flipped, [], shift=True)
    assert fused[0, 0, :, 0].tolist() == [0.5, 0.5] and fused[0, 0, :, 1].tolist() == [0.5, 0.5]


def test_argmax_quarter_offset_rule() -> None:
    hm = np.zeros((1, 4, 8, 8), np.float32)
    hm[0, 0, 3, 5], hm[0, 0, 3, 6], hm[0, 0, 2, 5] = 1.0, 0.5, 0.2  # right and upper neighbours larger
    hm[0, 1, 3, 1], hm[0, 1, 3, 2] = 1.0, 0.5  # px = 1: not 1 < px, no offset in x nor y
    hm[0, 2, 7, 4], hm[0, 2, 7, 5] = 1.0, 0.5  # py = H - 1: no offset at all (both conditions needed)
    hm[0, 3] = -1.0  # no positive peak
    coords, maxvals = argmax_refined(hm)
    np.testing.assert_allclose(coords[0], [[5.25, 2.75], [1, 3], [4, 7], [0, 0]])
    np.testing.assert_allclose(maxvals[0], [1, 1, 1, -1])


def test_dark_recovers_subpixel_gaussian_peaks_that_the_quarter_rule_cannot() -> None:
    rng = np.random.default_rng(0)
    # away from the borders, where the zero-padded blur (as in DARK and MMPose) truncates the Gaussian
    joints = np.c_[rng.uniform(5, 19, 40), rng.uniform(5, 27, 40), np.ones(40)]
    for sigma in (1.0, 1.5, 2.0):
        target, _ = gaussian_targets(joints, (32, 24), sigma)
        dark, dark_vals = dark_refined(target[None], sigma)
        quarter, quarter_vals = argmax_refined(target[None])
        assert np.abs(dark[0] - joints[:, :2]).max() < 0.01
        assert np.abs(quarter[0] - joints[:, :2]).max() > 0.2  # the quarter rule is off by up to a quarter pixel
        np.testing.assert_array_equal(dark_vals, quarter_vals)  # same scores: the unmodulated peaks
    # a wider blur than the targets' still lands near the peak (the modulation keeps it a maximum)
    assert np.abs(dark_refined(target[None], 1.0)[0][0] - joints[:, :2]).max() < 0.3


def test_dark_keeps_integer_peaks_where_the_taylor_step_is_undefined() -> None:
    hm = np.zeros((1, 4, 10, 10), np.float32)
    hm[0, 0, 5, 1], hm[0, 0, 5, 2] = 1.0, 0.8  # x = 1: too close to the border for the +-2 differences
    hm[0, 1, 8, 4] = 1.0  # y = H - 2
    hm[0, 2] = -1.0  # no positive peak: (0, 0)
    hm[0, 3, :, 5] = 1.0  # a ridge: flat along y, the Taylor step along it would be huge
    hm[0, 3, 4, 5] = 1.0 + 1e-6
    coords, _ = dark_refined(hm, 1.0)
    np.testing.assert_allclose(coords[0, :3], [[1, 5], [4, 8], [0, 0]])
    assert coords[0, 3, 0] == pytest.approx(5) and 3 <= coords[0, 3, 1] <= 5  # clipped to a pixel


def test_decoder_choice_from_checkpoint_or_config() -> None:
    hm = np.zeros((1, 1, 16, 16), np.float32)
    hm[0, 0] = gaussian_targets(np.array([[7.3, 8.6, 1.0]]), (16, 16), 2.0)[0][0]
    np.testing.assert_allclose(decode_heatmaps(hm, "dark", 2.0)[0][0, 0], [7.3, 8.6], atol=0.02)
    np.testing.assert_allclose(decode_heatmaps(hm, "quarter")[0][0, 0], [7.25, 8.75])
    with pytest.raises(ValueError, match="dark"):
        decode_heatmaps(hm, "udp")
    meta = default_meta("hrnet_w32", 17, source="hrnet")
    assert meta.decode == "quarter" and InferenceConfig().decoder(meta) == "quarter"
    dark_meta = CheckpointMeta.from_dict({**meta.to_dict(), "decode": "dark", "target_sigma": 1.5})
    assert InferenceConfig().decoder(dark_meta) == "dark" and dark_meta.target_sigma == 1.5
    assert InferenceConfig(decode="quarter").decoder(dark_meta) == "quarter"
    old = {k: v for k, v in meta.to_dict().items() if k not in ("decode", "target_sigma")}  # files before the field
    assert CheckpointMeta.from_dict(old).decode == "quarter"
    with pytest.raises(ValueError, match="decode"):
        InferenceConfig(decode="udp")


def test_normalise_colour_order() -> None:
    crops = torch.zeros(1, 2, 2, 3, dtype=torch.uint8)
    crops[..., 0] = 255  # pure red in RGB
    rgb = normalise(crops, default_meta("hrnet_w32", 17, source="hrnet"))
    bgr = normalise(crops, default_meta("simplebaseline_res50", 17, source="hrnet"))  # official pose_resnet: BGR
    np.testing.assert_allclose(rgb[0, :, 0, 0], [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)
    np.testing.assert_allclose(bgr[0, :, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, (1 - 0.406) / 0.225], rtol=1e-6)


@pytest.mark.parametrize(("arch", "source", "color"), [
    ("simplebaseline_res50", "hrnet", "bgr"), ("simplebaseline_res50", "mmpose-1.x", "rgb"),
    ("hrnet_w32", "hrnet", "rgb"),
])
def test_default_colour_per_source(arch: str, source: str, color: str) -> None:
    assert default_meta(arch, 17, source=source).color == color


def test_detection_boxes_are_used_raw_and_thresholded() -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco"
    coco = json.loads((data / "test_coco.json").read_text())
    dets = json.loads((data / "test_coco_det_AP_H_56.json").read_text())
    people = detection_people(coco, dets, 0.75)
    assert len(people) == 118 and len(detection_people(coco, dets, 0.75, score_threshold=0.3)) == 33
    x, y, w, h = dets[0]["bbox"]  # 225 x 334: tall, so the width grows to 0.75 * h, no sanitising
    np.testing.assert_allclose(people.centers[0], [x + w / 2, y + h / 2])
    np.testing.assert_allclose(people.scales[0], [0.75 * h * 1.25 / 200, h * 1.25 / 200])
    assert people.box_scores[0] == dets[0]["score"] and people.images[0] == "000000000785.jpg"
    with pytest.raises(ValueError, match="image_id 123"):
        detection_people(coco, [{**dets[0], "image_id": 123}], 0.75)
