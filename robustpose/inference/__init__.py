"""Top-down inference with HRNet / MMPose semantics: boxes, affine crops, flip test, decoding, image sources."""

from .decode import DECODERS, argmax_refined, dark_refined, decode_heatmaps, fuse_flipped
from .people import People, coco_gt_people, detection_people, mpii_people
from .topdown import (
    InferenceConfig,
    Predictions,
    StageTimes,
    coco_people_records,
    heatmaps,
    mpii_records,
    normalise,
    predict,
    resolve_device,
)
from .transforms import (
    PIXEL_STD,
    affine_matrix,
    box_to_center_scale,
    crop_person,
    heatmap_to_image,
    mpii_center_scale,
    sanitize_box,
)

__all__ = [
    "DECODERS",
    "PIXEL_STD",
    "InferenceConfig",
    "People",
    "Predictions",
    "StageTimes",
    "affine_matrix",
    "argmax_refined",
    "box_to_center_scale",
    "coco_gt_people",
    "coco_people_records",
    "dark_refined",
    "decode_heatmaps",
    "crop_person",
    "detection_people",
    "fuse_flipped",
    "heatmap_to_image",
    "heatmaps",
    "mpii_center_scale",
    "mpii_people",
    "mpii_records",
    "normalise",
    "predict",
    "resolve_device",
    "sanitize_box",
]
