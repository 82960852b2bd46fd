"""What the AdvMix method takes from its settings and the run's config, pinned from outside the method.

Each expectation is written from the documented behaviour (the module docstring, ``docs/advmix.md``), replayed with
the public building blocks (``sample_views``, ``make_views``, ``mix_weights``) from an independently seeded random
generator, or recomputed with ``torch.nn.functional``: the sampling seed ``seed * 1_000_003`` (the same on every rank: each rank keeps its rows of the global batch's draws), the options
forwarded to the views and mixers, the logged statistics and the probe's losses, the step counter, the optimisers'
hyper-parameters, which checkpoint becomes the teacher, resume of every piece of state, and validation bounds.
"""

from __future__ import annotations

import io

import pytest
import torch
from test_advmix_step import HEATMAP, JOINTS, SIZE, batch, half_smooth_l1, images  # the same small batches
from torch import nn

from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, create_model, default_meta, save_checkpoint
from robustpose.train import DataConfig, OptimConfig, TrainConfig
from robustpose.train.advmix import AdvMixConfig, AdvMixMethod, make_views, mix, mix_weights, sample_views, view_kinds

MEAN, STD = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pose_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, JOINTS, 3, 2, 1))


def config(tmp_path, seed: int = 3, **optim) -> TrainConfig:
    optim = {"lr": 1e-3, "milestones": [100], **optim}
    return TrainConfig(data=DataConfig(input_size=list(SIZE), heatmap_size=list(HEATMAP)), optim=OptimConfig(**optim),
                       seed=seed, amp=False, out=str(tmp_path))


def method(tmp_path, seed: int = 3, teacher: nn.Module | None = None, optim: dict | None = None,
           **settings) -> AdvMixMethod:
    settings = {"gen_width": 4, "gen_depth": 2, **settings}
    return AdvMixMethod(pose_net(0), config(tmp_path, seed, **(optim or {})), torch.device("cpu"),
                        AdvMixConfig(**settings), teacher=pose_net(1) if teacher is None else teacher)


def on_disk(state: dict) -> dict:
    """``state`` through ``torch.save`` / ``torch.load``, as a resumed run reads it (no tensor shared with the
    running method: an optimiser's state dict holds its live buffers)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def replay(x: torch.Tensor, settings: AdvMixConfig, seed: int, generator_net: nn.Module | None = None):
    """The views, weights and mix of the first batch, drawn from a generator seeded by the documented formula."""
    g = torch.Generator().manual_seed(seed * 1_000_003)
    kinds = view_kinds(settings.views)
    params = sample_views(kinds, x.shape[0], SIZE, gridmask_p=settings.gridmask_p, generator=g)
    views = make_views(x, kinds, params, MEAN, STD, gridmask_ratio=settings.gridmask_ratio,
                       chain=settings.mixer == "sequential")
    weights = mix_weights(settings.mixer, views, generator_net, g)
    return views, weights, mix(views, weights)


# ---------------------------------------------------------------------- sampling: seed, options, mixers


@pytest.mark.parametrize(("seed", "rank"), [(3, "0"), (11, "0"), (3, "1"), (0, None)])
@pytest.mark.parametrize("mixer", ["dirichlet", "sequential"])
def test_first_batch_replays_from_the_documented_seed(tmp_path, monkeypatch, seed, rank, mixer):
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    settings = AdvMixConfig(mixer=mixer, views=4, gridmask_p=0.5, gridmask_ratio=0.3)
    m = method(tmp_path, seed=seed, **{k: getattr(settings, k) for k in ("mixer", "views", "gridmask_p",
                                                                         "gridmask_ratio")})
    x = images(4, 9)
    torch.manual_seed(1234)  # the global stream must play no part
    views, weights, mixed = m.mixed_batch(x)
    torch.manual_seed(4321)
    expected = replay(x, settings, seed)  # RANK without a process group changes nothing
    for got, want in zip((views, weights, mixed), expected):
        assert torch.equal(got, want)
    # and the stream moves on: the second batch differs from the first
    assert not torch.equal(m.mixed_batch(x)[0], views)


def test_sequential_chains_the_views_and_the_others_do_not(tmp_path):
    x = images(4, 2)
    chained, _, _ = method(tmp_path, mixer="sequential", views=4).mixed_batch(x)
    plain, _, _ = method(tmp_path, mixer="equal", views=4).mixed_batch(x)
    assert torch.equal(chained[:, :2], plain[:, :2])  # the clean view and the first augmentation agree
    assert not torch.equal(chained[:, 2:], plain[:, 2:])  # later views start from the previous one


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_gridmask_probability_reaches_the_views(tmp_path, p):
    x = images(6, 4)
    views, _, _ = method(tmp_path, mixer="equal", gridmask_p=p).mixed_batch(x)
    masked = [not torch.equal(views[i, 2], x[i]) for i in range(6)]  # view 2: GridMask of the clean crop
    assert masked == [p == 1.0] * 6


# ---------------------------------------------------------------------- what one step logs


def test_logged_weight_statistics_and_probe_losses_are_recomputed(tmp_path):
    m = method(tmp_path, probe_every=1)
    seen = {}
    original = m.mixed_batch

    def mixed_batch(x):
        out = original(x)
        seen["views"], seen["weights"] = out[0].detach().clone(), out[1].detach().clone()
        return out

    m.mixed_batch = mixed_batch
    b = batch(1)
    logs = m.step(b)
    w = seen["weights"]
    for i in range(3):
        assert logs[f"w{i}"] == pytest.approx(float(w[:, i].mean()), rel=1e-6)
    per_map = w.flatten(2).std(dim=2)  # std over the pixels of each (sample, view) map, unbiased
    assert logs["w_spatial_std"] == pytest.approx(float(per_map.mean()), rel=1e-6)
    assert m.model.training  # the probe evaluates in eval mode and hands the net back in train mode
    net = m.model.eval()
    with torch.no_grad():
        equal = float(half_smooth_l1(net(seen["views"].mean(dim=1)), b["target"], b["weight"]))
        mixed = float(half_smooth_l1(net((seen["views"] * w[:, :, None]).sum(dim=1)), b["target"], b["weight"]))
    assert logs["loss_equal"] == pytest.approx(equal, rel=1e-5)
    assert logs["loss_mixed"] == pytest.approx(mixed, rel=1e-5)


def test_the_probe_runs_every_n_steps_and_its_count_survives_a_resume(tmp_path):
    a = method(tmp_path, probe_every=3)
    probed = ["loss_equal" in a.step(batch(i)) for i in range(4)]
    assert probed == [False, False, True, False]
    state = on_disk(a.state_dict())
    assert state["steps"] == 4
    b = method(tmp_path, probe_every=3)
    b.load_state_dict(state)
    assert ["loss_equal" in b.step(batch(i)) for i in range(3)] == [False, True, False]  # steps 5, 6, 7


# ---------------------------------------------------------------------- construction


def test_optimisers_follow_the_config_and_the_settings(tmp_path):
    m = method(tmp_path, optim={"lr": 2e-3, "weight_decay": 1e-4, "milestones": [1], "gamma": 0.5}, gen_lr=7e-4)
    assert m.optimizer.param_groups[0]["weight_decay"] == 1e-4
    assert m.gen_optimizer.param_groups[0]["lr"] == 7e-4
    assert m.gen_optimizer.param_groups[0]["weight_decay"] == 0  # the official generator Adam has none
    assert {id(p) for p in m.optimizer.param_groups[0]["params"]} == {id(p) for p in m.model.parameters()}
    assert {id(p) for p in m.gen_optimizer.param_groups[0]["params"]} == {id(p) for p in m.generator.parameters()}
    m.start_epoch(1)
    assert m.lr() == pytest.approx(1e-3) and m.gen_optimizer.param_groups[0]["lr"] == pytest.approx(3.5e-4)


def test_amp_is_off_on_the_cpu_even_when_asked(tmp_path):
    cfg = config(tmp_path)
    cfg.amp = True
    m = AdvMixMethod(pose_net(0), cfg, torch.device("cpu"), AdvMixConfig(gen_width=4, gen_depth=2),
                     teacher=pose_net(1))
    assert m.amp is False
    assert not m.scaler.is_enabled() and not m.gen_scaler.is_enabled()
    ref = method(tmp_path)
    assert m.step(batch()) == ref.step(batch())  # the same numbers as a run without AMP


def test_a_teacher_module_is_copied_never_shared_with_the_student(tmp_path):
    student = pose_net(0)
    m = AdvMixMethod(student, config(tmp_path, lr=5e-2), torch.device("cpu"),
                     AdvMixConfig(gen_width=4, gen_depth=2), teacher=student)
    before = {k: v.clone() for k, v in m.teacher.state_dict().items()}
    m.step(batch())
    assert not m.teacher.training
    assert all(torch.equal(before[k], v) for k, v in m.teacher.state_dict().items())
    assert not same(m.teacher, m.model)  # the student moved, its teacher did not


def test_teacher_file_and_init_file_are_kept_apart(tmp_path):
    meta = default_meta("simplebaseline_res18", JOINTS, source="robustpose",
                        arch_kwargs={"num_joints": JOINTS, "stem_width": 8, "deconv_channels": [8, 8, 8]},
                        input_size=SIZE, heatmap_size=HEATMAP)

    def net(seed):
        torch.manual_seed(seed)
        return create_model("simplebaseline_res18", num_joints=JOINTS, stem_width=8, deconv_channels=[8, 8, 8])

    init = save_checkpoint(tmp_path / "init.pth", net(1), meta)
    teacher = save_checkpoint(tmp_path / "teacher.pth", net(2), meta)
    m = AdvMixMethod(net(0), config(tmp_path), torch.device("cpu"),
                     AdvMixConfig(init=str(init), teacher=str(teacher), gen_width=4))
    assert same(m.model, net(1)) and same(m.teacher, net(2))
    assert m.init_files() == {"init": str(init), "teacher": str(teacher)}
    only_init = AdvMixMethod(net(0), config(tmp_path), torch.device("cpu"), AdvMixConfig(init=str(init), gen_width=4))
    assert same(only_init.teacher, net(1)) and only_init.init_files() == {"init": str(init)}
    with pytest.raises(ValueError, match=r"^AdvMix needs a standard checkpoint to start from and distil: pass --init "
                                         r"\(and --teacher for another teacher\)$"):
        AdvMixMethod(net(0), config(tmp_path), torch.device("cpu"), AdvMixConfig())


def test_resume_restores_the_teacher_epoch_and_both_schedules(tmp_path):
    optim = {"milestones": [1, 2], "gamma": 0.5}
    a = method(tmp_path, optim=optim, teacher=pose_net(5))
    a.start_epoch(1)
    a.step(batch())
    state = on_disk(a.state_dict())
    b = method(tmp_path, optim=optim, teacher=pose_net(6))
    b.load_state_dict(state)
    b.model.load_state_dict(a.model.state_dict())
    assert same(b.teacher, a.teacher) and same(b.generator, a.generator)
    for m in (a, b):
        m.start_epoch(1)  # the epoch it resumes in: no further decay
    assert b.lr() == a.lr() == pytest.approx(5e-4)
    assert b.gen_optimizer.param_groups[0]["lr"] == a.gen_optimizer.param_groups[0]["lr"]
    assert b.step(batch(2)) == a.step(batch(2))
    assert same(b.generator, a.generator) and same(b.model, a.model)


# ---------------------------------------------------------------------- settings


@pytest.mark.parametrize("ok", [{"alpha": 0.0}, {"alpha": 1.0}, {"gen_width": 1}, {"gen_depth": 0},
                                {"probe_every": 0}, {"loss": "mse"}, {"kd_input": "clean"}])
def test_boundary_settings_are_accepted(ok):
    AdvMixConfig(**ok).validate()


@pytest.mark.parametrize(("bad", "name"), [({"alpha": -0.01}, "alpha"), ({"alpha": 1.01}, "alpha"),
                                           ({"gen_lr": 0.0}, "gen_lr"), ({"gen_width": 0}, "gen_width"),
                                           ({"gen_depth": -1}, "gen_depth"), ({"probe_every": -1}, "probe_every"),
                                           ({"loss": "l1"}, "loss"), ({"mixer": "max"}, "mixer")])
def test_bad_settings_are_refused_by_name(bad, name):
    with pytest.raises(ValueError, match=name):
        AdvMixConfig(**bad).validate()


def test_run_name_ignores_paths_logging_and_an_unlearned_mixers_generator():
    assert AdvMixConfig(init="a.pth", teacher="b.pth", probe_every=5).run_name() == "advmix"
    assert AdvMixConfig(mixer="equal", gen_width=8, gen_lr=1.0, adv_weight=2.0, gen_depth=3).run_name() == \
        "advmix[mixer=equal]"
    assert AdvMixConfig(adv_weight=2.0, gen_lr=1e-4).run_name() == "advmix[adv_weight=2.0,gen_lr=0.0001]"


# ---------------------------------------------------------------------- what the engine hands over, what it records


def test_settings_come_from_the_run_config_when_not_given(tmp_path):
    cfg = config(tmp_path)
    cfg.method, cfg.method_settings = "advmix", {"mixer": "dirichlet", "gen_width": 4, "alpha": 0.25}
    m = AdvMixMethod(pose_net(0), cfg, torch.device("cpu"), teacher=pose_net(1))
    assert (m.settings.mixer, m.settings.alpha, m.generator) == ("dirichlet", 0.25, None)
    assert m.name == "advmix[mixer=dirichlet,alpha=0.25]"
    cfg.method_settings = {"mixer": "equal", "bogus": 1}
    with pytest.raises(ValueError, match="unknown keys \\['bogus'\\]"):
        AdvMixMethod(pose_net(0), cfg, torch.device("cpu"), teacher=pose_net(1))


def test_a_bad_generator_setting_is_named_in_full():
    with pytest.raises(ValueError, match="^gen_lr and gen_width must be positive, gen_depth and probe_every >= 0$"):
        AdvMixConfig(gen_width=0).validate()


def test_an_unlearned_mixers_name_still_ignores_paths_and_logging():
    assert AdvMixConfig(mixer="equal", init="a.pth", teacher="b.pth", probe_every=3, gen_width=8).run_name() == \
        "advmix[mixer=equal]"


def test_a_run_without_init_files_records_none_and_saves_both_scalers(tmp_path):
    m = method(tmp_path)  # teacher given as a module, no init file
    assert m.init_files() == {}
    state = m.state_dict()
    assert state["scaler"] == m.scaler.state_dict() and state["gen_scaler"] == m.gen_scaler.state_dict()
