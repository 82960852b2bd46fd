"""SimpleBaseline (Xiao et al. 2018, ``pose_resnet``): a ResNet backbone followed by deconvolution layers.

Attribute names are checkpoint API: they reproduce the state_dict keys of the official
``pose_resnet`` (``conv1``, ``bn1``, ``layer1..4``, ``deconv_layers.{0,1,3,4,6,7}``, ``final_layer``), so official
``pose_resnet_*.pth`` files load strictly (see ``shared/reference/checkpoint_keys/pose_resnet_50.txt``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.1


def apply_feature_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` times ``mask`` ``(B, 1, h, w)`` nearest-upsampled to ``(H, W)``; ``x`` when ``mask`` is None.

    The grid mask of Peng et al.'s hierarchical occlusion: one coarse mask, the same cells zeroed at every level.
    """
    if mask is None:
        return x
    return x * F.interpolate(mask.to(x.dtype), size=x.shape[-2:], mode="nearest")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carrying the stride, "pytorch" style) -> 1x1 x4 bottleneck (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS: dict[str, type[BasicBlock | Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_res_layer(block: type[BasicBlock | Bottleneck], inplanes: int, planes: int, blocks: int,
                   stride: int = 1) -> nn.Sequential:
    """A ResNet stage of ``blocks`` blocks; block 0 gets ``downsample.0`` (1x1 conv) / ``.1`` (BN) when needed."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _deconv_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 ConvTranspose2d double the size exactly."""
    table = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
    if kernel not in table:
        raise ValueError(f"deconvolution kernel {kernel} is not supported; use one of {sorted(table)}")
    return table[kernel]


class PoseResNet(nn.Module):
    """SimpleBaseline: ResNet + ``len(deconv_channels)`` stride-2 deconvolutions + a conv to ``num_joints`` heatmaps.

    Input ``(B, 3, H, W)`` float (normalised image); output ``(B, num_joints, H/4, W/4)`` heatmaps with the three
    default deconvolutions (the backbone downsamples by 32, each deconvolution upsamples by 2).

    ``skip_connections=True`` (not in SimpleBaseline; off by default, so official weights load unchanged) adds to the
    output of deconvolution ``k`` a 1x1 conv + BN of the backbone stage of the same resolution (layer3, layer2,
    layer1), the lateral connections of an FPN / CPN GlobalNet. At small inputs the plain model has to carry every
    joint position through a 4x3 map; the laterals give the decoder the high-resolution features back, and a small
    model learns much faster (``docs/training.md``).
    """

    def __init__(self, block: str = "bottleneck", layers: Sequence[int] = (3, 4, 6, 3), num_joints: int = 17,
                 deconv_channels: Sequence[int] = (256, 256, 256), deconv_kernels: Sequence[int] = (4, 4, 4),
                 deconv_with_bias: bool = False, final_conv_kernel: int = 1, stem_width: int = 64,
                 skip_connections: bool = False) -> None:
        super().__init__()
        if skip_connections and len(deconv_channels) != 3:
            raise ValueError(f"skip_connections needs 3 deconvolutions (one per backbone stage), got "
                             f"{len(deconv_channels)}")
        if len(deconv_channels) != len(deconv_kernels):
            raise ValueError(f"deconv_channels {tuple(deconv_channels)} and deconv_kernels {tuple(deconv_kernels)} "
                             "must have the same length")
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {', '.join(BLOCKS)}")
        block_cls = BLOCKS[block]
        w = stem_width
        self.conv1 = nn.Conv2d(3, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = w
        stage_channels = []
        for i, (mult, n) in enumerate(zip((1, 2, 4, 8), layers)):
            stage = make_res_layer(block_cls, inplanes, w * mult, n, stride=1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", stage)
            inplanes = w * mult * block_cls.expansion
            stage_channels.append(inplanes)
        self.skip_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes, momentum=BN_MOMENTUM))
            for cin, planes in zip(stage_channels[2::-1], deconv_channels)
        ) if skip_connections else None
        deconv: list[nn.Module] = []
        for planes, kernel in zip(deconv_channels, deconv_kernels):
            padding, output_padding = _deconv_padding(kernel)
            deconv += [
                nn.ConvTranspose2d(inplanes, planes, kernel, stride=2, padding=padding,
                                   output_padding=output_padding, bias=deconv_with_bias),
                nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
            inplanes = planes
        self.deconv_layers = nn.Sequential(*deconv)
        self.final_layer = nn.Conv2d(inplanes, num_joints, final_conv_kernel, stride=1,
                                     padding=1 if final_conv_kernel == 3 else 0)

    def stage_features(self, x: torch.Tensor, feature_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The backbone's stage outputs ``[layer1, layer2, layer3, layer4]`` (strides 4, 8, 16, 32), each times
        ``feature_mask`` ``(B, 1, h, w)`` nearest-upsampled to it (:func:`apply_feature_mask`); the deconvolution
        head is not run."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for k in range(1, 5):
            x = apply_feature_mask(getattr(self, f"layer{k}")(x), feature_mask)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, feature_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Heatmaps of ``x``; ``feature_mask`` (training-time occlusion only) multiplies every stage output."""
        c1, c2, c3, x = self.stage_features(x, feature_mask)
        if self.skip_layers is None:
            return self.final_layer(self.deconv_layers(x))
        for k, (lateral, c) in enumerate(zip(self.skip_layers, (c3, c2, c1))):
            x = self.deconv_layers[3 * k:3 * k + 3](x) + lateral(c)
        return self.final_layer(x)
