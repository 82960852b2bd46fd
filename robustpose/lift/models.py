"""2D-to-3D lifters: Martinez et al.'s fully connected baseline, the single-frame VideoPose3D and SemGCN.

All map ``(B, 16, 2)`` width-normalised keypoints to ``(B, 16, 3)`` root-relative camera-coordinate joints in
metres. Registry: :data:`LIFTERS` (name -> class); the CPU benchmark uses Martinez at width 256, not the papers' 1024.
"""

from __future__ import annotations

import torch
from torch import nn

from .skeleton import NUM_JOINTS, PARENTS


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


def skeleton_adjacency(parents: tuple[int, ...] = PARENTS) -> torch.Tensor:
    """``(J, J)`` 0/1 adjacency of the skeleton's bones, self-loops included."""
    adj = torch.eye(len(parents))
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = 1
    return adj


class SemGraphConv(nn.Module):
    """Semantic graph convolution (Zhao et al., CVPR 2019): every edge of the skeleton graph has a learnable weight,
    normalised by a softmax over each joint's neighbours; a joint's own features and its neighbours' get separate
    weight matrices. ``(B, J, in) -> (B, J, out)``."""

    def __init__(self, inputs: int, outputs: int, adj: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(2, inputs, outputs))
        nn.init.xavier_uniform_(self.weight, gain=1.414)
        self.register_buffer("edges", adj > 0)
        self.edge_logit = nn.Parameter(torch.ones(int(self.edges.sum())))
        self.bias = nn.Parameter(torch.zeros(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full(self.edges.shape, float("-inf"), device=x.device, dtype=x.dtype)
        logits = logits.masked_scatter(self.edges, self.edge_logit.to(x.dtype))
        weights = torch.softmax(logits, dim=1)
        eye = torch.eye(len(weights), device=x.device, dtype=x.dtype)
        own, others = x @ self.weight[0], x @ self.weight[1]
        return (weights * eye) @ own + (weights * (1 - eye)) @ others + self.bias


class _GraphLayer(nn.Module):
    """SemGraphConv -> BatchNorm over channels -> ReLU (-> dropout)."""

    def __init__(self, inputs: int, outputs: int, adj: torch.Tensor, dropout: float) -> None:
        super().__init__()
        self.conv, self.bn = SemGraphConv(inputs, outputs, adj), nn.BatchNorm1d(outputs)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.bn(self.conv(x).transpose(1, 2)).transpose(1, 2)))


class SemGCN(nn.Module):
    """SemGCN without its non-local blocks: an input graph layer 2 -> width, ``blocks`` residual blocks of two graph
    layers, an output SemGraphConv width -> 3 (the paper: width 128, 4 blocks)."""

    def __init__(self, width: int = 128, blocks: int = 4, dropout: float = 0.0, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        if num_joints != len(PARENTS):
            raise ValueError(f"SemGCN uses the {len(PARENTS)}-joint skeleton graph, not {num_joints} joints")
        adj = skeleton_adjacency()
        self.num_joints = num_joints
        self.inp = _GraphLayer(2, width, adj, dropout)
        self.blocks = nn.ModuleList(nn.Sequential(_GraphLayer(width, width, adj, dropout),
                                                  _GraphLayer(width, width, adj, dropout)) for _ in range(blocks))
        self.out = SemGraphConv(width, 3, adj)

    def forward(self, x):
        h = self.inp(x.view(-1, self.num_joints, 2))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


LIFTERS: dict[str, type[nn.Module]] = {"martinez": MartinezLifter, "videopose1f": VideoPose3D1f, "semgcn": SemGCN}
LIFTER_NAMES = ("martinez", "videopose1f", "semgcn")


def create_lifter(arch: str, **kwargs) -> nn.Module:
    """A lifter by registry name; unknown names raise ``ValueError`` listing the known ones."""
    if arch not in LIFTERS:
        raise ValueError(f"unknown lifter {arch!r}; choose from {', '.join(LIFTERS)}")
    return LIFTERS[arch](**kwargs)
