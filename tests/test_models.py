"""Architectures: exact official state_dict keys/shapes, parameter counts, registry, tiny variants."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from robustpose.models import create_model, list_models

KEYS_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "checkpoint_keys"


def official_keys(name: str) -> list[tuple[str, list[int]]]:
    path = KEYS_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            rows.append((key, ast.literal_eval(shape)))
    return rows


def keys_and_shapes(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("arch", "ref", "params"), [
    ("hrnet_w32", "pose_hrnet_w32.txt", 28_536_113),
    ("simplebaseline_res50", "pose_resnet_50.txt", 33_999_697),
])
def test_state_dict_equals_official_list(arch: str, ref: str, params: int) -> None:
    model = create_model(arch)
    assert keys_and_shapes(model) == official_keys(ref)  # same names, shapes and order
    assert n_params(model) == params


def test_hrnet_w48_same_keys_wider_shapes() -> None:
    ref = official_keys("pose_hrnet_w32.txt")
    w48 = create_model("hrnet_w48")
    got = keys_and_shapes(w48)
    assert [k for k, _ in got] == [k for k, _ in ref]
    assert sum(a != b for (_, a), (_, b) in zip(got, ref)) == 1386
    sd = w48.state_dict()
    assert list(sd["final_layer.weight"].shape) == [17, 48, 1, 1]
    assert [sd[f"stage4.0.branches.{b}.0.conv1.weight"].shape[0] for b in range(4)] == [48, 96, 192, 384]
    assert n_params(w48) == 63_595_745


@pytest.mark.parametrize(("arch", "n_keys", "params"), [
    ("simplebaseline_res101", 644, 52_991_825),
    ("simplebaseline_res152", 950, 68_635_473),
])
def test_deeper_resnets_match_derived_counts(arch: str, n_keys: int, params: int) -> None:
    model = create_model(arch)
    assert (len(model.state_dict()), n_params(model)) == (n_keys, params)


def test_mpii_joint_count() -> None:
    assert n_params(create_model("hrnet_w32", num_joints=16)) == 28_536_080


def test_registry_lists_and_rejects() -> None:
    assert list_models("simplebaseline*") == [
        "simplebaseline_res101", "simplebaseline_res152", "simplebaseline_res18", "simplebaseline_res34",
        "simplebaseline_res50"]
    with pytest.raises(ValueError, match="unknown model 'hrnet_w64'.*hrnet_w32"):
        create_model("hrnet_w64")


@pytest.mark.parametrize(("arch", "kwargs"), [
    ("simplebaseline_res18", {"deconv_channels": (16, 16, 16)}),
    ("simplebaseline_res34", {"deconv_channels": (16, 16), "deconv_kernels": (4, 4), "num_joints": 16}),
    ("hrnet_w32", {"width": 8, "stage_modules": (1, 1, 1), "num_blocks": 1}),
    ("simplebaseline_res18", {"stem_width": 16, "deconv_channels": (32, 32, 32), "skip_connections": True}),
])
def test_tiny_variants_give_quarter_resolution_heatmaps(arch: str, kwargs: dict) -> None:
    model = create_model(arch, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))  # both sides divisible by 32, as every HRNet/ResNet input must be
    joints = kwargs.get("num_joints", 17)
    size = (16, 24) if len(kwargs.get("deconv_channels", (0, 0, 0))) == 3 else (8, 12)
    assert out.shape == (2, joints, *size)


def test_skip_connections_add_laterals_only_when_asked() -> None:
    plain = create_model("simplebaseline_res18", stem_width=16, deconv_channels=(32, 32, 32))
    skip = create_model("simplebaseline_res18", stem_width=16, deconv_channels=(32, 32, 32), skip_connections=True)
    extra = set(skip.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) < set(skip.state_dict())
    assert {k.split(".")[0] for k in extra} == {"skip_layers"}
    # laterals from layer3 (64 ch), layer2 (32), layer1 (16) into the 32-channel deconvolution outputs
    assert [tuple(skip.state_dict()[f"skip_layers.{k}.0.weight"].shape[:2]) for k in range(3)] == [
        (32, 64), (32, 32), (32, 16)]
    # zeroed laterals make it the plain model
    skip.load_state_dict(plain.state_dict(), strict=False)
    for k in range(3):
        torch.nn.init.zeros_(skip.skip_layers[k][0].weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(skip.eval()(x), plain.eval()(x), atol=1e-6)
    with pytest.raises(ValueError, match="skip_connections needs 3 deconvolutions"):
        create_model("simplebaseline_res18", deconv_channels=(16, 16), deconv_kernels=(4, 4), skip_connections=True)
