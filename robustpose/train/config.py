"""Training configuration: dataclasses validated from YAML / presets, with command-line overrides.

Resolution order: dataclass defaults < dataset defaults (augmentation ranges) < ``--preset`` < ``--config`` YAML <
flags. The resolved config is written to ``RUN_DIR/config.yaml`` and stored in every checkpoint.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from robustpose.inference.decode import DECODERS

DATASETS = ("coco", "mpii", "ochuman", "synth")
# Which weights best.pth holds: the last epoch's, the best on the clean validation split, or the best mean score on
# the validation split under the 4 held-out corruptions (never the 15 benchmark ones): docs/training.md.
SELECT_RULES = ("final", "clean", "holdout-c")

# Augmentation ranges per dataset, as in the HRNet configs (COCO: scale 0.35, rotation 45, half-body 0.3;
# MPII: 0.25 / 30). OCHuman has no training protocol of its own: COCO's ranges.
DATASET_AUGMENT: dict[str, dict[str, float]] = {
    "coco": {"scale_factor": 0.35, "rotation_factor": 45.0, "half_body_prob": 0.3},
    "ochuman": {"scale_factor": 0.35, "rotation_factor": 45.0, "half_body_prob": 0.3},
    "mpii": {"scale_factor": 0.25, "rotation_factor": 30.0, "half_body_prob": 0.0},
    "synth": {"scale_factor": 0.25, "rotation_factor": 30.0, "half_body_prob": 0.0},
}


@dataclass
class DataConfig:
    """Where the data is and how crops are made.

    ``root`` is used for ``synth`` (a ``robustpose synth`` folder); otherwise give the annotation files and image
    folders. ``input_size`` / ``heatmap_size`` are ``[height, width]``.
    """

    dataset: str = "synth"
    root: str = ""
    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""
    val_images: str = ""
    input_size: list[int] = field(default_factory=lambda: [256, 192])
    heatmap_size: list[int] = field(default_factory=lambda: [64, 48])
    sigma: float = 2.0
    scale_factor: float | None = None
    rotation_factor: float | None = None
    rotation_prob: float = 0.6
    flip: bool = True
    half_body_prob: float | None = None
    workers: int = 0

    def resolved_paths(self) -> dict[str, Path]:
        """train_ann, train_images, val_ann, val_images; a synth ``root`` fills the ones left empty."""
        out = {}
        for split in ("train", "val"):
            ann, images = getattr(self, f"{split}_ann"), getattr(self, f"{split}_images")
            if self.root and not ann:
                ann = str(Path(self.root) / "annotations" / f"person_keypoints_{split}.json")
            if self.root and not images:
                images = str(Path(self.root) / "images")
            if not ann or not images:
                raise ValueError(f"data: give --data-root (a robustpose synth folder) or --{split}-ann and "
                                 f"--{split}-images")
            out[f"{split}_ann"], out[f"{split}_images"] = Path(ann), Path(images)
        return out


@dataclass
class ModelConfig:
    """A registry architecture (``robustpose.models.list_models()``) and constructor overrides."""

    arch: str = "simplebaseline_res50"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Adam with step decay: the learning rate is multiplied by ``gamma`` at each epoch in ``milestones``."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [170, 200])
    gamma: float = 0.1


@dataclass
class TrainConfig:
    """Everything a training run needs; ``out`` is the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    method: str = "standard"
    # The method's own settings dataclass as a dict (robustpose.train.method): recorded so --resume restores it.
    method_settings: dict[str, Any] = field(default_factory=dict)
    epochs: int = 210
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    amp: bool = True
    # NHWC tensors: oneDNN's CPU convolutions and CUDA tensor cores both run faster on them (1.11x the cpu-synth
    # preset's steps/s here, benchmarks/train.py); numerics are those of the same ops in the other layout.
    channels_last: bool = True
    flip_test: bool = False
    # Under torchrun: batch norms normalise with the global batch's statistics (robustpose.train.distributed), so W
    # processes of batch B train as one process of batch W*B; off, each process normalises its own B samples.
    sync_bn: bool = False
    # Heatmap decoder of validation, recorded in the checkpoints for eval (robustpose.inference.decode.DECODERS).
    decode: str = "quarter"
    val_every: int = 1
    select: str = "clean"
    out: str = ""

    def validate(self) -> TrainConfig:
        """Check values; raises ``ValueError`` naming the parameter and the fix."""
        if self.data.dataset not in DATASETS:
            raise ValueError(f"data.dataset must be one of {DATASETS}, got {self.data.dataset!r}")
        for name in ("input_size", "heatmap_size"):
            v = getattr(self.data, name)
            if len(v) != 2 or min(v) <= 0:
                raise ValueError(f"data.{name} must be [height, width] with positive entries, got {v!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: PyTorch's default), got {self.threads}")
        if self.decode not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS}, got {self.decode!r}")
        if not math.isfinite(self.optim.lr) or self.optim.lr <= 0:
            raise ValueError(f"optim.lr must be a finite number > 0, got {self.optim.lr}")
        if self.optim.milestones != sorted(set(self.optim.milestones)) or any(m < 1 for m in self.optim.milestones):
            raise ValueError(f"optim.milestones must be strictly ascending epochs >= 1, got {self.optim.milestones}")
        if self.select not in SELECT_RULES:
            raise ValueError(f"select must be one of {', '.join(SELECT_RULES)}, got {self.select!r}")
        if not self.out:
            raise ValueError("out (the run directory) is required: pass --out RUN_DIR")
        return self

    def augment_params(self) -> dict[str, float]:
        """The augmentation ranges: explicit values, else the dataset's defaults."""
        base = DATASET_AUGMENT[self.data.dataset]
        return {k: (getattr(self.data, k) if getattr(self.data, k) is not None else v) for k, v in base.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, recursing into nested dataclasses; unknown keys are errors."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else None
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{name} must be a mapping, got {value!r}")
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        else:
            _check_type(f"{where}.{name}", default if default is not None else known[name].default, value)
            kwargs[name] = value
    return cls(**kwargs)


def _check_type(key: str, default: Any, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` has the type of the field's ``default`` (an int is a float, a path a
    string, a tuple a list; a bool is no number); fields whose default is None are not checked."""
    kind = type(default)
    accepted = {bool: (bool,), int: (int,), float: (int, float), str: (str, os.PathLike), list: (list, tuple),
                dict: (dict,)}.get(kind)
    if accepted is None:
        return
    if not isinstance(value, accepted) or (isinstance(value, bool) and kind is not bool):
        what = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
                dict: "a mapping"}[kind]
        raise ValueError(f"{key} must be {what}, got {value!r}")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``None`` values in ``override`` are skipped (unset flags)."""
    out = dict(base)
    for k, v in override.items():
        if v is None:
            continue
        base_v = out.get(k)
        out[k] = merge(base_v if isinstance(base_v, dict) else {}, v) if isinstance(v, dict) else v
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict, with errors naming the file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"config {path} must be a mapping at the top level")
    return doc


def resolve_config(*layers: dict[str, Any]) -> TrainConfig:
    """Merge ``layers`` (later wins) into a validated :class:`TrainConfig`.

    ``model.kwargs`` belong to one architecture: a layer that sets ``model.kwargs`` or another ``model.arch``
    replaces the earlier kwargs instead of merging into them.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        model = layer.get("model") or {}
        earlier = merged.get("model") or {}
        if model.get("kwargs") is not None or model.get("arch") not in (None, earlier.get("arch")):
            merged = {**merged, "model": {k: v for k, v in earlier.items() if k != "kwargs"}}
        merged = merge(merged, layer)
    return _build(TrainConfig, merged, "config").validate()


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from robustpose.datasets.imageio import write_atomic

    write_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode("utf-8"))


# cpu-synth: a small model that learns SynthPose on a laptop CPU (see docs/training.md for its measured AP and time).
# The others are the official GPU configurations of the HRNet / SimpleBaseline repositories (docs/training.md "GPU
# presets"): Adam 1e-3, x0.1 at the milestones, 32 crops per GPU (the official runs used 4 GPUs), sigma 2, the
# dataset's official augmentation (DATASET_AUGMENT), validation with flip test, full precision as the official code
# trains (--amp is ours). Data paths come from the command line. Written out as literals: the CLI reads this table
# from the source without importing the package (robustpose/cli/lazy.py).
PRESETS: dict[str, dict[str, Any]] = {
    "cpu-synth": {
        "data": {"dataset": "synth", "input_size": [128, 96], "heatmap_size": [32, 24], "sigma": 2.0,
                 "rotation_factor": 15.0, "rotation_prob": 0.5, "workers": 0},
        "model": {"arch": "simplebaseline_res18",
                  "kwargs": {"stem_width": 16, "deconv_channels": [64, 64, 64], "skip_connections": True}},
        "optim": {"lr": 2e-3, "milestones": [28, 33], "gamma": 0.1},
        "epochs": 36,
        "batch_size": 16,
        "threads": 2,
        "decode": "dark",
    },
    "coco-res50-256x192": {
        "data": {"dataset": "coco", "input_size": [256, 192], "heatmap_size": [64, 48], "sigma": 2.0, "workers": 8},
        "model": {"arch": "simplebaseline_res50"}, "optim": {"lr": 1e-3, "milestones": [90, 120], "gamma": 0.1},
        "epochs": 140, "batch_size": 32, "amp": False, "flip_test": True, "decode": "quarter",
    },
    "coco-hrnet-w32-256x192": {
        "data": {"dataset": "coco", "input_size": [256, 192], "heatmap_size": [64, 48], "sigma": 2.0, "workers": 8},
        "model": {"arch": "hrnet_w32"}, "optim": {"lr": 1e-3, "milestones": [170, 200], "gamma": 0.1},
        "epochs": 210, "batch_size": 32, "amp": False, "flip_test": True, "decode": "quarter",
    },
    "mpii-res50-256x256": {
        "data": {"dataset": "mpii", "input_size": [256, 256], "heatmap_size": [64, 64], "sigma": 2.0, "workers": 8},
        "model": {"arch": "simplebaseline_res50"}, "optim": {"lr": 1e-3, "milestones": [90, 120], "gamma": 0.1},
        "epochs": 140, "batch_size": 32, "amp": False, "flip_test": True, "decode": "quarter",
    },
    "mpii-hrnet-w32-256x256": {
        "data": {"dataset": "mpii", "input_size": [256, 256], "heatmap_size": [64, 64], "sigma": 2.0, "workers": 8},
        "model": {"arch": "hrnet_w32"}, "optim": {"lr": 1e-3, "milestones": [170, 200], "gamma": 0.1},
        "epochs": 210, "batch_size": 32, "amp": False, "flip_test": True, "decode": "quarter",
    },
}
