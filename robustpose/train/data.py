"""Top-down training samples: annotation readers, augmentation, Gaussian heatmap targets.

Augmentation is drawn from a per-sample generator seeded by ``(seed, epoch, index)``, so a sample looks the same
whatever the worker count, the process rank or an interruption in between: the basis of exact ``--resume``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from robustpose.datasets.imageio import load_rgb
from robustpose.datasets.keypoints import COCO, MPII, KeypointSet
from robustpose.datasets.readers import AnnotationError, resolve_image
from robustpose.inference.transforms import affine_matrix, box_to_center_scale, mpii_center_scale, sanitize_box
from robustpose.models.metadata import IMAGENET_MEAN, IMAGENET_STD

# Joints kept by the half-body augmentation's upper half (HRNet's upper_body_ids); the rest is the lower half.
UPPER_BODY = {"coco": tuple(range(11)), "mpii": (7, 8, 9, 10, 11, 12, 13, 14, 15)}


@dataclass(frozen=True)
class Sample:
    """One person to crop: image file, box centre (pixels) and scale (``(w, h)`` in units of 200 pixels, as in
    :mod:`robustpose.inference.transforms`), joints ``(J, 3)`` float (x, y, visible 0/1)."""

    image: Path
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    image_id: int = 0


@dataclass(frozen=True)
class Augment:
    """Training augmentation (HRNet's ranges): scale ``s * clip(1 + N(0, sf), 1 - sf, 1 + sf)``, rotation
    ``clip(N(0, rf), -2 rf, 2 rf)`` with probability ``rotation_prob`` (else 0), horizontal flip with probability 0.5,
    half-body with probability ``half_body_prob`` when more than ``half_body_min_joints`` joints are visible."""

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.0
    half_body_min_joints: int = 8


def read_coco_samples(ann_file: str | Path, images_dir: str | Path, aspect: float) -> list[Sample]:
    """Non-crowd persons with at least one labelled joint of a COCO-format file (COCO, OCHuman, SynthPose).

    Boxes are sanitised as in HRNet (clipped to the image, degenerate ones dropped) and turned into a centre and a
    1.25x padded, aspect-fixed size.
    """
    ann_file = Path(ann_file)
    try:
        doc = json.loads(ann_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"cannot read COCO annotation file {ann_file}: {exc}") from exc
    if not isinstance(doc, dict) or "annotations" not in doc or "images" not in doc:
        raise AnnotationError(f"{ann_file} is not a COCO keypoint file (needs 'images' and 'annotations')")
    images = {im["id"]: im for im in doc["images"]}
    out = []
    for ann in doc["annotations"]:
        kp = np.asarray(ann.get("keypoints", []), float).reshape(-1, 3)
        if ann.get("iscrowd", 0) or len(kp) == 0 or not (kp[:, 2] > 0).any():
            continue
        im = images[ann["image_id"]]
        box = sanitize_box(ann["bbox"], im["width"], im["height"])
        if box is None:
            continue
        centers, scales = box_to_center_scale(box[None], aspect)
        center, scale = centers[0], scales[0]
        joints = np.concatenate([kp[:, :2], (kp[:, 2:] > 0).astype(float)], axis=1)
        out.append(Sample(resolve_image(images_dir, im["file_name"]), center, scale, joints, int(im["id"])))
    return out


def read_mpii_samples(ann_file: str | Path, images_dir: str | Path) -> list[Sample]:
    """Persons of an HRNet-style MPII file: centre/scale as HRNet loads them (y + 15 s, s x 1.25, 0-based)."""
    ann_file = Path(ann_file)
    try:
        people = json.loads(ann_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"cannot read MPII annotation file {ann_file}: {exc}") from exc
    if not isinstance(people, list):
        raise AnnotationError(f"{ann_file} is not an HRNet-style MPII file (a list of persons)")
    out = []
    for i, p in enumerate(people):
        center, scale = mpii_center_scale(p["center"], float(p["scale"]))
        joints = np.asarray(p["joints"], float) - 1
        vis = np.asarray(p["joints_vis"], float)[:, None]
        out.append(Sample(resolve_image(images_dir, p["image"]), center, scale, np.concatenate([joints, vis], 1), i))
    return out


def gaussian_targets(joints: np.ndarray, heatmap_size: tuple[int, int], sigma: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmaps at sub-pixel joint positions, and visibility weights.

    Parameters
    ----------
    joints : (J, 3) float
        ``(x, y, visible)`` in heatmap pixels.
    heatmap_size : (height, width)
    sigma : float
        Gaussian standard deviation in heatmap pixels.

    Returns
    -------
    target : (J, H, W) float32 in [0, 1]
    weight : (J,) float32 in {0, 1}: 0 for unlabelled joints and joints whose 3-sigma square misses the heatmap.
    """
    h, w = heatmap_size
    x, y, v = joints[:, 0:1, None], joints[:, 1:2, None], joints[:, 2]
    ys = np.arange(h, dtype=np.float64)[None, :, None]
    xs = np.arange(w, dtype=np.float64)[None, None, :]
    target = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    inside = ((joints[:, 0] + 3 * sigma >= 0) & (joints[:, 0] - 3 * sigma < w)
              & (joints[:, 1] + 3 * sigma >= 0) & (joints[:, 1] - 3 * sigma < h))
    weight = ((v > 0) & inside).astype(np.float32)
    return (target * weight[:, None, None]).astype(np.float32), weight


# ImageNet mean and 1 / std on the 0..255 scale, per RGB channel
_MEAN_255 = np.float32(255) * np.asarray(IMAGENET_MEAN, np.float32)
_INV_STD_255 = 1 / (np.float32(255) * np.asarray(IMAGENET_STD, np.float32))


def normalize(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 tensor, /255 then ImageNet mean/std.

    In NumPy: torch ops on the permuted view ran ~20 ms per crop when a loader shared a busy machine's threads.
    """
    x = (image.astype(np.float32) - _MEAN_255) * _INV_STD_255
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def half_body(joints: np.ndarray, kset: KeypointSet, aspect: float, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre and size of the upper or lower visible half of the body (HRNet's half-body transform), or None."""
    upper = set(UPPER_BODY.get(kset.name, range(kset.num_joints // 2)))
    vis = [j for j in range(len(joints)) if joints[j, 2] > 0]
    up = [j for j in vis if j in upper]
    low = [j for j in vis if j not in upper]
    chosen = up if (rng.random() < 0.5 and len(up) > 2) or len(low) <= 2 else low
    if len(chosen) < 2:
        return None
    pts = joints[chosen, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centers, scales = box_to_center_scale(np.array([[*lo, *(hi - lo)]]), aspect, padding=1.5)
    return centers[0], scales[0]


@dataclass(frozen=True)
class CropParams:
    """The augmentation of one training crop, as :meth:`TopDownDataset.draw_params` draws it.

    Attributes
    ----------
    center : (2,) float
        Box centre in pixels of the *unflipped* image (the flip mirrors it when the crop is made).
    scale : (2,) float
        Box ``(w, h)`` in units of 200 pixels, after the half-body choice and the random scaling.
    rotation : float
        Degrees, counter-clockwise (HRNet's convention).
    flip : bool
        Mirror the image horizontally (and swap the left/right joints) before cropping.
    half_body : bool
        Whether the half-body transform chose ``center`` / ``scale``.

    The standard recipe (HRNet's) draws no colour augmentation, so there is no colour parameter; a method that
    wants one adds it as a per-sample extra (:class:`SampleExtras`).
    """

    center: np.ndarray
    scale: np.ndarray
    rotation: float = 0.0
    flip: bool = False
    half_body: bool = False


class SampleExtras(Protocol):
    """Per-sample data a method computes in the loader workers (e.g. ASDA's part canvases).

    ``name`` keys its random stream: each call gets a generator seeded by ``(seed, epoch, index,
    stream_key(name))``, never the crop's own stream, so adding extras leaves every base crop and every base
    random draw unchanged. The returned tensors join the item (their keys must not be ``image``, ``target``,
    ``weight`` or ``index``) and are batched by the default collation.
    """

    name: str

    def __call__(self, item: dict[str, torch.Tensor], params: CropParams, sample: Sample,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]: ...


BASE_KEYS = ("image", "target", "weight", "index")


def stream_key(name: str) -> int:
    """A stable 32-bit integer for ``name`` (the first 4 bytes of its SHA-256): the extras' seed component."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


class TopDownDataset(Dataset):
    """Crops, augments and makes targets for one person per item.

    ``__getitem__(i)`` is :meth:`crop` of :meth:`draw_params` (plus any :class:`SampleExtras`) and returns a dict:
    ``image`` ``(3, H, W)`` float32 (normalised), ``target`` ``(J, h, w)``, ``weight`` ``(J,)``, ``index``. Call
    :meth:`set_epoch` before each epoch (it reseeds the augmentation). A method that needs another geometry of the
    same sample (Peng et al.'s agent) calls :meth:`params` and :meth:`crop` itself. ``load_image(path)`` reads a
    sample's image as ``(H, W, 3)`` uint8 RGB (default: the file itself; checkpoint selection on held-out
    corruptions passes a corrupting reader).
    """

    def __init__(self, samples: list[Sample], kset: KeypointSet, input_size: tuple[int, int],
                 heatmap_size: tuple[int, int], sigma: float, augment: Augment | None, seed: int = 0,
                 extras: SampleExtras | None = None, load_image: Callable[[Path], np.ndarray] = load_rgb) -> None:
        if not samples:
            raise ValueError("no training samples: the annotation file has no person with a labelled joint")
        self.samples, self.kset, self.augment, self.seed = samples, kset, augment, seed
        self.input_size, self.heatmap_size, self.sigma = tuple(input_size), tuple(heatmap_size), sigma
        self.extras, self.load_image = extras, load_image
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sample_rng(self, index: int) -> np.random.Generator:
        """The augmentation stream of sample ``index`` in the current epoch, seeded by ``(seed, epoch, index)``."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def extras_rng(self, index: int, name: str) -> np.random.Generator:
        """The stream of extras ``name`` for sample ``index``: ``(seed, epoch, index, stream_key(name))``."""
        return np.random.default_rng([self.seed, self.epoch, index, stream_key(name)])

    def draw_params(self, index: int, rng: np.random.Generator | None) -> CropParams:
        """Draw the augmentation of sample ``index`` from ``rng`` (HRNet's recipe, in its order of draws:
        half-body, scale, rotation, flip); without augmentation (or ``rng`` None) the annotated box as it is."""
        s, aug = self.samples[index], self.augment
        center, scale = s.center.copy(), s.scale.copy()
        if aug is None or rng is None:
            return CropParams(center, scale)
        half = False
        if aug.half_body_prob > 0 and (s.joints[:, 2] > 0).sum() > aug.half_body_min_joints \
                and rng.random() < aug.half_body_prob:
            hb = half_body(s.joints, self.kset, self.input_size[1] / self.input_size[0], rng)
            if hb is not None:
                (center, scale), half = hb, True
        sf, rf = aug.scale_factor, aug.rotation_factor
        scale = scale * np.clip(rng.normal() * sf + 1, 1 - sf, 1 + sf)
        rotation = float(np.clip(rng.normal() * rf, -2 * rf, 2 * rf)) if rng.random() < aug.rotation_prob else 0.0
        flip = bool(aug.flip and rng.random() < 0.5)
        return CropParams(center, scale, rotation, flip, half)

    def params(self, index: int) -> CropParams:
        """The parameters :meth:`__getitem__` uses for ``index`` in the current epoch (redrawn, not stored)."""
        return self.draw_params(index, self.sample_rng(index) if self.augment is not None else None)

    def crop(self, index: int, params: CropParams) -> dict[str, torch.Tensor]:
        """The crop of sample ``index`` at ``params``: ``image``, ``target``, ``weight``, ``index`` (see the class)."""
        s = self.samples[index]
        image = self.load_image(s.image)
        joints, center = s.joints.copy(), params.center.copy()
        if params.flip:
            width = image.shape[1]
            image = image[:, ::-1]
            joints[:, 0] = width - 1 - joints[:, 0]
            for a, b in self.kset.flip_pairs:
                joints[[a, b]] = joints[[b, a]]
            center[0] = width - 1 - center[0]
        (h, w), (hh, hw) = self.input_size, self.heatmap_size
        matrix = affine_matrix(center, params.scale, (w, h), params.rotation)
        patch = cv2.warpAffine(np.ascontiguousarray(image), matrix, (w, h), flags=cv2.INTER_LINEAR)
        hm_joints = joints.copy()
        hm_joints[:, :2] = (joints[:, :2] @ matrix[:, :2].T + matrix[:, 2]) * np.array([hw / w, hh / h])
        target, weight = gaussian_targets(hm_joints, self.heatmap_size, self.sigma)
        return {"image": normalize(patch), "target": torch.from_numpy(target), "weight": torch.from_numpy(weight),
                "index": torch.tensor(index)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        params = self.params(index)
        item = self.crop(index, params)
        if self.extras is not None:
            extra = self.extras(item, params, self.samples[index], self.extras_rng(index, self.extras.name))
            clash = sorted(set(extra) & set(BASE_KEYS))
            if clash:
                raise ValueError(f"extras {self.extras.name!r} may not replace the base keys {clash}")
            item.update(extra)
        return item


def keypoint_set_for(dataset: str) -> KeypointSet:
    """COCO joints for coco / ochuman / synth, MPII joints for mpii."""
    return MPII if dataset == "mpii" else COCO


def read_samples(dataset: str, ann_file: str | Path, images_dir: str | Path, aspect: float) -> list[Sample]:
    """Samples of ``dataset`` (coco, ochuman, synth: COCO format; mpii: HRNet MPII json, whose square boxes are
    kept as HRNet keeps them). ``aspect`` is the crop's width / height."""
    if dataset == "mpii":
        return read_mpii_samples(ann_file, images_dir)
    return read_coco_samples(ann_file, images_dir, aspect)
