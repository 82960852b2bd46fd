"""Peng et al.'s building blocks against values computed here: bins and bounded sampling, the reward/penalty
targets, pre-training targets, the KL, per-person scores, the feature masks of both pose nets, the split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from robustpose.datasets.keypoints import COCO, MPII
from robustpose.metrics.coco import COCO_SIGMAS
from robustpose.models import apply_feature_mask, create_model
from robustpose.train.data import gaussian_targets
from robustpose.train.peng import (
    ROTATION_BINS,
    SCALE_BINS,
    Agent,
    batch_kinds,
    bounded_gaussian,
    cell_mask,
    grid_for,
    hardness_targets,
    joint_votes,
    kl_loss,
    move_target,
    person_scores,
    project,
    sample_cells,
    sample_value,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- bins and sampling


def test_bins_are_the_codes():
    assert SCALE_BINS.centers == pytest.approx((-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6)) and SCALE_BINS.sigma == 0.05
    assert ROTATION_BINS.centers == pytest.approx((-60, -40, -20, 0, 20, 40, 60)) and ROTATION_BINS.sigma == 5


@pytest.mark.parametrize("bins", [SCALE_BINS, ROTATION_BINS], ids=["scale", "rotation"])
def test_bounded_samples_stay_in_their_bin_and_bin_frequencies_match_the_softmax(bins):
    logits = np.array([0.3, -1.0, 1.2, 0.0, 0.7, -0.4, 0.1])
    probs = np.exp(logits) / np.exp(logits).sum()
    rng = np.random.default_rng(1234)
    n = 20000
    draws = [sample_value(probs, bins, rng) for _ in range(n)]
    counts = np.bincount([j for j, _ in draws], minlength=bins.k)
    assert chisquare(counts, probs * n).pvalue > 0.01
    for j, v in draws:
        mu = bins.centers[j]
        assert mu - bins.sigma + 1e-3 - 1e-12 <= v <= mu + bins.sigma + 1e-12
    # the bounded Gaussian is a Gaussian inside the bin: about 68 % strictly inside (the rest clamped to the ends)
    values = np.array([bounded_gaussian(0.0, 1.0, rng) for _ in range(5000)])
    inside = np.mean((values > -1 + 1e-3) & (values < 1))
    assert 0.66 < inside < 0.70
    assert np.mean(values == 1.0) == pytest.approx(0.1587, abs=0.015)


def test_occluded_cells_are_distinct_and_follow_the_softmax():
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    rng = np.random.default_rng(7)
    n = 20000
    picks = [sample_cells(probs, 2, rng) for _ in range(n)]
    assert all(a != b for a, b in picks)
    first = np.bincount([a for a, _ in picks], minlength=4)
    assert chisquare(first, probs * n).pvalue > 0.01
    # the second draw: from the softmax with the first cell removed, renormalised
    second_given_0 = np.bincount([b for a, b in picks if a == 0], minlength=4)[1:]
    expected = probs[1:] / probs[1:].sum() * second_given_0.sum()
    assert chisquare(second_given_0, expected).pvalue > 0.01
    mask = cell_mask([1, 5], (4, 3))
    assert mask.shape == (1, 4, 3) and mask.sum() == 10 and mask[0, 0, 1] == 0 and mask[0, 1, 2] == 0


def test_grid_follows_the_crop_aspect():
    assert grid_for((256, 256)) == (4, 4)
    assert grid_for((256, 192)) == (4, 3) and grid_for((128, 96)) == (4, 3)


# ---------------------------------------------------------------- targets


def test_worked_example_k7_uniform():
    p = np.full(7, 1 / 7)
    reward, penalty = move_target(p, 3, True), move_target(p, 3, False)
    assert round(reward[3], 4) == 0.1714 and round(penalty[3], 4) == 0.0714
    assert reward[0] == pytest.approx((1 - reward[3]) / 6) and penalty[0] == pytest.approx((1 - penalty[3]) / 6)


def test_reward_raises_penalty_lowers_and_targets_stay_a_capped_distribution():
    rng = np.random.default_rng(0)
    for _ in range(500):
        k = int(rng.integers(2, 17))
        raw = rng.dirichlet(np.full(k, rng.choice([0.1, 1.0, 10.0])))
        j = int(rng.integers(k))
        for harder in (True, False):
            t = move_target(raw, j, harder)  # any prediction: the target is a capped distribution
            assert t.sum() == pytest.approx(1.0, abs=1e-12)
            assert t.min() >= 0 and t.max() <= 2 / k + 1e-12
        # a prediction within the cap (as targets are): a reward raises the sampled bin, a penalty lowers it
        p = project(raw, 2 / k)
        up, down = move_target(p, j, True), move_target(p, j, False)
        if p[j] < 2 / k - 1e-9:
            assert up[j] > p[j]
        if p[j] > 1e-9:
            assert down[j] < p[j]
        if p[j] * 1.2 <= 2 / k and p.min() * (k - 1) >= 0.2 * p[j]:  # neither cap nor floor reached: the bare rule
            assert up[j] == pytest.approx(1.2 * p[j])


def test_projection_spreads_excess_and_deficit():
    t = project(np.array([0.7, 0.2, 0.1, 0.0]), cap=0.5)
    assert t.max() <= 0.5 + 1e-12 and t.sum() == pytest.approx(1)
    assert t[0] == pytest.approx(0.5) and t[1] == pytest.approx(0.2 + 0.2 / 3) and t[3] == pytest.approx(0.2 / 3)
    t = project(np.array([0.6, 0.5, -0.1]), cap=2 / 3)
    assert t.min() >= 0 and t.sum() == pytest.approx(1) and t[0] == pytest.approx(0.55)


def test_several_cells_move_together():
    p = np.full(12, 1 / 12)
    t = move_target(p, [2, 7], True)
    assert t[2] == t[7] == pytest.approx(1.2 / 12)
    assert t[0] == pytest.approx((1 - 2.4 / 12) / 10)


def test_hardness_targets_are_normalised_one_minus_score_and_uniform_when_all_perfect():
    scores = np.array([[0.9, 0.5, 1.0, 0.2], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    t = hardness_targets(scores)
    assert t[0] == pytest.approx(np.array([0.1, 0.5, 0.0, 0.8]) / 1.4)
    assert t[1] == pytest.approx(np.full(4, 0.25)) and t[2] == pytest.approx(np.full(4, 0.25))


def test_joint_votes_count_visible_joints_per_cell():
    joints = np.array([[[1.0, 1.0], [23.0, 31.0], [12.5, 1.0], [5.0, 5.0], [30.0, 30.0]]])  # 24 x 32 heatmap
    visible = np.array([[True, True, True, False, True]])
    v = joint_votes(joints, visible, (32, 24), (4, 3))
    expected = np.zeros(12)
    expected[[0, 11, 1]] = 1  # (row 0, col 0), (row 3, col 2), (row 0, col 1); the last one is off the heatmap
    assert v[0] == pytest.approx(expected / 3)
    assert joint_votes(joints, np.zeros((1, 5), bool), (32, 24), (4, 3))[0] == pytest.approx(np.full(12, 1 / 12))


def test_kl_is_the_batch_mean_of_per_sample_kl():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7, generator=g, requires_grad=True)
    target = torch.softmax(torch.randn(5, 7, generator=g), 1)
    target[0] = torch.tensor([0.5, 0.5, 0, 0, 0, 0, 0])  # zeros: 0 log 0 = 0
    q = torch.softmax(logits.detach(), 1).numpy()
    t = target.numpy()
    per = [sum(t[b, k] * np.log(t[b, k] / q[b, k]) for k in range(7) if t[b, k] > 0) for b in range(5)]
    loss = kl_loss(target, logits)
    assert float(loss.detach()) == pytest.approx(np.mean(per), rel=1e-5)
    loss.backward()
    assert logits.grad is not None and target.grad is None


def test_person_scores_are_oks_on_coco_and_pckh_on_mpii():
    hm = (32, 24)
    gt = np.zeros((17, 3))
    gt[:, 0], gt[:, 1], gt[:, 2] = np.linspace(3, 20, 17), np.linspace(4, 28, 17), 1
    gt[16, 2] = 0
    shift = np.zeros_like(gt)
    shift[:, 0] = np.arange(17) % 3  # 0, 1 or 2 heatmap pixels off
    target, weight = gaussian_targets(gt, hm, 2.0)
    pred, _ = gaussian_targets(gt + shift, hm, 2.0)
    pred[16] = 0
    area = 300.0
    d2 = shift[:, 0] ** 2
    oks = np.exp(-d2 / (2 * area * (2 * COCO_SIGMAS) ** 2))[:16].mean()
    got = person_scores(pred[None], target[None], weight[None], COCO, np.array([area]), "dark", 2.0)
    assert got[0] == pytest.approx(oks, abs=2e-3)
    # MPII: PCKh@0.5 with the upper-neck-to-head-top distance as head size
    gt16 = gt[:16].copy()
    gt16[8, :2], gt16[9, :2] = (10, 10), (10, 16)  # head size 6: a 2-pixel error is a hit (<= 3), 4 is not
    err = np.zeros_like(gt16)
    err[:, 0] = np.where(np.arange(16) < 8, 2.0, 0.0)
    err[10:, 0] = 4.0
    t16, w16 = gaussian_targets(gt16, hm, 2.0)
    p16, _ = gaussian_targets(gt16 + err, hm, 2.0)
    got = person_scores(p16[None], t16[None], w16[None], MPII, np.array([area]), "dark", 2.0)
    assert got[0] == pytest.approx(10 / 16, abs=1e-9)


# ---------------------------------------------------------------- feature API and masks of both pose nets


NETS = {"resnet": ("simplebaseline_res18", {"stem_width": 8, "deconv_channels": (16, 16, 16),
                                            "skip_connections": True}),
        "resnet-plain": ("simplebaseline_res18", {"stem_width": 8, "deconv_channels": (16, 16, 16)}),
        "hrnet": ("hrnet_w32", {"width": 4, "stage_modules": (1, 1, 1), "num_blocks": 1, "stem_width": 8,
                                "layer1_blocks": 1})}


@pytest.mark.parametrize("name", list(NETS))
def test_stage_features_are_four_levels_and_forward_without_mask_is_unchanged(name):
    arch, kwargs = NETS[name]
    torch.manual_seed(0)
    net = create_model(arch, **kwargs).eval()
    x = torch.randn(2, 3, 128, 96)
    feats = net.stage_features(x)
    assert [tuple(f.shape[-2:]) for f in feats] == [(32, 24), (16, 12), (8, 6), (4, 3)]
    with torch.no_grad():
        ones = torch.ones(2, 1, 4, 3)
        assert torch.equal(net(x), net(x, feature_mask=ones))
    if name.startswith("resnet"):  # the same stage outputs as the modules run by hand
        with torch.no_grad():
            y = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            for k, f in enumerate(feats, 1):
                y = getattr(net, f"layer{k}")(y)
                assert torch.equal(y, f)


@pytest.mark.parametrize("name", list(NETS))
def test_aho_zeroes_exactly_the_chosen_cells_at_every_level_of_every_stage(name, monkeypatch):
    arch, kwargs = NETS[name]
    torch.manual_seed(0)
    net = create_model(arch, **kwargs).eval()
    x = torch.randn(2, 3, 128, 96)
    cells = [[1, 10], [0, 5]]
    mask = torch.from_numpy(np.stack([cell_mask(c, (4, 3)) for c in cells]))
    seen: list[torch.Tensor] = []
    module = "robustpose.models.hrnet" if arch.startswith("hrnet") else "robustpose.models.resnet"

    def recording(t, m):
        out = apply_feature_mask(t, m)
        seen.append(out.detach())
        return out

    monkeypatch.setattr(f"{module}.apply_feature_mask", recording)
    with torch.no_grad():
        net(x, feature_mask=mask)
    expected_calls = 4 if name.startswith("resnet") else 1 + 2 + 2 + 3 + 3 + 4 + 1  # layer1, transitions, stages
    assert len(seen) == expected_calls
    for f in seen:  # the same mask, nearest-upsampled, on every level the forward passed on
        h, w = f.shape[-2:]
        ch, cw = h // 4, w // 3
        for b, chosen in enumerate(cells):
            for c in range(12):
                block = f[b, :, (c // 3) * ch:(c // 3 + 1) * ch, (c % 3) * cw:(c % 3 + 1) * cw]
                if c in chosen:
                    assert torch.count_nonzero(block) == 0
                else:
                    assert torch.count_nonzero(block) > 0
    assert len({tuple(f.shape[-2:]) for f in seen}) == 4  # every resolution was masked


def test_agent_heads_and_grid():
    feats = [torch.randn(3, c, 32 // 2**i, 24 // 2**i) for i, c in enumerate((8, 16, 32, 64))]
    agent = Agent([8, 16, 32, 64], (4, 3), width=16)
    out = agent(feats)
    assert out["scale"].shape == (3, 7) and out["rotation"].shape == (3, 7) and out["occlusion"].shape == (3, 12)
    bn = [m for m in agent.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(0 <= float(m.weight.min()) and float(m.weight.max()) <= 1 for m in bn)


# ---------------------------------------------------------------- the split


def test_split_modes():
    assert batch_kinds("alternate", ["asr"], 0, 4) == ["random"] * 4
    assert batch_kinds("alternate", ["asr"], 1, 4) == ["asr"] * 4
    kinds = ["asr", "aho"]
    assert [batch_kinds("alternate", kinds, s, 2)[0] for s in range(6)] == ["random", "asr", "random", "aho",
                                                                             "random", "asr"]
    assert batch_kinds("thirds", kinds, 0, 6) == ["random"] * 2 + ["asr"] * 2 + ["aho"] * 2
    assert batch_kinds("thirds", kinds, 5, 16).count("random") == 6  # 16 = 6 + 5 + 5
    assert batch_kinds("thirds", ["aho"], 3, 4) == ["random", "random", "aho", "aho"]
