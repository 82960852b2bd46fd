"""ASDA's part pasting: the data-worker side (:class:`PartPaster`, the engine's per-sample extras) and the device side
(:func:`paste`, differentiable in the affine parameters).

Worker side, after the normal crop (the official dataset code): draw ``num_parts`` part types uniformly among the
pool's types and an instance of each uniformly; resize it so that its diagonal is the body box diagonal times the
type's size prior times ``U(0.7, 1.3)`` (the scale is random, never learned); put it at the centre of an input-sized
canvas, ImageNet-normalised and zero off its soft mask (the alpha eroded 3x3 then box-blurred 3x3). No part is
pasted when the half-body transform fired, nor, on COCO-format data, when fewer than 8 joints are visible. Unused
slots have type -1.

Device side: ``theta = [[cos(pi r), sin(pi r), 2.4 t_x], [-sin(pi r), cos(pi r), 2.4 t_y]]`` for the part's
``(r, t_x, t_y)`` in ``(-0.5, 0.5)``, a sampling grid from it, bilinear resampling of part and mask with zero
padding (``align_corners=False``, pinned: torch 1.3 changed the default), and the composite
``x <- x (1 - m) + part m`` in normalised space, slot after slot. ``theta`` = identity leaves the part at the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from robustpose.datasets.parts import PartPool

from ..data import CropParams, Sample, normalize

SIZE_JITTER = (0.7, 1.3)
ROTATION_RANGE = math.pi  # r in (-0.5, 0.5) -> rotation within +-pi/2
TRANSLATION_RANGE = 2.4  # t in (-0.5, 0.5) -> translation within +-1.2 grid units
ALIGN_CORNERS = False  # the grid convention of warp(): affine_grid / grid_sample's, pinned


def soft_mask(alpha: np.ndarray, erode: int = 3, blur: int = 3) -> np.ndarray:
    """The official loader's soft mask: ``alpha > 0`` eroded with an ``erode`` x ``erode`` square, then box-blurred
    ``blur`` x ``blur``. ``(h, w)`` uint8 -> ``(h, w)`` float32 in [0, 1]; 0 or 1 turn a step off."""
    mask = (alpha > 0).astype(np.float32)
    if erode > 1:
        mask = cv2.erode(mask, np.ones((erode, erode), np.uint8))
    if blur > 1:
        mask = cv2.blur(mask, (blur, blur), borderType=cv2.BORDER_CONSTANT)
    return mask


def centred_canvas(rgb: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` ``(h, w, 3)`` uint8 and ``mask`` ``(h, w)`` float32 centred on canvases of ``size`` ``(H, W)``
    (a part larger than the canvas keeps its centre): ``(H, W, 3)`` uint8 and ``(H, W)`` float32, zero around it."""
    H, W = size
    h, w = mask.shape
    canvas, cmask = np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.float32)
    y0, x0 = (H - h) // 2, (W - w) // 2
    cy, cx = max(y0, 0), max(x0, 0)
    py, px = cy - y0, cx - x0
    hh, ww = min(h - py, H - cy), min(w - px, W - cx)
    canvas[cy:cy + hh, cx:cx + ww] = rgb[py:py + hh, px:px + ww]
    cmask[cy:cy + hh, cx:cx + ww] = mask[py:py + hh, px:px + ww]
    return canvas, cmask


@dataclass(frozen=True)
class PartPaster:
    """The per-sample extras of ASDA (:class:`~robustpose.train.data.SampleExtras`): part canvases for the device.

    Adds to each item ``part_image`` ``(N, 3, H, W)`` float32 (normalised, 0 off the mask), ``part_mask``
    ``(N, 1, H, W)`` float32 in [0, 1], ``part_type`` ``(N,)`` int64 (index into ``types``; -1: empty slot) and
    ``part_rt`` ``(N, 3)`` float32 uniform in (-0.5, 0.5) (the ``--random`` baseline's ``(r, t_x, t_y)``).

    Attributes:
        pool: the part pool.
        input_size: crop ``(H, W)``.
        types: the generator's part types (its output order); the pool's types must be among them.
        num_parts: slots per sample (``N``; the code's NUM_AUG).
        coco: COCO-format data (no paste with fewer than ``min_visible`` visible joints).
        min_visible: see ``coco``.
        erode, blur: soft-mask kernels.
    """

    pool: PartPool
    input_size: tuple[int, int]
    types: tuple[str, ...]
    num_parts: int = 1
    coco: bool = True
    min_visible: int = 8
    erode: int = 3
    blur: int = 3
    name: str = "asda-parts"

    def pastes(self, params: CropParams, sample: Sample) -> bool:
        """Whether this crop gets parts: not after a half-body transform, not with too few visible joints (COCO)."""
        if params.half_body:
            return False
        return not (self.coco and int((sample.joints[:, 2] > 0).sum()) < self.min_visible)

    def body_diagonal(self, params: CropParams, sample: Sample) -> float:
        """Diagonal in crop pixels of the person's box: the crop is the box padded by 1.25 and scaled by the random
        scale factor, so the box is ``input_size / factor / 1.25``."""
        factor = float(params.scale[1] / sample.scale[1])
        h, w = self.input_size
        return math.hypot(h, w) / factor / 1.25

    def __call__(self, item: dict[str, torch.Tensor], params: CropParams, sample: Sample,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
        H, W = self.input_size
        n = self.num_parts
        images = np.zeros((n, H, W, 3), np.uint8)
        masks = np.zeros((n, H, W), np.float32)
        kinds = np.full(n, -1, np.int64)
        rt = rng.uniform(-0.5, 0.5, (n, 3)).astype(np.float32)
        if self.pastes(params, sample):
            by_type = self.pool.by_type
            names = list(by_type)
            diag = self.body_diagonal(params, sample)
            for slot in range(n):
                kind = names[int(rng.integers(len(names)))]
                instances = by_type[kind]
                rgba = self.pool.load_part(instances[int(rng.integers(len(instances)))])
                target = diag * self.pool.priors[kind] * rng.uniform(*SIZE_JITTER)
                f = target / math.hypot(*rgba.shape[:2])
                size = (max(1, round(rgba.shape[1] * f)), max(1, round(rgba.shape[0] * f)))
                mask = cv2.resize(soft_mask(rgba[..., 3], self.erode, self.blur), size, interpolation=cv2.INTER_LINEAR)
                rgb = cv2.resize(np.ascontiguousarray(rgba[..., :3]), size, interpolation=cv2.INTER_LINEAR)
                images[slot], masks[slot] = centred_canvas(rgb, mask, (H, W))
                kinds[slot] = self.types.index(kind)
        parts = torch.stack([normalize(im) for im in images]) * torch.from_numpy(masks[:, None] > 0)
        return {"part_image": parts, "part_mask": torch.from_numpy(masks[:, None]),
                "part_type": torch.from_numpy(kinds), "part_rt": torch.from_numpy(rt)}


def theta_from(rt: torch.Tensor) -> torch.Tensor:
    """Affine matrices ``(..., 2, 3)`` of ``(r, t_x, t_y)`` ``(..., 3)`` (each in (-0.5, 0.5)): rotation by ``pi r``
    (within +-pi/2) and translation by ``2.4 t`` grid units (within +-1.2)."""
    a = ROTATION_RANGE * rt[..., 0]
    cos, sin = torch.cos(a), torch.sin(a)
    tx, ty = TRANSLATION_RANGE * rt[..., 1], TRANSLATION_RANGE * rt[..., 2]
    return torch.stack([torch.stack([cos, sin, tx], -1), torch.stack([-sin, cos, ty], -1)], -2)


def select_rt(per_type: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
    """Each slot's ``(r, t_x, t_y)`` from the generator's per-type output ``(B, T, 3)`` and the slots' types
    ``(B, N)`` (empty slots, -1, take type 0's; :func:`paste` ignores them): ``(B, N, 3)``."""
    index = types.clamp(min=0)[..., None].expand(-1, -1, 3)
    return torch.gather(per_type, 1, index)


def warp(src: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of ``src`` ``(M, C, H, W)`` at the grid of ``theta`` ``(M, 2, 3)``, zero outside: what
    ``F.grid_sample(src, F.affine_grid(theta, src.shape, align_corners=False), align_corners=False)`` computes (the
    convention is pinned; tests compare with it), written in pixel coordinates so that the identity reproduces
    ``src`` exactly (grid_sample's normalised round trip is off by ~1e-5). Differentiable in ``theta``."""
    m, c, h, w = src.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    xs = (torch.arange(w, dtype=theta.dtype, device=theta.device) - cx).view(1, 1, w)
    ys = (torch.arange(h, dtype=theta.dtype, device=theta.device) - cy).view(1, h, 1)
    a = theta.view(m, 6, 1, 1).unbind(1)
    sx = a[0] * xs + a[1] * (w / h) * ys + (a[2] * (w / 2) + cx)
    sy = a[3] * (h / w) * xs + a[4] * ys + (a[5] * (h / 2) + cy)
    x0, y0 = sx.floor(), sy.floor()
    fx, fy = sx - x0, sy - y0
    flat = src.reshape(m, c, h * w)
    out = src.new_zeros(m, c, h, w)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).view(m, 1, h * w).expand(m, c, h * w)
            taps = torch.gather(flat, 2, index).view(m, c, h, w)
            out = out + taps * (wx * wy * inside).unsqueeze(1).to(src.dtype)
    return out


def paste(images: torch.Tensor, parts: torch.Tensor, masks: torch.Tensor, types: torch.Tensor,
          rt: torch.Tensor) -> torch.Tensor:
    """Composite the warped parts onto the images, slot after slot, in normalised space.

    Parameters
    ----------
    images : (B, 3, H, W) float, normalised crops
    parts : (B, N, 3, H, W) float, centred part canvases (:class:`PartPaster`)
    masks : (B, N, 1, H, W) float in [0, 1]
    types : (B, N) int, -1 for an empty slot (the image is left as it is there)
    rt : (B, N, 3) float, each slot's ``(r, t_x, t_y)`` in (-0.5, 0.5); gradients flow into it

    Returns
    -------
    (B, 3, H, W) float
    """
    b, n = types.shape
    h, w = images.shape[-2:]
    theta = theta_from(rt.reshape(b * n, 3).float())
    stacked = torch.cat([parts, masks], dim=2).reshape(b * n, 4, h, w).float()
    warped = warp(stacked, theta).reshape(b, n, 4, h, w)
    out = images
    for slot in range(n):
        part, mask = warped[:, slot, :3], warped[:, slot, 3:]
        pasted = out * (1 - mask) + part * mask
        out = torch.where((types[:, slot] >= 0).view(b, 1, 1, 1), pasted, out)
    return out
