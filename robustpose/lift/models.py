"""2D-to-3D lifters: Martinez et al.'s fully connected baseline and the single-frame VideoPose3D.

Both map ``(B, 16, 2)`` width-normalised keypoints to ``(B, 16, 3)`` root-relative camera-coordinate joints in
metres. Registry: :data:`LIFTERS` (name -> class); the CPU benchmark uses width 256 instead of the papers' 1024.
"""

from __future__ import annotations

from torch import nn

from .skeleton import NUM_JOINTS


class _Residual(nn.Module):
    """Two ``Linear -> BN -> ReLU -> Dropout`` layers and a skip (Martinez et al.'s block)."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.body(x)


class MartinezLifter(nn.Module):
    """"A simple yet effective baseline" (Martinez et al., ICCV 2017): Linear 32 -> width, BN, ReLU, dropout,
    ``stages`` residual blocks, Linear width -> 48. Kaiming-initialised linear layers, as the official code."""

    def __init__(self, width: int = 1024, stages: int = 2, dropout: float = 0.5, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.net = nn.Sequential(nn.Linear(num_joints * 2, width), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.Dropout(dropout), *[_Residual(width, dropout) for _ in range(stages)],
                                 nn.Linear(width, num_joints * 3))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        return self.net(x.flatten(1)).view(-1, self.num_joints, 3)


class VideoPose3D1f(nn.Module):
    """VideoPose3D (Pavllo et al., CVPR 2019) with a receptive field of one frame, as PoseAug trains it: its
    1-wide temporal convolutions are linear layers. Expand (no bias) -> BN -> ReLU -> dropout, ``blocks`` residual
    blocks of two such layers (momentum 0.1 BN), a shrink layer to 48 outputs."""

    def __init__(self, width: int = 1024, blocks: int = 3, dropout: float = 0.25,
                 num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.num_joints = num_joints

        def layer(i: int, o: int) -> list[nn.Module]:
            return [nn.Linear(i, o, bias=False), nn.BatchNorm1d(o, momentum=0.1), nn.ReLU(), nn.Dropout(dropout)]

        self.expand = nn.Sequential(*layer(num_joints * 2, width))
        self.blocks = nn.ModuleList(nn.Sequential(*layer(width, width), *layer(width, width)) for _ in range(blocks))
        self.shrink = nn.Linear(width, num_joints * 3)

    def forward(self, x):
        h = self.expand(x.flatten(1))
        for block in self.blocks:
            h = h + block(h)
        return self.shrink(h).view(-1, self.num_joints, 3)


LIFTERS: dict[str, type[nn.Module]] = {"martinez": MartinezLifter, "videopose1f": VideoPose3D1f}
LIFTER_NAMES = ("martinez", "videopose1f")


def create_lifter(arch: str, **kwargs) -> nn.Module:
    """A lifter by registry name; unknown names raise ``ValueError`` listing the known ones."""
    if arch not in LIFTERS:
        raise ValueError(f"unknown lifter {arch!r}; choose from {', '.join(LIFTERS)}")
    return LIFTERS[arch](**kwargs)
