"""Pose models (SimpleBaseline, HRNet) with the official state-dict names, their registry, and checkpoint I/O."""

from .checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    LoadedModel,
    OnnxHeatmapModel,
    canonical_keys,
    compare_state_dict,
    export_onnx,
    export_torchscript,
    extract_state_dict,
    infer_architecture,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    torch_load,
)
from .hrnet import PoseHighResolutionNet, hrnet_stages
from .metadata import IMAGENET_MEAN, IMAGENET_STD, CheckpointMeta, default_meta
from .registry import MODELS, create_model, list_models, register_model
from .resnet import PoseResNet, apply_feature_mask

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "CheckpointError",
    "CheckpointMeta",
    "CheckpointMismatchError",
    "LoadedModel",
    "OnnxHeatmapModel",
    "PoseHighResolutionNet",
    "PoseResNet",
    "apply_feature_mask",
    "canonical_keys",
    "compare_state_dict",
    "create_model",
    "default_meta",
    "export_onnx",
    "export_torchscript",
    "extract_state_dict",
    "hrnet_stages",
    "infer_architecture",
    "list_models",
    "load_checkpoint",
    "load_weights",
    "register_model",
    "save_checkpoint",
    "torch_load",
]
