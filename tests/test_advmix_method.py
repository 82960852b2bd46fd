"""AdvMix generator, mixers, views and training step on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, create_model, default_meta, save_checkpoint
from robustpose.train import DataConfig, JointsMSELoss, OptimConfig, TrainConfig
from robustpose.train.advmix import (
    MIXERS,
    AdvMixConfig,
    AdvMixMethod,
    JointsSmoothL1Loss,
    MixGenerator,
    auto_depth,
    make_views,
    mix,
    mix_weights,
    sample_views,
    view_kinds,
)

SIZE = (64, 64)
HEATMAP = (16, 16)
MEAN, STD = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(b: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x01 = torch.randint(0, 256, (b, 3, *SIZE), generator=g).float() / 255
    return (x01 - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)


def _views(k: int = 3, b: int = 4, seed: int = 0, chain: bool = False) -> torch.Tensor:
    kinds = view_kinds(k)
    params = sample_views(kinds, b, SIZE, gridmask_p=1.0, generator=torch.Generator().manual_seed(seed))
    return make_views(_images(b, seed), kinds, params, MEAN, STD, chain=chain)


@pytest.mark.parametrize(("size", "depth"), [((256, 192), 6), ((128, 96), 5), ((64, 48), 4), ((32, 24), 3),
                                             ((6, 10), 1)])
def test_generator_depth_adapts_and_keeps_the_size(size, depth):
    assert auto_depth(size) == depth
    net = MixGenerator(views=3, depth=depth, width=2)
    assert net(torch.randn(2, 9, *size)).shape == (2, 3, *size)


def test_generator_refuses_bad_shapes():
    with pytest.raises(ValueError, match="even"):
        auto_depth((33, 24))
    net = MixGenerator(views=2, depth=3, width=2)
    with pytest.raises(ValueError, match="divisible by 2\\^depth = 8"):
        net(torch.randn(1, 6, 36, 24))
    with pytest.raises(ValueError, match=r"\(B, 6, H, W\)"):
        net(torch.randn(1, 9, 32, 24))


def test_generator_matches_the_official_widths():
    net = MixGenerator(views=3, depth=6, width=64)
    convs = [m for m in net.down.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512]
    assert net.up[0][1].out_channels == 3 and not isinstance(net.up[0][-1], torch.nn.InstanceNorm2d)


def test_views_share_the_clean_crop_and_replay():
    v = _views(k=4)
    assert v.shape == (4, 4, 3, *SIZE)
    assert torch.equal(v[:, 0], _images())
    assert view_kinds(4) == ("clean", "autoaug", "gridmask", "autoaug")
    assert torch.equal(v, _views(k=4))
    assert not torch.equal(v, _views(k=4, seed=1)[:, :, :, :, :])
    # GridMask (p = 1) zeroes part of the clean crop and keeps the rest untouched.
    grid = v[:, 2]
    zeroed = (grid == 0).all(dim=1)
    assert 0.05 < float(zeroed.float().mean()) < 0.6
    assert torch.equal(grid[:, :, ~zeroed[0]][0], v[0, 0][:, ~zeroed[0]])
    # Chained views: the GridMask view masks the AutoAugment view.
    c = _views(k=3, chain=True)
    z = (c[:, 2] == 0).all(dim=1)
    assert torch.allclose(c[:, 2][:, :, ~z[0]][0], c[0, 1][:, ~z[0]])


@pytest.mark.parametrize("mixer", MIXERS)
def test_weights_are_convex_per_pixel(mixer):
    views = _views(k=3)
    net = MixGenerator(views=3, depth=auto_depth(SIZE), width=4)
    w = mix_weights(mixer, views, net, torch.Generator().manual_seed(0))
    assert w.shape == (4, 3, *SIZE)
    assert (w >= 0).all()
    assert torch.allclose(w.sum(dim=1), torch.ones(4, *SIZE), atol=1e-6)
    m = mix(views, w)
    assert (m >= views.min(dim=1).values - 1e-5).all() and (m <= views.max(dim=1).values + 1e-5).all()
    same = views[:, :1].expand(-1, 3, -1, -1, -1)
    assert torch.allclose(mix(same, mix_weights(mixer, same, net, torch.Generator().manual_seed(0))), same[:, 0],
                          atol=1e-5)


def test_each_mixer_has_its_own_structure():
    views = _views(k=3)
    net = MixGenerator(views=3, depth=auto_depth(SIZE), width=4)
    pixel = mix_weights("advmix", views, net)
    assert float(pixel.detach().std(dim=(2, 3)).max()) > 0  # varies over the image
    image = mix_weights("advmix-image", views, net)
    assert torch.equal(image, image[:, :, :1, :1].expand_as(image))
    assert torch.allclose(mix_weights("equal", views), torch.full_like(image, 1 / 3))
    d1 = mix_weights("dirichlet", views, generator=torch.Generator().manual_seed(3))
    d2 = mix_weights("dirichlet", views, generator=torch.Generator().manual_seed(3))
    assert torch.equal(d1, d2) and not torch.allclose(d1[0], d1[1])
    seq = mix_weights("sequential", views)
    assert torch.equal(mix(views, seq), views[:, -1])
    with pytest.raises(ValueError, match="known: advmix, advmix-image"):
        mix_weights("mixup", views)


def test_smoothl1_criterion_is_half_the_mse_for_small_differences():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 4, 8, 6, generator=g), torch.rand(2, 4, 8, 6, generator=g)
    weight = torch.tensor([[1.0, 0, 1, 1], [1, 1, 0, 1]])
    assert torch.allclose(JointsSmoothL1Loss()(pred, target, weight), 0.5 * JointsMSELoss()(pred, target, weight))


# ---------------------------------------------------------------------- the method


def _pose_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("simplebaseline_res18", num_joints=4, stem_width=8, deconv_channels=[8, 8, 8])


def _config(tmp_path, lr: float = 1e-3) -> TrainConfig:
    return TrainConfig(data=DataConfig(input_size=list(SIZE), heatmap_size=list(HEATMAP)),
                       optim=OptimConfig(lr=lr, milestones=[1]), seed=0, amp=False, out=str(tmp_path))


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": _images(4, seed), "target": torch.rand(4, 4, *HEATMAP, generator=g) ** 8,
            "weight": torch.tensor([[1.0, 1, 0, 1]] * 4)}


def _method(tmp_path, lr: float = 1e-3, **settings) -> AdvMixMethod:
    model = _pose_net(0)
    teacher = _pose_net(1)
    return AdvMixMethod(model, _config(tmp_path, lr), torch.device("cpu"),
                        AdvMixConfig(gen_width=4, **settings), teacher=teacher)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_step_updates_each_network_only_in_its_own_phase(tmp_path):
    m = _method(tmp_path)
    teacher0 = _snapshot(m.teacher)
    seen = {}
    pose_step, gen_step = m.optimizer.step, m.gen_optimizer.step

    def on_pose_step(*args, **kwargs):
        seen["gen_grads_at_pose_step"] = [p.grad for p in m.generator.parameters()]
        return pose_step(*args, **kwargs)

    def on_gen_step(*args, **kwargs):
        seen["pose_before_gen"] = _snapshot(m.model)
        seen["pose_grads_before_gen"] = [p.grad.clone() for p in m.model.parameters()]
        seen["gen_before"] = _snapshot(m.generator)
        out = gen_step(*args, **kwargs)
        seen["pose_after_gen"] = _snapshot(m.model)
        seen["pose_grads_after_gen"] = [p.grad.clone() for p in m.model.parameters()]
        return out

    m.optimizer.step, m.gen_optimizer.step = on_pose_step, on_gen_step
    pose0 = _snapshot(m.model)
    for i in range(3):
        m.generator.zero_grad(set_to_none=True)
        logs = m.step(_batch(i))
        assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
        # The pose step saw the detached mix: no gradient reached the generator.
        assert all(g is None for g in seen["gen_grads_at_pose_step"])
        # The generator step left the pose net (weights, BN buffers aside, and gradients) alone ...
        params = dict(m.model.named_parameters())
        assert all(torch.equal(seen["pose_before_gen"][k], seen["pose_after_gen"][k]) for k in params)
        assert all(torch.equal(a, b) for a, b in zip(seen["pose_grads_before_gen"], seen["pose_grads_after_gen"]))
        # ... and changed the generator.
        assert not _same(seen["gen_before"], _snapshot(m.generator))
    assert not _same(pose0, _snapshot(m.model))
    assert _same(teacher0, _snapshot(m.teacher))
    assert set(logs) >= {"loss", "loss_hm", "loss_kd", "loss_adv", "w0", "w1", "w2", "w_spatial_std"}
    assert logs["loss"] == pytest.approx(0.9 * logs["loss_hm"] + 0.1 * logs["loss_kd"], rel=1e-5)


@pytest.mark.parametrize("settings", [{"kd": False}, {"mixer": "equal"}, {"mixer": "sequential", "views": 4},
                                      {"kd_input": "clean", "loss": "mse", "mixer": "advmix-image"}])
def test_variants_run_and_keep_the_teacher(tmp_path, settings):
    m = _method(tmp_path, **settings)
    teacher0 = _snapshot(m.teacher)
    logs = m.step(_batch())
    assert (m.generator is None) == (settings.get("mixer", "advmix") in ("equal", "sequential"))
    if settings.get("kd") is False:
        assert "loss_kd" not in logs and logs["loss"] == logs["loss_hm"]
    assert _same(teacher0, _snapshot(m.teacher))
    assert m.name.startswith("advmix[")


def test_generator_learns_to_raise_the_pose_loss(tmp_path):
    # Pose net effectively frozen (tiny lr): only the generator learns; its mix ends harder than the equal mix.
    m = _method(tmp_path, lr=1e-12, gen_lr=1e-2, probe_every=1, kd=False)
    batch = _batch()
    first = m.step(batch)
    for _ in range(30):
        last = m.step(batch)
    assert last["loss_mixed"] > first["loss_mixed"]
    assert last["loss_mixed"] > last["loss_equal"]
    assert last["w_spatial_std"] != pytest.approx(first["w_spatial_std"])


def test_resume_restores_generator_teacher_and_sampling(tmp_path):
    a = _method(tmp_path)
    for i in range(2):
        a.step(_batch(i))
    state = a.state_dict()
    b = _method(tmp_path)
    b.load_state_dict(state)
    b.model.load_state_dict(a.model.state_dict())
    assert _same(_snapshot(a.generator), _snapshot(b.generator))
    assert _same(_snapshot(a.teacher), _snapshot(b.teacher))
    la, lb = a.step(_batch(5)), b.step(_batch(5))
    assert la["loss"] == pytest.approx(lb["loss"], rel=1e-6)
    with pytest.raises(ValueError, match="trained as advmix"):
        _method(tmp_path, mixer="equal").load_state_dict(state)


def test_init_checkpoint_sets_student_and_teacher(tmp_path):
    src = _pose_net(7)
    meta = default_meta("simplebaseline_res18", 4, source="robustpose",
                        arch_kwargs={"num_joints": 4, "stem_width": 8, "deconv_channels": [8, 8, 8]},
                        input_size=SIZE, heatmap_size=HEATMAP)
    path = save_checkpoint(tmp_path / "standard.pth", src, meta)
    m = AdvMixMethod(_pose_net(0), _config(tmp_path), torch.device("cpu"),
                     AdvMixConfig(init=str(path), gen_width=4))
    assert _same(_snapshot(m.model), _snapshot(src))
    assert _same(_snapshot(m.teacher), _snapshot(src))
    with pytest.raises(ValueError, match="--init"):
        AdvMixMethod(_pose_net(0), _config(tmp_path), torch.device("cpu"), AdvMixConfig())


def test_settings_are_validated_by_name():
    with pytest.raises(ValueError, match="kd_input"):
        AdvMixConfig(kd_input="teacher").validate()
    with pytest.raises(ValueError, match="views"):
        AdvMixConfig(views=1).validate()
    assert AdvMixConfig().run_name() == "advmix"
    assert AdvMixConfig(mixer="dirichlet", kd=False, gen_width=8).run_name() == "advmix[mixer=dirichlet,kd=False]"
    assert AdvMixConfig(gen_width=8).run_name() == "advmix[gen_width=8]"
