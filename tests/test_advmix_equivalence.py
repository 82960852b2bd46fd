"""One AdvMix step against a straight-line re-derivation of the official iteration, bit for bit in float64.

Written from the reference notes (``trainers.md`` 1.1, ``lib/core/function.py:train_advmix``) with nothing of the
method but its views (their construction is pinned in ``test_advmix_method_pinned.py``):

1. weights = per-pixel softmax over the generator's 3 output channels on the concatenated views;
   mix = sum_i w_i * view_i in normalised space;
2. pose-net step on the detached mix: ``L_D = (1 - alpha) L(D(mix), gt) + alpha L(D(mix), T(clean))``, alpha 0.1,
   ``L = 0.5 * SmoothL1_beta=1`` on joint-weighted heatmaps (the inverted-flag ``JointsMSELoss``), Adam lr 1e-3;
3. generator step with the pose net frozen and still in train mode, on the same mix:
   ``L_G = -adv_loss_weight * L(D'(mix), gt)`` with ``D'`` the just-updated pose net; Adam lr 1e-3.

Adam's first step is written out as PyTorch's single-tensor Adam computes it (same operation order), so the two
must agree exactly, not within a tolerance.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustpose.models import IMAGENET_MEAN, IMAGENET_STD
from robustpose.train import DataConfig, OptimConfig, TrainConfig
from robustpose.train.advmix import AdvMixConfig, AdvMixMethod, MixGenerator

SIZE = (32, 32)
HEATMAP = (8, 8)
JOINTS = 4
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pose_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, JOINTS, 1)).double()


def teacher_net() -> nn.Module:
    net = pose_net()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.9).add_(0.01)
    return net


def criterion(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    w = weight[:, :, None, None]
    return 0.5 * F.smooth_l1_loss(pred * w, target * w, beta=1.0)


def adam_first_step(params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """PyTorch's single-tensor Adam, first step, no weight decay: the same operations in the same order."""
    out = []
    for p, g in zip(params, grads):
        exp_avg = torch.zeros_like(p).lerp_(g, 1 - BETAS[0])
        exp_avg_sq = torch.zeros_like(p).mul_(BETAS[1]).addcmul_(g, g.conj(), value=1 - BETAS[1])
        bias1, bias2 = 1 - BETAS[0] ** 1.0, 1 - BETAS[1] ** 1.0
        denom = (exp_avg_sq.sqrt() / bias2**0.5).add_(EPS)
        out.append(p.detach().clone().addcdiv_(exp_avg, denom, value=-(LR / bias1)))
    return out


def reference_step(pose: nn.Module, teacher: nn.Module, gen: nn.Module, views: torch.Tensor,
                   batch: dict[str, torch.Tensor], alpha: float = 0.1, adv_weight: float = 1.0):
    """The official iteration on copies of the three networks; returns the updated pose net and generator."""
    pose, gen = copy.deepcopy(pose).train(), copy.deepcopy(gen).train()
    images, gt, weight = batch["image"], batch["target"], batch["weight"]
    weights = torch.softmax(gen(views.flatten(1, 2)), dim=1)
    mixed = (views * weights[:, :, None]).sum(dim=1)

    with torch.no_grad():
        soft = teacher.eval()(images)
    pred = pose(mixed.detach())
    loss_d = (1 - alpha) * criterion(pred, gt, weight) + alpha * criterion(pred, soft, weight)
    d_params = list(pose.parameters())
    d_grads = torch.autograd.grad(loss_d, d_params)
    with torch.no_grad():
        for p, new in zip(d_params, adam_first_step(d_params, d_grads)):
            p.copy_(new)

    for p in d_params:
        p.requires_grad_(False)
    loss_g = -adv_weight * criterion(pose(mixed), gt, weight)
    g_params = list(gen.parameters())
    g_grads = torch.autograd.grad(loss_g, g_params)
    with torch.no_grad():
        for p, new in zip(g_params, adam_first_step(g_params, g_grads)):
            p.copy_(new)
    return pose, gen, {"loss": float(loss_d.detach()), "loss_adv": float(-loss_g.detach() / adv_weight)}


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    x01 = torch.rand(4, 3, *SIZE, generator=g, dtype=torch.float64)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return {"image": (x01 - mean) / std,
            "target": torch.rand(4, JOINTS, *HEATMAP, generator=g, dtype=torch.float64) ** 4,
            "weight": torch.tensor([[1.0, 1, 0, 1], [1, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.float64)}


@pytest.mark.parametrize(("alpha", "adv_weight"), [(0.1, 1.0), (0.3, 2.0)])
def test_one_step_equals_the_official_iteration_bit_for_bit(tmp_path, alpha, adv_weight):
    config = TrainConfig(data=DataConfig(input_size=list(SIZE), heatmap_size=list(HEATMAP)),
                         optim=OptimConfig(lr=LR, weight_decay=0.0, milestones=[100]), seed=0, amp=False,
                         out=str(tmp_path))
    m = AdvMixMethod(pose_net(), config, torch.device("cpu"),
                     AdvMixConfig(gen_width=4, gen_depth=2, gen_lr=LR, alpha=alpha, adv_weight=adv_weight),
                     teacher=teacher_net())
    m.generator.double()
    m.teacher.double()
    pose0, gen0, teacher0 = copy.deepcopy(m.model), copy.deepcopy(m.generator), copy.deepcopy(m.teacher)
    seen = {}
    original = m.mixed_batch

    def mixed_batch(x):
        out = original(x)
        seen["views"] = out[0].detach().clone()
        return out

    m.mixed_batch = mixed_batch
    b = batch()
    logs = m.step(b)
    assert seen["views"].dtype == torch.float64
    pose_ref, gen_ref, ref_logs = reference_step(pose0, teacher0, gen0, seen["views"], b, alpha, adv_weight)
    for name, net, ref in (("pose net", m.model, pose_ref), ("generator", m.generator, gen_ref)):
        got, want = net.state_dict(), ref.state_dict()
        assert got.keys() == want.keys()
        for key in got:
            assert torch.equal(got[key], want[key]), f"{name} {key} differs"
    assert logs["loss"] == ref_logs["loss"] and logs["loss_adv"] == ref_logs["loss_adv"]
    # the reference really moved both networks (the comparison is not of unchanged copies)
    assert not torch.equal(pose_ref[0].weight, pose0[0].weight)
    assert not all(torch.equal(a, c) for a, c in zip(gen_ref.parameters(), gen0.parameters()))


def test_the_official_generator_has_the_official_parameter_count():
    # pix2pix U-Net, ngf 64, 6 down-samplings, 9 input and 3 output channels (trainers.md 1.1)
    assert sum(p.numel() for p in MixGenerator(views=3, depth=6, width=64).parameters()) == 29_247_875
