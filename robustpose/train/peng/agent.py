"""Peng et al.'s agent network ("ASN"): reads the pose net's detached multi-level features and predicts where the
augmentation should go: scale and rotation bins (ASR head) and grid cells to occlude (AHO head).

The trunk follows the official ASN: a residual block per level, merged bottom-up (max-pool to the next level and
add) down to the coarse grid, a residual block there, then three more. The pose nets' "hierarchy" is their
``stage_features`` (:mod:`robustpose.models`): SimpleBaseline's four ResNet stages, HRNet's four branches entering
stage 4, strides 4 to 32 (the hourglass code uses the first hourglass's skip connections and neck).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Residual(nn.Module):
    """BN-ReLU-conv3x3 twice with an identity shortcut (pre-activation, as the hourglass code's residuals)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=False), nn.Conv2d(width, width, 3, padding=1),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Agent(nn.Module):
    """The agent: multi-level features in, ASR and AHO logits out.

    Args:
        in_channels: channels of each level, finest first (the pose net's ``stage_features``).
        grid: ``(gh, gw)`` of the coarse grid the levels merge to (the AHO cells).
        scale_bins, rotation_bins: ASR head sizes (the code's 7 and 7: two independent softmaxes, not a grid).
        width: trunk width (the code's 256).

    ``forward(features)`` returns ``{"scale": (B, m), "rotation": (B, n), "occlusion": (B, gh * gw)}`` logits
    (occlusion cells row-major).
    """

    def __init__(self, in_channels: list[int] | tuple[int, ...], grid: tuple[int, int], scale_bins: int = 7,
                 rotation_bins: int = 7, width: int = 256) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 1), Residual(width)) for c in in_channels)
        self.merged = nn.Sequential(*(Residual(width) for _ in range(4)))
        self.scale_head = nn.Linear(width, scale_bins)
        self.rotation_head = nn.Linear(width, rotation_bins)
        self.occlusion_head = nn.Conv2d(width, 1, 1)
        reset_like_torch03(self)

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = None
        for lateral, f in zip(self.lateral, features):
            y = lateral(f.float())
            x = y if x is None else F.adaptive_max_pool2d(x, y.shape[-2:]) + y
        x = self.merged(F.adaptive_max_pool2d(x, self.grid))
        pooled = x.mean(dim=(2, 3))
        return {"scale": self.scale_head(pooled), "rotation": self.rotation_head(pooled),
                "occlusion": self.occlusion_head(x).flatten(1)}


def reset_like_torch03(module: nn.Module) -> None:
    """The official code's initialisation (PyTorch 0.3 defaults): conv / linear weights and biases
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), batch-norm weights U(0, 1) and biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            bound = 1 / math.sqrt(m.weight[0].numel())
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -bound, bound)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0, 1)
            nn.init.zeros_(m.bias)
