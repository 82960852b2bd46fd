"""Checkpoint loading: key mapping, strictness, safe unpickling, robustpose/TorchScript/ONNX round trips."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.models import (
    CheckpointError,
    CheckpointMismatchError,
    create_model,
    default_meta,
    export_onnx,
    export_torchscript,
    load_checkpoint,
    save_checkpoint,
)

TINY_RES = {"deconv_channels": (16, 16, 16)}
TINY_HRNET = {"width": 8, "stage_modules": (1, 1, 1), "num_blocks": 1}


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values in every parameter and buffer, so a wrong mapping cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_res() -> torch.nn.Module:
    return randomised(create_model("simplebaseline_res18", **TINY_RES))


def mmpose(sd: dict, head: str) -> dict:
    out = {}
    for k, v in sd.items():
        top = k.split(".")[0]
        out[f"{head}.{k}" if top in ("deconv_layers", "final_layer") else f"backbone.{k}"] = v
    return out


def assert_same_tensors(model: torch.nn.Module, sd: dict) -> None:
    got = model.state_dict()
    assert list(got) == list(sd)
    for k in sd:
        assert torch.equal(got[k].cpu(), sd[k]), k


def test_all_layouts_load_to_identical_tensors(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    sd = tiny_res.state_dict()
    layouts = {
        "plain.pth": sd,
        "checkpoint.pth": {"epoch": 3, "model": "pose_resnet", "perf": 0.5, "optimizer": {},
                           "state_dict": {f"module.{k}": v for k, v in sd.items()}, "best_state_dict": sd},
        "mmpose0.pth": {"meta": {"epoch": 1}, "state_dict": mmpose(sd, "keypoint_head")},
        "mmpose1.pth": {"meta": {"dataset_meta": {"sigmas": np.full(17, 0.05, np.float32),
                                                  "flip_indices": [0, 2, 1], "num": np.int64(17)}},
                        "state_dict": {**mmpose(sd, "head"), "data_preprocessor.mean": torch.zeros(3)}},
    }
    sources = {}
    for name, obj in layouts.items():
        torch.save(obj, tmp_path / name)
        loaded = load_checkpoint(tmp_path / name)
        assert loaded.meta.arch == "simplebaseline_res18"
        assert_same_tensors(loaded.model, sd)
        sources[name] = (loaded.meta.source, loaded.meta.color)
    assert sources == {"plain.pth": ("hrnet", "bgr"), "checkpoint.pth": ("hrnet-checkpoint", "bgr"),
                       "mmpose0.pth": ("mmpose-0.x", "rgb"), "mmpose1.pth": ("mmpose-1.x", "rgb")}


def test_tiny_hrnet_architecture_is_inferred(tmp_path: Path) -> None:
    model = randomised(create_model("hrnet_w32", num_joints=16, **TINY_HRNET))
    torch.save(model.state_dict(), tmp_path / "h.pth")
    loaded = load_checkpoint(tmp_path / "h.pth")
    assert (loaded.meta.arch, loaded.meta.keypoints, loaded.meta.input_size) == ("hrnet_w32", "mpii", (256, 256))
    assert_same_tensors(loaded.model, model.state_dict())


def test_skip_connection_resnet_is_inferred_from_a_bare_state_dict(tmp_path: Path) -> None:
    kwargs = {"stem_width": 16, "deconv_channels": (32, 32, 32), "skip_connections": True}
    model = randomised(create_model("simplebaseline_res18", **kwargs))
    torch.save(model.state_dict(), tmp_path / "s.pth")
    loaded = load_checkpoint(tmp_path / "s.pth")
    assert loaded.meta.arch == "simplebaseline_res18" and loaded.meta.arch_kwargs == kwargs
    assert_same_tensors(loaded.model, model.state_dict())


def test_old_file_without_num_batches_tracked_loads(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    sd = {k: v for k, v in tiny_res.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth")
    loaded = load_checkpoint(tmp_path / "old.pth")
    assert torch.equal(loaded.model.state_dict()["layer1.0.conv1.weight"], sd["layer1.0.conv1.weight"])


def test_truncated_state_dict_lists_missing_keys(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    sd = tiny_res.state_dict()
    del sd["layer2.0.conv1.weight"], sd["final_layer.bias"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(tmp_path / "cut.pth", arch="simplebaseline_res18")
    msg = str(err.value)
    assert "cut.pth" in msg and "missing keys (2)" in msg and "layer2.0.conv1.weight" in msg
    assert "final_layer.bias" in msg and "unexpected keys (1)" in msg and "extra.weight" in msg


def test_wrong_architecture_lists_shapes_and_names_the_file_arch(tmp_path: Path) -> None:
    torch.save(randomised(create_model("simplebaseline_res18")).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(tmp_path / "r18.pth", arch="simplebaseline_res34")
    msg = str(err.value)
    assert "missing keys" in msg and "layer1.2.conv1.weight" in msg
    assert "the file looks like: simplebaseline_res18" in msg
    hr = create_model("hrnet_w32", **TINY_HRNET).state_dict()
    torch.save(hr, tmp_path / "hr.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(tmp_path / "hr.pth", arch="hrnet_w32")
    msg = str(err.value)
    assert "wrong-shaped keys (model vs file) (171)" in msg
    assert "transition1.0.0.weight: [32, 256, 3, 3] vs [8, 256, 3, 3]" in msg
    assert "looks like: hrnet_w32 (width=8, stage_modules=(1, 1, 1), num_blocks=1)" in msg


def test_truncated_file_is_a_clear_error(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    torch.save(tiny_res.state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "half.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="half.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "half.pth")


class Payload:
    def __reduce__(self):  # what a malicious checkpoint would do
        return (print, ("owned",))


def test_unsafe_pickle_is_refused_unless_trusted(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    torch.save({"state_dict": tiny_res.state_dict(), "hook": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"evil.pth: refused(.|\n)*builtins.print(.|\n)*--trust-checkpoint"):
        load_checkpoint(tmp_path / "evil.pth")
    assert load_checkpoint(tmp_path / "evil.pth", trust_checkpoint=True).meta.arch == "simplebaseline_res18"


def test_numpy1_metadata_loads_weights_only(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    """MMPose files written under numpy 1.x name ``numpy.core.multiarray``; legacy (non-zip) format as released."""
    buf = io.BytesIO()
    obj = {"meta": {"dataset_meta": {"sigmas": np.arange(3, dtype=np.float32), "s": np.float64(2.5)}},
           "state_dict": mmpose(tiny_res.state_dict(), "head")}
    torch.save(obj, buf, _use_new_zipfile_serialization=False, pickle_protocol=2)
    data = buf.getvalue()
    assert b"numpy._core.multiarray" in data
    (tmp_path / "np1.pth").write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert_same_tensors(load_checkpoint(tmp_path / "np1.pth").model, tiny_res.state_dict())


def test_robustpose_checkpoint_round_trip(tmp_path: Path, tiny_res: torch.nn.Module) -> None:
    meta = default_meta("simplebaseline_res18", 17, source="robustpose", arch_kwargs=TINY_RES, input_size=(64, 64))
    save_checkpoint(tmp_path / "ours.pth", tiny_res, meta, extra={"epoch": 5})
    assert not list(tmp_path.glob(".*tmp"))
    loaded = load_checkpoint(tmp_path / "ours.pth", color="bgr")
    assert loaded.meta == meta.__class__(**{**meta.__dict__, "color": "bgr"})
    assert_same_tensors(loaded.model, tiny_res.state_dict())
    with pytest.raises(CheckpointError, match="contradicts"):
        load_checkpoint(tmp_path / "ours.pth", arch="hrnet_w32")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exports_give_the_models_heatmaps(tmp_path: Path, tiny_res: torch.nn.Module, fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="pip install 'robustpose[onnx]'")
        pytest.importorskip("onnx", reason="pip install 'robustpose[onnx]'")
    meta = default_meta("simplebaseline_res18", 17, source="robustpose", arch_kwargs=TINY_RES, input_size=(64, 64))
    export = export_onnx if fmt == "onnx" else export_torchscript
    path = export(tiny_res, meta, tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'pt'}")
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # batch 3: the batch axis is dynamic
    loaded = load_checkpoint(path)
    assert loaded.meta == meta.__class__(**{**meta.__dict__, "source": fmt})
    with torch.no_grad():
        ref, out = tiny_res(x), loaded.model(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert torch.equal(out.flatten(2).argmax(-1), ref.flatten(2).argmax(-1))  # same predicted joints
