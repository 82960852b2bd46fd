"""Validation during training: top-down predictions on the training crops' ground-truth boxes, scored by COCO AP.

It batches the validation :class:`~robustpose.train.data.TopDownDataset` (no augmentation) and decodes with
:mod:`robustpose.inference` (argmax + quarter offset or DARK, flip fusion with the 1-px shift). Full evaluation with
detections and the -C sets is ``robustpose eval --ckpt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from robustpose.inference.decode import decode_heatmaps, fuse_flipped
from robustpose.inference.transforms import PIXEL_STD, heatmap_to_image
from robustpose.metrics.coco import CocoKeypointEvaluator
from robustpose.metrics.postprocess import topdown_postprocess

from .data import TopDownDataset


@torch.no_grad()
def predict(model: nn.Module, dataset: TopDownDataset, device: torch.device, batch_size: int = 64,
            flip_test: bool = False, workers: int = 0, decode: str = "quarter") -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of every sample of ``dataset`` (built with ``augment=None``) in image pixels, the heatmaps
    decoded by ``decode`` (:func:`robustpose.inference.decode.decode_heatmaps`, DARK blurring by the targets' sigma).

    Returns
    -------
    coords : (N, J, 2) float64 image pixels
    scores : (N, J) float64 heatmap peaks
    """
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    heatmaps = []
    for batch in loader:
        images = batch["image"].to(device)
        out = model(images).float()
        if flip_test:
            out = fuse_flipped(out, model(images.flip(-1)).float(), dataset.kset.flip_pairs)
        heatmaps.append(out.cpu().numpy())
    model.train(was_training)
    coords, maxvals = decode_heatmaps(np.concatenate(heatmaps), decode, dataset.sigma)
    centers = np.stack([s.center for s in dataset.samples])
    scales = np.stack([s.scale for s in dataset.samples])
    return heatmap_to_image(coords, centers, scales, dataset.heatmap_size), maxvals


def coco_results(dataset: TopDownDataset, coords: np.ndarray, scores: np.ndarray) -> list[dict]:
    """COCO keypoint results (ground-truth boxes, box score 1, HRNet rescoring and OKS-NMS at 0.9)."""
    people = [{"image_id": s.image_id, "keypoints": np.concatenate([coords[i], scores[i][:, None]], 1).ravel(),
               "box_score": 1.0, "area": float(np.prod(s.scale * PIXEL_STD))} for i, s in enumerate(dataset.samples)]
    return topdown_postprocess(people)


def coco_ap(ann_file: str | Path, dataset: TopDownDataset, coords: np.ndarray, scores: np.ndarray,
            rules: str = "coco") -> dict[str, float]:
    """The 10 COCO keypoint stats (``AP``, ``AP50``...) of the predictions against ``ann_file``."""
    gt = json.loads(Path(ann_file).read_text())
    return CocoKeypointEvaluator(gt, backend="pycocotools", rules=rules).evaluate(coco_results(dataset, coords,
                                                                                                   scores))


def pck(dataset: TopDownDataset, coords: np.ndarray, threshold: float = 0.1) -> float:
    """Share of labelled joints within ``threshold`` x the box diagonal (a format-free validation score, used for
    MPII where the official PCKh needs the head boxes of ``gt_valid.mat``)."""
    hits, total = 0, 0
    for i, s in enumerate(dataset.samples):
        vis = s.joints[:, 2] > 0
        d = np.linalg.norm(coords[i][vis] - s.joints[vis, :2], axis=1)
        hits += int((d <= threshold * np.linalg.norm(s.scale * PIXEL_STD / 1.25)).sum())
        total += int(vis.sum())
    return hits / max(total, 1)
