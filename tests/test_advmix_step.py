"""The AdvMix step through its public API, with the pose net frozen so every logged loss can be recomputed.

The pose net here has a zero learning rate and batch norms that stay in eval mode whatever ``train()`` says, so
it is one fixed function for the whole step. Then, from the official ``train_advmix`` (reference notes,
``trainers.md`` 1.1):

* the teacher sees the clean batch, in eval mode, and nothing else;
* ``loss_hm = L(D(mix), target)``, ``loss_kd = L(D(mix), T(clean))`` (``kd_input="clean"``: ``L(D(clean), T(clean))``),
  ``loss = (1 - alpha) loss_hm + alpha loss_kd``, with ``L = 0.5 SmoothL1`` (code) or ``0.5 MSE`` (paper);
* the generator step *maximises* ``L(D(mix), target)`` on the same mix: one Adam step raises the pose loss of the
  generator's mix of those views, and the reversed sign (``adv_weight < 0``) lowers it.

Expected values use the formulas above written out with ``torch.nn.functional``, never the method's own criterion.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustpose.models import IMAGENET_MEAN, IMAGENET_STD
from robustpose.train import DataConfig, OptimConfig, TrainConfig
from robustpose.train.advmix import AdvMixConfig, AdvMixMethod, mix, mix_weights

SIZE = (32, 32)
HEATMAP = (8, 8)
JOINTS = 4


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class EvalBatchNorm(nn.BatchNorm2d):
    """A batch norm frozen in eval mode: ``train()`` cannot switch it to batch statistics."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.training = False

    def train(self, mode: bool = True) -> EvalBatchNorm:
        return super().train(False)


def frozen_pose_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), EvalBatchNorm(8), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1),
                        EvalBatchNorm(8), nn.ReLU(), nn.Conv2d(8, JOINTS, 1))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, EvalBatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net


def images(b: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x01 = torch.rand(b, 3, *SIZE, generator=g)
    return (x01 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 100)
    return {"image": images(4, seed), "target": torch.rand(4, JOINTS, *HEATMAP, generator=g) ** 4,
            "weight": torch.tensor([[1.0, 1, 0, 1], [1, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]])}


def half_smooth_l1(pred, target, weight):
    w = weight[:, :, None, None]
    return 0.5 * F.smooth_l1_loss(pred * w, target * w, beta=1.0)


def half_mse(pred, target, weight):
    w = weight[:, :, None, None]
    return 0.5 * ((pred * w - target * w) ** 2).mean()


def method(tmp_path, pose_lr: float = 0.0, **settings) -> AdvMixMethod:
    config = TrainConfig(data=DataConfig(input_size=list(SIZE), heatmap_size=list(HEATMAP)),
                         optim=OptimConfig(lr=pose_lr, milestones=[100]), seed=3, amp=False, out=str(tmp_path))
    settings = {"gen_width": 4, "gen_depth": 2, **settings}
    return AdvMixMethod(frozen_pose_net(0), config, torch.device("cpu"), AdvMixConfig(**settings),
                        teacher=frozen_pose_net(1))


def record(m: AdvMixMethod) -> dict:
    """Wrap the public ``mixed_batch`` and the teacher's forward to see what one step used."""
    seen: dict = {"teacher_inputs": [], "teacher_training": []}
    original = m.mixed_batch

    def mixed_batch(x):
        views, weights, mixed = original(x)
        seen.update(views=views.detach().clone(), weights=weights.detach().clone(), mixed=mixed.detach().clone())
        return views, weights, mixed

    m.mixed_batch = mixed_batch
    def on_teacher(mod, args):
        seen["teacher_inputs"].append(args[0].detach().clone())
        seen["teacher_training"].append(mod.training)

    m.teacher.register_forward_pre_hook(on_teacher)
    return seen


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def generator_mix_loss(m: AdvMixMethod, views, b, loss=half_smooth_l1) -> float:
    """Pose loss of the current generator's mix of ``views`` (frozen pose net)."""
    with torch.no_grad():
        weights = mix_weights(m.settings.mixer, views, m.generator)
        return float(loss(m.model(mix(views, weights)), b["target"], b["weight"]))


@pytest.mark.parametrize("mixer", ["advmix", "advmix-image"])
def test_generator_step_raises_the_pose_loss_and_the_reversed_sign_lowers_it(tmp_path, mixer):
    for adv_weight, direction in ((1.0, 1), (-1.0, -1)):
        m = method(tmp_path, mixer=mixer, adv_weight=adv_weight, gen_lr=1e-3, kd=False)
        pose0 = snapshot(m.model)
        seen = record(m)
        b = batch()
        logs = m.step(b)
        views = seen["views"]
        with torch.no_grad():
            before = float(half_smooth_l1(m.model(seen["mixed"]), b["target"], b["weight"]))
        after = generator_mix_loss(m, views, b)
        # the pose net really was frozen: the step did not touch it, and its loss on the step's mix is what it logged
        assert all(torch.equal(v, snapshot(m.model)[k]) for k, v in pose0.items())
        assert logs["loss_adv"] == pytest.approx(before, rel=1e-5)
        assert logs["loss_hm"] == pytest.approx(before, rel=1e-5)
        assert (after - before) * direction > 0, (adv_weight, before, after)
        assert abs(after - before) > 1e-6 * before


def test_generator_keeps_raising_the_loss_over_steps_on_one_batch(tmp_path):
    m = method(tmp_path, gen_lr=1e-3, kd=False)
    seen = record(m)
    b = batch(1)
    m.step(b)
    views = seen["views"]
    start = generator_mix_loss(m, views, b)
    for _ in range(5):
        m.step(b)
    assert generator_mix_loss(m, views, b) > start


def test_adv_weight_scales_the_generator_gradient(tmp_path):
    # Adam's first step is sign-only, so the weight's size shows in the gradient the step leaves behind
    grads = {}
    for adv_weight in (1.0, 2.5, -1.0):
        m = method(tmp_path, adv_weight=adv_weight, kd=False)
        m.step(batch())
        grads[adv_weight] = torch.cat([p.grad.flatten() for p in m.generator.parameters()])
    assert grads[1.0].abs().sum() > 0
    torch.testing.assert_close(grads[2.5], 2.5 * grads[1.0], rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(grads[-1.0], -grads[1.0], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(("kd_input", "alpha", "loss"), [("mix", 0.1, "smoothl1"), ("clean", 0.1, "smoothl1"),
                                                         ("mix", 0.35, "mse"), ("clean", 0.8, "mse")])
def test_logged_losses_follow_the_formulas_and_the_teacher_sees_the_clean_batch(tmp_path, kd_input, alpha, loss):
    m = method(tmp_path, kd_input=kd_input, alpha=alpha, loss=loss)
    teacher0 = snapshot(m.teacher)
    seen = record(m)
    b = batch(2)
    logs = m.step(b)
    # the teacher ran once, in eval mode, on the clean normalised batch
    assert len(seen["teacher_inputs"]) == 1
    assert torch.equal(seen["teacher_inputs"][0], b["image"])
    assert seen["teacher_training"] == [False]
    assert all(torch.equal(v, snapshot(m.teacher)[k]) for k, v in teacher0.items())
    crit = half_smooth_l1 if loss == "smoothl1" else half_mse
    with torch.no_grad():
        soft = m.teacher(b["image"])
        pred_mix = m.model(seen["mixed"])
        student = pred_mix if kd_input == "mix" else m.model(b["image"])
        hm = float(crit(pred_mix, b["target"], b["weight"]))
        kd = float(crit(student, soft, b["weight"]))
    assert logs["loss_hm"] == pytest.approx(hm, rel=1e-5)
    assert logs["loss_kd"] == pytest.approx(kd, rel=1e-5)
    assert logs["loss"] == pytest.approx((1 - alpha) * hm + alpha * kd, rel=1e-5)
    assert kd != pytest.approx(hm, rel=1e-3)  # the two terms are told apart by this fixture


def test_without_kd_the_teacher_is_never_run(tmp_path):
    m = method(tmp_path, kd=False)
    seen = record(m)
    logs = m.step(batch())
    assert seen["teacher_inputs"] == [] and "loss_kd" not in logs
    assert logs["loss"] == logs["loss_hm"]


def test_mixed_batch_is_the_weighted_sum_of_views_of_the_clean_batch(tmp_path):
    m = method(tmp_path)
    x = images(3, 5)
    views, weights, mixed = m.mixed_batch(x)
    assert views.shape == (3, 3, 3, *SIZE) and weights.shape == (3, 3, *SIZE) and mixed.shape == (3, 3, *SIZE)
    assert torch.equal(views[:, 0], x)  # view 0 is the clean crop
    torch.testing.assert_close(mixed, (views * weights[:, :, None]).sum(dim=1))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, *SIZE))
    assert weights.requires_grad  # differentiable in the generator's parameters
    gen = [p for p in m.generator.parameters()]
    grads = torch.autograd.grad(mixed.sum(), gen, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_pose_step_uses_the_detached_mix_and_the_ground_truth(tmp_path):
    # with a learning rate, the pose net moves towards the targets on the step's own mix; the generator's weights
    # receive no gradient from that step (they move only through the generator's own, later step)
    m = method(tmp_path, pose_lr=5e-2, kd=False, mixer="equal")
    seen = record(m)
    b = batch(3)
    model0 = copy.deepcopy(m.model)
    logs = m.step(b)
    with torch.no_grad():
        before = float(half_smooth_l1(model0(seen["mixed"]), b["target"], b["weight"]))
        after = float(half_smooth_l1(m.model(seen["mixed"]), b["target"], b["weight"]))
    assert logs["loss_hm"] == pytest.approx(before, rel=1e-5)
    assert after < before
    assert m.generator is None and "loss_adv" not in logs


def test_learning_rates_decay_at_each_milestone_epoch_for_both_networks(tmp_path):
    config = TrainConfig(data=DataConfig(input_size=list(SIZE), heatmap_size=list(HEATMAP)),
                         optim=OptimConfig(lr=1e-3, milestones=[2, 4], gamma=0.1), seed=3, amp=False,
                         out=str(tmp_path))
    m = AdvMixMethod(frozen_pose_net(0), config, torch.device("cpu"),
                     AdvMixConfig(gen_width=4, gen_depth=2, gen_lr=5e-3), teacher=frozen_pose_net(1))

    def gen_lr():
        return m.gen_optimizer.param_groups[0]["lr"]

    expected = {0: (1e-3, 5e-3), 1: (1e-3, 5e-3), 2: (1e-4, 5e-4), 3: (1e-4, 5e-4), 4: (1e-5, 5e-5)}
    for epoch in range(5):
        m.start_epoch(epoch)
        m.start_epoch(epoch)  # idempotent within an epoch
        assert m.lr() == pytest.approx(expected[epoch][0]) and gen_lr() == pytest.approx(expected[epoch][1])
    fresh = AdvMixMethod(frozen_pose_net(0), config, torch.device("cpu"), AdvMixConfig(gen_width=4, gen_depth=2),
                         teacher=frozen_pose_net(1))
    fresh.start_epoch(3)  # jumping ahead (a resumed run) applies every milestone passed
    assert fresh.lr() == pytest.approx(1e-4)
    eq = AdvMixMethod(frozen_pose_net(0), config, torch.device("cpu"), AdvMixConfig(mixer="equal"),
                      teacher=frozen_pose_net(1))
    eq.start_epoch(4)  # no generator: only the pose net's schedule
    assert eq.lr() == pytest.approx(1e-5) and eq.generator is None
