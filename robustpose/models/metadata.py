"""What a checkpoint needs beside its weights to be evaluated correctly: :class:`CheckpointMeta`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from robustpose.datasets.keypoints import COCO, MPII, KeypointSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COLOR_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class CheckpointMeta:
    """Preprocessing and identity of one set of weights.

    Attributes:
        arch: registry name (``hrnet_w32``, ``simplebaseline_res50``, ...).
        input_size: network input ``(height, width)`` in pixels, e.g. ``(256, 192)``.
        heatmap_size: output heatmap ``(height, width)``, e.g. ``(64, 48)``.
        color: channel order the network expects, ``"rgb"`` or ``"bgr"`` (official pose_resnet files are BGR).
        mean, std: per-channel normalisation in [0, 1] units, applied **positionally** after the colour
            conversion (HRNet and MMPose both apply the RGB-ordered ImageNet tuple whatever the order).
        keypoints: keypoint set name (``coco``, ``mpii``); ``joints`` and ``flip_pairs`` spell it out.
        training_method: how the weights were trained (``standard``, ``advmix``, ``unknown``...).
        arch_kwargs: constructor overrides of the registry variant (tiny test models, joint count).
        source: the format the file was read from (``hrnet``, ``mmpose-1.x``, ``robustpose``, ``onnx`` ...).
        decode: the heatmap decoder the weights are meant for (``quarter``: HRNet's rule, the default for every
            file that does not say; ``dark``: DARK, for models trained on sub-pixel targets at low resolution).
        target_sigma: the Gaussian standard deviation of the training targets in heatmap pixels (DARK's blur).
        training_info: what produced the weights, for files robustpose trained (empty otherwise): ``method``,
            its non-default ``settings``, ``seed``, ``files`` (SHA-256 of the checkpoints it started from, by
            role: ``init``, ``teacher``) and ``pools`` (augmentation pools used: name -> hash).
    """

    arch: str
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    color: str = "rgb"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    keypoints: str = "coco"
    joints: tuple[str, ...] = COCO.joints
    flip_pairs: tuple[tuple[int, int], ...] = COCO.flip_pairs
    training_method: str = "unknown"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "robustpose"
    decode: str = "quarter"
    target_sigma: float = 2.0
    training_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.color not in COLOR_ORDERS:
            raise ValueError(f"color must be one of {COLOR_ORDERS}, got {self.color!r}")
        for name in ("input_size", "heatmap_size"):
            value = getattr(self, name)
            if len(value) != 2 or min(value) <= 0:
                raise ValueError(f"{name} must be (height, width) with positive entries, got {value!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean/std must have 3 entries and std > 0, got {self.mean!r} / {self.std!r}")
        if self.target_sigma <= 0:
            raise ValueError(f"target_sigma must be > 0, got {self.target_sigma!r}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/str/numbers only, so a checkpoint holding it loads under ``weights_only=True``."""
        d = asdict(self)
        for k in ("input_size", "heatmap_size", "mean", "std", "joints"):
            d[k] = list(d[k])
        d["flip_pairs"] = [list(p) for p in self.flip_pairs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckpointMeta:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown checkpoint metadata fields {unknown}; known: {sorted(known)}")
        d = dict(d)
        for k in ("input_size", "heatmap_size", "mean", "std", "joints"):
            if k in d:
                d[k] = tuple(d[k])
        if "flip_pairs" in d:
            d["flip_pairs"] = tuple(tuple(p) for p in d["flip_pairs"])
        if "arch_kwargs" in d:  # json turns the tuples of e.g. deconv_channels into lists
            d["arch_kwargs"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["arch_kwargs"].items()}
        return cls(**d)


def default_meta(arch: str, num_joints: int, *, source: str, arch_kwargs: dict[str, Any] | None = None,
                 input_size: tuple[int, int] | None = None, heatmap_size: tuple[int, int] | None = None,
                 color: str | None = None) -> CheckpointMeta:
    """Metadata for a file that carries none, from the official configs.

    Joints: 17 -> COCO, 16 -> MPII. Input size: 256x192 (COCO) or 256x256 (MPII); heatmap = input / 4.
    Colour: BGR for SimpleBaseline files in the HRNet repository's format (``COLOR_RGB: false`` in every official
    pose_resnet yaml), RGB for HRNet and for everything from MMPose (``bgr_to_rgb=True``).
    """
    kset: KeypointSet | None = {17: COCO, 16: MPII}.get(num_joints)
    if input_size is None:
        input_size = (256, 256) if kset is MPII else (256, 192)
    if heatmap_size is None:
        heatmap_size = (input_size[0] // 4, input_size[1] // 4)
    if color is None:
        color = "bgr" if arch.startswith("simplebaseline") and source in ("hrnet", "hrnet-checkpoint") else "rgb"
    joints = kset.joints if kset else tuple(f"joint_{i}" for i in range(num_joints))
    return CheckpointMeta(
        arch=arch, input_size=tuple(input_size), heatmap_size=tuple(heatmap_size), color=color,
        keypoints=kset.name if kset else "custom", joints=joints, flip_pairs=kset.flip_pairs if kset else (),
        arch_kwargs=dict(arch_kwargs or {}), source=source,
    )
