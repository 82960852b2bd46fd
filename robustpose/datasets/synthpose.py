"""SynthPose: procedurally rendered multi-person scenes with exact COCO keypoint labels.

Each person is a 2-D articulated body (human proportions, joint-angle limits, a head with eyes, ears and nose)
drawn with anti-aliased OpenCV primitives in clothing colours and textures, over a cluttered textured background.
Several people per image overlap (drawn back to front) and may be cut by the frame. The labels follow from the
drawing itself: every person's pixels are recorded in a per-pixel id buffer in depth order, and a joint is

* ``v=2`` (visible) when the id buffer at its pixel is that person,
* ``v=1`` (labelled, hidden) when a nearer person was drawn over it,
* ``v=0`` with ``(0, 0)`` coordinates when it falls outside the frame.

Self-occlusion (an arm in front of one's own face) keeps ``v=2``: the id buffer is per person, not per part.

Keypoint coordinates are in OpenCV's pixel convention: ``(x, y)`` is the centre of pixel column ``round(x)``,
row ``round(y)``. Everything is deterministic given a seed; image ``i`` of a split depends only on
``(seed, split, i)`` (a :class:`numpy.random.SeedSequence`), not on how many images are made or in which order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .imageio import encode_image, write_atomic
from .keypoints import COCO

SHIFT = 4  # OpenCV sub-pixel bits for drawing
ONE = 1 << SHIFT
SPLITS = ("train", "val")
JPEG_QUALITY = 92
PARSING = "parsing"  # folder of the LIP-format part label rasters (``--part-labels``)

# COCO joint indices
NOSE, LEYE, REYE, LEAR, REAR, LSHO, RSHO, LELB, RELB, LWRI, RWRI, LHIP, RHIP, LKNE, RKNE, LANK, RANK = range(17)

# Segment lengths as fractions of the standing height (anthropometric averages, Drillis & Contini).
PROPORTIONS = {
    "torso": 0.30, "neck": 0.045, "head_radius": 0.065, "shoulder_width": 0.23, "hip_width": 0.17,
    "upper_arm": 0.17, "forearm": 0.15, "thigh": 0.245, "shin": 0.245,
}
# Joint-angle limits in degrees (2-D projections of the anatomical ranges).
ANGLE_LIMITS = {
    "lean": (-15.0, 15.0),          # torso from vertical
    "neck_tilt": (-20.0, 20.0),     # head from the torso axis
    "shoulder": (-25.0, 170.0),     # upper arm from hanging down, positive = outwards/up
    "elbow": (0.0, 145.0),          # flexion
    "hip": (-20.0, 60.0),           # thigh from hanging down, positive = outwards
    "knee": (0.0, 110.0),           # flexion
    "head_yaw": (-0.5, 0.5),        # sine of the face turn
}

COCO_CATEGORY = {
    "supercategory": "person", "id": 1, "name": "person", "keypoints": list(COCO.joints),
    "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                 [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]],
}


@dataclass(frozen=True)
class SynthConfig:
    """What one SynthPose split looks like.

    Attributes:
        width, height: image size in pixels.
        min_people, max_people: people drawn per image (inclusive).
        min_height, max_height: standing height of a person as a fraction of the image height.
        min_visible_area: people whose visible pixel count is below this are drawn but not annotated.
        min_keypoints: people with fewer labelled joints are drawn but not annotated.
    """

    width: int = 320
    height: int = 240
    min_people: int = 1
    max_people: int = 3
    min_height: float = 0.5
    max_height: float = 0.95
    min_visible_area: int = 300
    min_keypoints: int = 3

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f"SynthPose size must be at least 32x32, got {self.width}x{self.height}")
        if not 1 <= self.min_people <= self.max_people:
            raise ValueError(f"need 1 <= min_people <= max_people, got {self.min_people}, {self.max_people}")
        if not 0 < self.min_height <= self.max_height:
            raise ValueError(f"need 0 < min_height <= max_height, got {self.min_height}, {self.max_height}")


@dataclass(frozen=True)
class Style:
    """How one person is dressed: RGB colours in [0, 255] and texture generators' parameters."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shirt: tuple[tuple[float, float, float], tuple[float, float, float]]
    pants: tuple[tuple[float, float, float], tuple[float, float, float]]
    shoes: tuple[float, float, float]
    shirt_pattern: int
    pants_pattern: int
    long_sleeves: bool
    shorts: bool
    arm_thickness: float  # fraction of height
    leg_thickness: float


@dataclass(frozen=True)
class Pose:
    """A person's 2-D skeleton: ``keypoints`` ``(17, 2)`` float64 image coordinates in COCO order, plus the head
    geometry the renderer needs (``head_center`` ``(2,)``, ``head_radius``, ``head_angle`` in degrees)."""

    keypoints: np.ndarray
    head_center: np.ndarray
    head_radius: float
    head_angle: float
    height: float


@dataclass
class Scene:
    """One rendered image and its exact labels.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        ids: ``(H, W)`` int32 id buffer: ``k + 1`` where person ``k`` is the front-most drawn pixel, 0 elsewhere.
        masks: per person, ``(H, W)`` bool: that person's own drawn pixels before anyone else is drawn on top.
        keypoints: per person, ``(17, 3)`` float64 ``(x, y, v)`` in COCO convention (``v=0`` -> x = y = 0).
        order: person indices from back (first drawn) to front.
        parts: ``(H, W)`` uint8 LIP part labels (0 background, 1-19 as in LIP; the front-most person's part wins,
            like ``ids``), when rendered with ``part_labels``; else None.
    """

    image: np.ndarray
    ids: np.ndarray
    masks: list[np.ndarray]
    keypoints: list[np.ndarray]
    order: list[int]
    parts: np.ndarray | None = None


# ------------------------------------------------------------------ skeleton


def _unit(deg: float) -> np.ndarray:
    """Unit vector at ``deg`` degrees measured from straight down (+y), counter-clockwise towards +x."""
    r = np.deg2rad(deg)
    return np.array([np.sin(r), np.cos(r)])


def sample_pose(rng: np.random.Generator, hip_center: tuple[float, float], height: float) -> Pose:
    """A random standing/gesturing person facing the camera within :data:`ANGLE_LIMITS`.

    Parameters
    ----------
    rng : numpy Generator
    hip_center : (x, y)
        Pixel position of the pelvis (mid-point of the hips).
    height : float
        Standing height in pixels.

    Returns
    -------
    Pose
        Keypoints in COCO order; the person's left side is on the image's right (facing the camera).
    """
    P, A = PROPORTIONS, ANGLE_LIMITS
    u = lambda key: rng.uniform(*A[key])  # noqa: E731
    hip_c = np.asarray(hip_center, float)
    lean = u("lean")
    down = _unit(lean)                      # torso axis pointing down (shoulders -> hips)
    across = np.array([down[1], -down[0]])  # image-right when upright
    turn = rng.uniform(0.65, 1.0)           # body turned away from the frontal plane narrows the shoulders
    sho_c = hip_c - down * P["torso"] * height * rng.uniform(0.92, 1.05)
    kp = np.zeros((17, 2))
    kp[LSHO] = sho_c + across * P["shoulder_width"] * height * turn / 2
    kp[RSHO] = sho_c - across * P["shoulder_width"] * height * turn / 2
    kp[LHIP] = hip_c + across * P["hip_width"] * height * turn / 2
    kp[RHIP] = hip_c - across * P["hip_width"] * height * turn / 2
    for side, (sho, elb, wri, hip, kne, ank) in ((1, (LSHO, LELB, LWRI, LHIP, LKNE, LANK)),
                                                 (-1, (RSHO, RELB, RWRI, RHIP, RKNE, RANK))):
        # angles measured from the torso's down axis; side=+1 opens towards image right
        raised = rng.random() < 0.35  # most arms hang or gesture low; some are raised
        arm = lean + side * (u("shoulder") if raised else rng.uniform(A["shoulder"][0], 60.0))
        foreshorten = rng.uniform(0.75, 1.0, size=4)
        kp[elb] = kp[sho] + _unit(arm) * P["upper_arm"] * height * foreshorten[0]
        fore = arm + rng.choice((-1, 1)) * u("elbow")
        kp[wri] = kp[elb] + _unit(fore) * P["forearm"] * height * foreshorten[1]
        leg = lean * 0.3 + side * u("hip")
        kp[kne] = kp[hip] + _unit(leg) * P["thigh"] * height * foreshorten[2]
        shin = leg - side * u("knee") * rng.choice((-0.6, 1.0))
        kp[ank] = kp[kne] + _unit(shin) * P["shin"] * height * foreshorten[3]
    tilt = lean + u("neck_tilt")
    r = P["head_radius"] * height
    head_c = sho_c - _unit(tilt) * (P["neck"] * height + r)
    yaw = u("head_yaw")
    # face landmarks in the head frame (x right, y down, units of r), rotated by the tilt
    local = {NOSE: (0.55 * yaw, 0.22), LEYE: (0.36 + 0.4 * yaw, -0.12), REYE: (-0.36 + 0.4 * yaw, -0.12),
             LEAR: (0.93 + 0.1 * yaw, 0.02), REAR: (-0.93 + 0.1 * yaw, 0.02)}
    c, s = np.cos(np.deg2rad(-tilt)), np.sin(np.deg2rad(-tilt))
    rot = np.array([[c, -s], [s, c]])
    for j, (x, y) in local.items():
        kp[j] = head_c + rot @ (np.array([x, y]) * r)
    return Pose(kp, head_c, r, -tilt, height)


def sample_style(rng: np.random.Generator) -> Style:
    """Random skin tone, hair, clothing colours/patterns and limb thickness."""
    skins = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 33))
    base = np.array(skins[rng.integers(len(skins))], float) * rng.uniform(0.9, 1.05)
    col = lambda: tuple(float(v) for v in rng.uniform(0, 255, 3))  # noqa: E731
    hair = tuple(float(v) for v in np.array((40, 28, 20)) * rng.uniform(0.3, 3.5))
    return Style(
        skin=tuple(float(v) for v in np.clip(base, 0, 255)), hair=hair, shirt=(col(), col()), pants=(col(), col()),
        shoes=tuple(float(v) for v in rng.uniform(0, 90, 3)), shirt_pattern=int(rng.integers(4)),
        pants_pattern=int(rng.integers(4)), long_sleeves=bool(rng.random() < 0.5), shorts=bool(rng.random() < 0.3),
        arm_thickness=float(rng.uniform(0.045, 0.07)), leg_thickness=float(rng.uniform(0.06, 0.09)),
    )


# ------------------------------------------------------------------ textures


def texture(rng: np.random.Generator, shape: tuple[int, int], colors, pattern: int) -> np.ndarray:
    """A ``(H, W, 3)`` float32 texture in [0, 255] made of two colours.

    ``pattern``: 0 plain with low-frequency shading, 1 stripes, 2 checks, 3 blotches.
    """
    h, w = shape
    c0, c1 = np.asarray(colors[0], np.float32), np.asarray(colors[1], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if pattern == 1:
        a = rng.uniform(0, np.pi)
        period = rng.uniform(4, 16)
        t = (np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period) > 0).astype(np.float32)
    elif pattern == 2:
        p = rng.uniform(5, 14)
        t = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32)
    elif pattern == 3:
        small = rng.random((max(2, h // 12), max(2, w // 12))).astype(np.float32)
        t = (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) > 0.5).astype(np.float32)
    else:
        c1 = c0 * 0.75
        small = rng.random((3, 3)).astype(np.float32)
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    t = cv2.GaussianBlur(t, (0, 0), 0.7)[..., None]
    return np.clip(c0 * (1 - t) + c1 * t, 0, 255)


def background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A cluttered ``(H, W, 3)`` float32 background: a textured base plus random shapes, lines and blobs."""
    h, w = shape
    col = lambda: tuple(float(v) for v in rng.uniform(0, 255, 3))  # noqa: E731
    img = texture(rng, shape, (col(), col()), int(rng.integers(4)))
    grad = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), h, dtype=np.float32)[:, None, None]
    img = np.ascontiguousarray(img * grad)
    for _ in range(int(rng.integers(10, 30))):
        kind = int(rng.integers(4))
        p = (int(rng.uniform(-0.1, 1.1) * w * ONE), int(rng.uniform(-0.1, 1.1) * h * ONE))
        size = rng.uniform(0.03, 0.3) * min(h, w)
        if kind == 0:
            q = (p[0] + int(rng.uniform(-2, 2) * size * ONE), p[1] + int(rng.uniform(-2, 2) * size * ONE))
            cv2.rectangle(img, p, q, col(), -1, cv2.LINE_AA, SHIFT)
        elif kind == 1:
            axes = (int(size * ONE), int(size * rng.uniform(0.3, 1) * ONE))
            cv2.ellipse(img, p, axes, rng.uniform(0, 180), 0, 360, col(), -1, cv2.LINE_AA, SHIFT)
        elif kind == 2:
            q = (p[0] + int(rng.uniform(-3, 3) * size * ONE), p[1] + int(rng.uniform(-3, 3) * size * ONE))
            cv2.line(img, p, q, col(), int(rng.integers(1, 6)), cv2.LINE_AA, SHIFT)
        else:
            pts = (np.array(p) + rng.uniform(-size, size, (int(rng.integers(3, 7)), 2)) * ONE).astype(np.int32)
            cv2.fillPoly(img, [pts], col(), cv2.LINE_AA, SHIFT)
    img += rng.normal(0, rng.uniform(1, 5), img.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0)), 0, 255)


# ------------------------------------------------------------------ drawing


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * ONE)), int(round(p[1] * ONE))


def _thick(t: float) -> int:
    return max(1, int(round(t)))


# LIP ids (robustpose.datasets.parts.LIP_LABELS) of the part label rasters
LIP_HAIR, LIP_UPPER_CLOTHES, LIP_PANTS, LIP_FACE = 2, 5, 9, 13
LIP_ARM, LIP_LEG, LIP_SHOE = {1: 14, -1: 15}, {1: 16, -1: 17}, {1: 18, -1: 19}  # side +1: the person's left
# The label layers in the order their materials are composited (later wins), as _material_masks draws them.
LABEL_ORDER = (LIP_SHOE[1], LIP_SHOE[-1], LIP_PANTS, LIP_UPPER_CLOTHES, LIP_LEG[1], LIP_LEG[-1], LIP_ARM[1],
               LIP_ARM[-1], LIP_FACE, LIP_HAIR)


def _material_masks(pose: Pose, style: Style, shape: tuple[int, int], origin: np.ndarray,
                    by_label: bool = False) -> dict:
    """Anti-aliased coverage ``(h, w)`` float32 in [0, 1] of each material of one person, in drawing order.

    The canvas is the window of the image whose top-left pixel is ``origin`` ``(x, y)``. With ``by_label`` the
    same primitives are drawn into one layer per LIP part label instead (keys: the LIP ids of
    :data:`LABEL_ORDER`, person's left and right apart), for the part label rasters; the material layers, and so
    the image, do not depend on it.
    """
    kp, H = pose.keypoints - origin, pose.height
    head_center = pose.head_center - origin
    ta, tl = style.arm_thickness * H, style.leg_thickness * H
    keys = LABEL_ORDER if by_label else ("shoes", "pants", "shirt", "skin", "hair")
    layers = {key: np.zeros(shape, np.uint8) for key in keys}

    def layer(material: str, label: int) -> np.ndarray:
        return layers[label if by_label else material]

    def line(material: str, label: int, a: np.ndarray, b: np.ndarray, t: float) -> None:
        cv2.line(layer(material, label), _pt(a), _pt(b), 255, _thick(t), cv2.LINE_AA, SHIFT)

    def disc(material: str, label: int, c: np.ndarray, r: float) -> None:
        cv2.circle(layer(material, label), _pt(c), int(round(max(r, 1.0) * ONE)), 255, -1, cv2.LINE_AA, SHIFT)

    for side, (hip, kne, ank) in ((1, (LHIP, LKNE, LANK)), (-1, (RHIP, RKNE, RANK))):
        line("pants", LIP_PANTS, kp[hip], kp[kne], tl)
        if style.shorts:
            line("skin", LIP_LEG[side], kp[kne], kp[ank], 0.8 * tl)
        else:
            line("pants", LIP_PANTS, kp[kne], kp[ank], 0.8 * tl)
        disc("pants", LIP_PANTS, kp[kne], 0.45 * tl)
        d = kp[ank] - kp[kne]
        foot_dir = np.array([np.sign(kp[ank][0] - kp[hip][0] + 1e-6) * 0.9, 0.35]) * 0.06 * H
        line("shoes", LIP_SHOE[side], kp[ank], kp[ank] + foot_dir + d * 0.05, 0.7 * tl)
    line("pants", LIP_PANTS, kp[LHIP], kp[RHIP], tl)
    torso = np.array([kp[LSHO], kp[RSHO], kp[RHIP], kp[LHIP]])
    centre = torso.mean(axis=0)
    torso = centre + (torso - centre) * 1.08
    cv2.fillPoly(layer("shirt", LIP_UPPER_CLOTHES), [np.round(torso * ONE).astype(np.int32)], 255, cv2.LINE_AA,
                 SHIFT)
    for side, (sho, elb, wri) in ((1, (LSHO, LELB, LWRI)), (-1, (RSHO, RELB, RWRI))):
        line("shirt", LIP_UPPER_CLOTHES, kp[sho], kp[elb], ta)
        if style.long_sleeves:
            line("shirt", LIP_UPPER_CLOTHES, kp[elb], kp[wri], 0.85 * ta)
        else:
            line("skin", LIP_ARM[side], kp[elb], kp[wri], 0.85 * ta)
        hand = kp[wri] + (kp[wri] - kp[elb]) / (np.linalg.norm(kp[wri] - kp[elb]) + 1e-6) * 0.3 * ta
        disc("skin", LIP_ARM[side], hand, 0.6 * ta)
        if not style.long_sleeves:
            disc("shirt", LIP_UPPER_CLOTHES, kp[elb], 0.3 * ta)
    sho_c = (kp[LSHO] + kp[RSHO]) / 2
    r = pose.head_radius
    line("skin", LIP_FACE, sho_c, head_center, 0.8 * r)  # LIP has no neck class: the neck is labelled face
    for ear in (LEAR, REAR):
        cv2.ellipse(layer("skin", LIP_FACE), _pt(kp[ear]), (int(0.2 * r * ONE), int(0.32 * r * ONE)),
                    pose.head_angle, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
    head_axes = (int(0.86 * r * ONE), int(1.05 * r * ONE))
    cv2.ellipse(layer("skin", LIP_FACE), _pt(head_center), head_axes, pose.head_angle, 0, 360, 255, -1, cv2.LINE_AA,
                SHIFT)
    hair_axes = (int(0.92 * r * ONE), int(1.1 * r * ONE))
    cv2.ellipse(layer("hair", LIP_HAIR), _pt(head_center - np.array([0, 0.08 * r])), hair_axes, pose.head_angle,
                180, 360, 255, -1, cv2.LINE_AA, SHIFT)
    return {k: v.astype(np.float32) / 255.0 for k, v in layers.items()}


def part_labels_of(layers: dict[int, np.ndarray], person: np.ndarray) -> np.ndarray:
    """The ``(h, w)`` uint8 LIP label map of one person from its label layers (:func:`_material_masks` with
    ``by_label``) and its pixels ``person`` (bool): each pixel gets the last layer in :data:`LABEL_ORDER` covering it
    by at least half (the material composited on top), a person pixel no layer covers by half the most-covering
    layer's, other pixels 0."""
    stack = np.stack([layers[k] for k in LABEL_ORDER])
    ids = np.asarray(LABEL_ORDER, np.uint8)
    out = ids[np.argmax(stack, axis=0)]
    for label, alpha in zip(LABEL_ORDER, stack):
        out[alpha >= 0.5] = label
    out[~person] = 0
    return out


def _draw_face(img: np.ndarray, pose: Pose, style: Style) -> None:
    """Eyes, nose and mouth on the already composited head (in place, float32 image)."""
    kp, r = pose.keypoints, pose.head_radius
    for eye in (LEYE, REYE):
        cv2.circle(img, _pt(kp[eye]), int(0.2 * r * ONE), (245, 245, 245), -1, cv2.LINE_AA, SHIFT)
        cv2.circle(img, _pt(kp[eye]), int(0.11 * r * ONE), (25, 20, 15), -1, cv2.LINE_AA, SHIFT)
    nose_col = tuple(0.7 * c for c in style.skin)
    cv2.circle(img, _pt(kp[NOSE]), int(0.13 * r * ONE), nose_col, -1, cv2.LINE_AA, SHIFT)
    mouth = kp[NOSE] + np.array([0.0, 0.3 * r])
    cv2.ellipse(img, _pt(mouth), (int(0.25 * r * ONE), int(0.08 * r * ONE)), pose.head_angle, 0, 180, (120, 40, 40),
                _thick(0.08 * r), cv2.LINE_AA, SHIFT)


def render_people(rng: np.random.Generator, base: np.ndarray, poses: list[Pose], styles: list[Style],
                  order: list[int], part_labels: bool = False) -> Scene:
    """Draw ``poses`` onto ``base`` back to front (``order[0]`` first) and derive the labels.

    Parameters
    ----------
    rng : numpy Generator
        Source of the clothing textures.
    base : (H, W, 3) float32 in [0, 255]
        The background (not modified).
    poses, styles : lists of equal length
    order : permutation of ``range(len(poses))``, back to front.
    part_labels : bool
        Also draw the LIP part label raster (``Scene.parts``); it draws no pixel of the image and takes nothing from
        ``rng``, so the image is the same either way.

    Returns
    -------
    Scene
    """
    h, w = base.shape[:2]
    img = base.copy()
    ids = np.zeros((h, w), np.int32)
    parts = np.zeros((h, w), np.uint8) if part_labels else None
    masks: list[np.ndarray] = [np.zeros((h, w), bool)] * len(poses)
    for k in order:
        pose, style = poses[k], styles[k]
        margin = 0.2 * pose.height
        x0, y0 = np.floor(np.maximum(pose.keypoints.min(axis=0) - margin, 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(pose.keypoints.max(axis=0) + margin, (w, h))).astype(int)
        if x1 <= x0 or y1 <= y0:
            continue
        win = (slice(y0, y1), slice(x0, x1))
        shape = (y1 - y0, x1 - x0)
        layers = _material_masks(pose, style, shape, np.array([x0, y0], float))
        union = np.zeros(shape, np.float32)
        patch = img[win]
        for name, alpha in layers.items():
            if name in ("shirt", "pants"):
                colors, pattern = (style.shirt, style.shirt_pattern) if name == "shirt" else (style.pants,
                                                                                              style.pants_pattern)
                tex = texture(rng, shape, colors, pattern)
            else:
                tex = np.broadcast_to(np.asarray(getattr(style, name), np.float32), (*shape, 3))
            shade = 0.72 + 0.28 * cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.02 * pose.height))
            a = alpha[..., None]
            patch = patch * (1 - a) + tex * shade[..., None] * a
            union = np.maximum(union, alpha)
        img[win] = patch
        _draw_face(img, pose, style)
        masks[k] = np.zeros((h, w), bool)
        masks[k][win] = union >= 0.5
        ids[masks[k]] = k + 1
        if parts is not None:
            labels = part_labels_of(_material_masks(pose, style, shape, np.array([x0, y0], float), by_label=True),
                                    masks[k][win])
            parts[win][masks[k][win]] = labels[masks[k][win]]
    keypoints = [visibility(poses[k].keypoints, k, ids) for k in range(len(poses))]
    return Scene(np.clip(np.round(img), 0, 255).astype(np.uint8), ids, masks, keypoints, list(order), parts)


def visibility(kp: np.ndarray, k: int, ids: np.ndarray) -> np.ndarray:
    """COCO ``(17, 3)`` keypoints of person ``k`` from its ``(17, 2)`` positions and the final id buffer.

    ``v=0`` (and x = y = 0) outside the frame, ``v=2`` where the id buffer shows person ``k``, else ``v=1``.
    """
    h, w = ids.shape
    out = np.zeros((len(kp), 3))
    for j, (x, y) in enumerate(kp):
        col, row = int(round(x)), int(round(y))
        if 0 <= col < w and 0 <= row < h:
            out[j] = (x, y, 2 if ids[row, col] == k + 1 else 1)
    return out


def render_scene(rng: np.random.Generator, config: SynthConfig, part_labels: bool = False) -> Scene:
    """A random scene: background, 1..N people at random depths, positions and sizes (some cut by the frame);
    with ``part_labels`` also its LIP part label raster (the image is the same either way)."""
    h, w = config.height, config.width
    base = background(rng, (h, w))
    n = int(rng.integers(config.min_people, config.max_people + 1))
    heights = np.sort(rng.uniform(config.min_height, config.max_height, n))[::-1] * h  # will be drawn smallest first
    poses, styles = [], []
    for i in range(n):
        hip = (rng.uniform(-0.05, 1.05) * w, rng.uniform(0.3, 0.85) * h + 0.1 * heights[i])
        poses.append(sample_pose(rng, hip, heights[i]))
        styles.append(sample_style(rng))
    order = list(range(n))[::-1]  # smaller (farther) people first
    return render_people(rng, base, poses, styles, order, part_labels)


# ------------------------------------------------------------------ COCO records


def annotations_for(scene: Scene, image_id: int, first_ann_id: int, config: SynthConfig) -> list[dict]:
    """COCO keypoint annotations of the people in ``scene`` that are visible enough to label.

    ``bbox`` is the tight box of the person's visible pixels, ``area`` their count, ``segmentation`` their RLE.
    """
    from pycocotools import mask as mask_utils

    anns = []
    for k, kp in enumerate(scene.keypoints):
        visible = scene.ids == k + 1
        area = int(visible.sum())
        num = int((kp[:, 2] > 0).sum())
        if area < config.min_visible_area or num < config.min_keypoints:
            continue
        rows, cols = np.nonzero(visible)
        x0, y0, x1, y1 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
        rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
        anns.append({
            "id": first_ann_id + len(anns), "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": float(area),
            "num_keypoints": num, "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
            "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
        })
    return anns


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of count, order and worker."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]))


def generate_split(out: str | os.PathLike, split: str, count: int, config: SynthConfig, seed: int,
                   progress: Callable[[], None] | None = None, part_labels: bool = False) -> Path:
    """Render ``count`` images into ``out/images/<split>/`` and write ``out/annotations/person_keypoints_<split>.json``;
    with ``part_labels`` also each image's LIP part label raster, ``out/parsing/<split>/<stem>.png`` (8-bit grey,
    values 0-19 as in LIP's parsing annotations; the images are the same either way).

    Files are written atomically; returns the annotation file's path.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    out = Path(out)
    images, anns = [], []
    for i in range(count):
        scene = render_scene(image_rng(seed, split, i), config, part_labels)
        name = f"{split}/{i:06d}.jpg"
        write_atomic(out / "images" / name, encode_image(scene.image, "jpg", JPEG_QUALITY))
        if scene.parts is not None:
            write_atomic(out / PARSING / split / f"{i:06d}.png", encode_image(scene.parts, "png"))
        image_id = i + 1
        images.append({"id": image_id, "file_name": name, "width": config.width, "height": config.height})
        anns += annotations_for(scene, image_id, len(anns) + 1, config)
        if progress is not None:
            progress()
    doc = {"info": {"description": "SynthPose", "seed": int(seed), "split": split,
                    "config": {k: getattr(config, k) for k in config.__dataclass_fields__}},
           "licenses": [], "categories": [COCO_CATEGORY], "images": images, "annotations": anns}
    ann_file = out / "annotations" / f"person_keypoints_{split}.json"
    write_atomic(ann_file, json.dumps(doc).encode("utf-8"))
    return ann_file


def iter_splits(train: int, val: int) -> Iterator[tuple[str, int]]:
    """The (split, count) pairs to generate, skipping empty ones."""
    for split, count in (("train", train), ("val", val)):
        if count > 0:
            yield split, count
