"""HRNet (Sun et al. 2019, ``pose_hrnet``) for top-down heatmap regression.

Attribute names are checkpoint API: they reproduce the state_dict keys of the official ``pose_hrnet``
(``conv1/bn1/conv2/bn2``, ``layer1``, ``transition1..3``, ``stage2..4`` with ``branches`` and ``fuse_layers``,
``final_layer``), so official ``pose_hrnet_w32/w48`` files load strictly
(see ``shared/reference/checkpoint_keys/pose_hrnet_w32.txt``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .resnet import BLOCKS, BN_MOMENTUM, Bottleneck, apply_feature_mask, make_res_layer


@dataclass(frozen=True)
class StageSpec:
    """One HRNet stage: ``num_modules`` HighResolutionModules over ``len(channels)`` branches."""

    num_modules: int
    blocks: tuple[int, ...]
    channels: tuple[int, ...]
    block: str = "basic"


def hrnet_stages(width: int, stage_modules: Sequence[int] = (1, 4, 3), num_blocks: int = 4) -> tuple[StageSpec, ...]:
    """Stages 2..4 of HRNet-W``width``: branch widths ``width * (1, 2, 4, 8)``, ``num_blocks`` blocks per branch.

    The official COCO/MPII configs use ``stage_modules=(1, 4, 3)`` and ``num_blocks=4``.
    """
    widths = tuple(width * 2**i for i in range(4))
    return tuple(
        StageSpec(n, (num_blocks,) * (k + 2), widths[: k + 2]) for k, n in enumerate(stage_modules)
    )


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of residual blocks, then all-to-all fusion by summation (``fuse_layers[i][j]``: j -> i)."""

    def __init__(self, in_channels: Sequence[int], spec: StageSpec, multi_scale_output: bool = True) -> None:
        super().__init__()
        block = BLOCKS[spec.block]
        n = len(spec.channels)
        if len(in_channels) != n or len(spec.blocks) != n:
            raise ValueError(f"branch count mismatch: in_channels {tuple(in_channels)}, spec {spec}")
        self.branches = nn.ModuleList(
            make_res_layer(block, in_channels[b], spec.channels[b], spec.blocks[b]) for b in range(n)
        )
        self.out_channels = [c * block.expansion for c in spec.channels]
        ch = self.out_channels
        fuse: list[nn.ModuleList] = []
        if n > 1:
            for i in range(n if multi_scale_output else 1):
                row: list[nn.Module | None] = []
                for j in range(n):
                    if j > i:
                        up = _conv_bn(ch[j], ch[i], 1, 1, relu=False)
                        up.append(nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
                        row.append(up)
                    elif j == i:
                        row.append(None)
                    else:
                        steps = [_conv_bn(ch[j], ch[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                        steps.append(_conv_bn(ch[j], ch[i], 3, 2, relu=False))
                        row.append(nn.Sequential(*steps))
                fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if len(self.fuse_layers) == 0:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j != i:
                    y = y + layer(xs[j])
            out.append(self.relu(y))
        return out


def _transition(pre: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Adapt ``pre`` branch widths to ``cur``; new branches are stride-2 chains from the lowest-resolution branch."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(_conv_bn(pre[i], c, 3, 1, relu=True) if c != pre[i] else None)
        else:
            steps = [_conv_bn(pre[-1], pre[-1], 3, 2, relu=True) for _ in range(i - len(pre))]
            steps.append(_conv_bn(pre[-1], c, 3, 2, relu=True))
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class PoseHighResolutionNet(nn.Module):
    """HRNet: a stride-4 stem, ``layer1`` (4 Bottlenecks to 256 channels), stages 2-4, a 1x1 head on branch 0.

    Input ``(B, 3, H, W)`` float (normalised image); output ``(B, num_joints, H/4, W/4)`` heatmaps.
    """

    def __init__(self, stages: Sequence[StageSpec] = hrnet_stages(32), num_joints: int = 17,
                 final_conv_kernel: int = 1, stem_width: int = 64, layer1_blocks: int = 4) -> None:
        super().__init__()
        if len(stages) != 3:
            raise ValueError(f"HRNet needs 3 stage specs (stages 2, 3, 4), got {len(stages)}")
        self.conv1 = nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem_width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_res_layer(Bottleneck, stem_width, 64, layer1_blocks)
        pre = [64 * Bottleneck.expansion]
        for k, spec in enumerate(stages):
            cur = [c * BLOCKS[spec.block].expansion for c in spec.channels]
            setattr(self, f"transition{k + 1}", _transition(pre, cur))
            modules = []
            for m in range(spec.num_modules):
                last = k == len(stages) - 1 and m == spec.num_modules - 1
                module = HighResolutionModule(cur, spec, multi_scale_output=not last)
                modules.append(module)
                cur = module.out_channels
            setattr(self, f"stage{k + 2}", nn.Sequential(*modules))
            pre = cur
        self.final_layer = nn.Conv2d(pre[0], num_joints, final_conv_kernel, stride=1,
                                     padding=1 if final_conv_kernel == 3 else 0)

    def _stages(self, x: torch.Tensor, feature_mask: torch.Tensor | None, last: int) -> list[torch.Tensor]:
        """Branch outputs after transition ``last`` (``last`` 3: the four branches entering stage 4) or, for
        ``last`` 4, after stage 4; every stage's and transition's outputs times ``feature_mask``."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [apply_feature_mask(self.layer1(x), feature_mask)]
        for k in range(3):
            transition = getattr(self, f"transition{k + 1}")
            xs = [
                xs[i] if t is None else t(xs[min(i, len(xs) - 1)])
                for i, t in enumerate(transition)
            ]
            xs = [apply_feature_mask(b, feature_mask) for b in xs]
            if k + 1 == last:
                return xs
            xs = [apply_feature_mask(b, feature_mask) for b in getattr(self, f"stage{k + 2}")(xs)]
        return xs

    def stage_features(self, x: torch.Tensor, feature_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The four branches entering stage 4 (strides 4, 8, 16, 32: stage 3's outputs and the new lowest-resolution
        branch), each times ``feature_mask`` ``(B, 1, h, w)`` nearest-upsampled to it; stage 4 and the head are not
        run."""
        return self._stages(x, feature_mask, last=3)

    def forward(self, x: torch.Tensor, feature_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Heatmaps of ``x``; ``feature_mask`` (training-time occlusion only) multiplies every stage's and
        transition's branch outputs."""
        return self.final_layer(self._stages(x, feature_mask, last=4)[0])
