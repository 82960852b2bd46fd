"""ASDA's generator: a ResNet-18 trunk on the normalised crop and a grouped head giving each part type its own
``(r, t_x, t_y)`` in (-0.5, 0.5) (the official ``lib/models`` STN generator, written with ``torch.nn``: no
torchvision)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from robustpose.models.checkpoint import load_weights, torch_load
from robustpose.models.resnet import BN_MOMENTUM, BasicBlock, make_res_layer

HEAD_WIDTH = 128  # hidden channels per part type (the code's)


class PartGenerator(nn.Module):
    """ResNet-18 (conv1 to global average pooling; stage widths ``width * (1, 2, 4, 8)``) -> 1x1 conv to
    ``HEAD_WIDTH * T`` -> ReLU -> grouped 1x1 conv (``T`` groups) to ``3 T``, zero-initialised -> sigmoid - 0.5.

    The zero-initialised last conv makes a fresh generator output exactly 0: the identity transform. Type ``t``'s
    output depends only on its own ``HEAD_WIDTH`` hidden channels (the grouped conv), so each type's head learns
    only from the parts of that type. At ``width=64`` the trunk's parameter names are torchvision's
    ``resnet18``'s, so its ImageNet weights load with :meth:`load_trunk`.

    Shape: ``(B, 3, H, W)`` -> ``(B, T, 3)``, ``(r, t_x, t_y)`` per type, each in (-0.5, 0.5).
    """

    def __init__(self, num_types: int = 25, width: int = 64, head_width: int = HEAD_WIDTH) -> None:
        super().__init__()
        if num_types < 1 or width < 1 or head_width < 1:
            raise ValueError(f"num_types, width and head_width must be >= 1, got {num_types}, {width}, {head_width}")
        self.num_types = num_types
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = width
        for i, mult in enumerate((1, 2, 4, 8)):
            setattr(self, f"layer{i + 1}", make_res_layer(BasicBlock, inplanes, width * mult, 2, 1 if i == 0 else 2))
            inplanes = width * mult
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Conv2d(inplanes, head_width * num_types, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(head_width * num_types, 3 * num_types, 1, groups=num_types))
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head[2].weight)
        nn.init.zeros_(self.head[2].bias)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 8 width, 1, 1)`` pooled features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.trunk(x)).flatten(1).view(x.shape[0], self.num_types, 3)
        return torch.sigmoid(out) - 0.5

    def trunk_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}

    def load_trunk(self, path: str | Path) -> None:
        """Load a ResNet-18 state dict (torchvision's ``resnet18`` keys; a ``state_dict`` entry, ``module.``
        prefixes and the ``fc.`` classifier are accepted and dropped) into the trunk; the head keeps its
        initialisation. Raises ``CheckpointMismatchError`` naming the keys that do not fit."""
        state = torch_load(path)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")}

        class Trunk(nn.Module):  # the trunk's parameters alone, for a strict comparison
            def __init__(self, owner: PartGenerator) -> None:
                super().__init__()
                for name in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4"):
                    setattr(self, name, getattr(owner, name))

        load_weights(Trunk(self), state, arch="ResNet-18 trunk", origin=str(path))
