"""Which weights an HRNet ``checkpoint.pth`` yields, on a fixture whose two state dicts differ.

HRNet's ``save_checkpoint`` (``/work/shared/reference/models_and_inference.md`` section 3) writes ``epoch``,
``model``, ``state_dict`` (the *latest* epoch, DataParallel ``module.``-prefixed), ``best_state_dict`` (the best
epoch, no prefix), ``perf`` and ``optimizer``. The loader rule: ``auto`` takes ``state_dict``, else
``best_state_dict``; ``which`` names one. Latest and best hold different random tensors here, so taking the wrong
one, or mixing them, shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustpose.models import CheckpointError, create_model, load_checkpoint
from robustpose.models.checkpoint import extract_state_dict

TINY_HRNET = {"num_joints": 17, "width": 8, "stage_modules": (1, 1, 1), "num_blocks": 1}


def _random_state(seed: int) -> dict[str, torch.Tensor]:
    model = create_model("hrnet_w32", **TINY_HRNET)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.full_like(t, seed + 3)
        elif name.endswith("running_var"):
            out[name] = torch.rand(t.shape, generator=g) + 0.5
        else:
            out[name] = torch.randn(t.shape, generator=g) * 0.1
    return out


@pytest.fixture(scope="module")
def states() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    latest, best = _random_state(1), _random_state(2)
    assert all(not torch.equal(latest[k], best[k]) for k in latest)  # every tensor tells the two apart
    return latest, best


def _hrnet_checkpoint(latest=None, best=None) -> dict:
    obj = {"epoch": 140, "model": "pose_hrnet", "perf": 0.744, "optimizer": {"state": {}, "param_groups": []}}
    if latest is not None:
        obj["state_dict"] = {f"module.{k}": v for k, v in latest.items()}
    if best is not None:
        obj["best_state_dict"] = dict(best)
    return obj


def _weights(loaded) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in loaded.model.state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("which", "expected"), [("auto", "latest"), ("state_dict", "latest"),
                                                 ("best_state_dict", "best")])
def test_checkpoint_pth_yields_the_chosen_epoch(tmp_path: Path, states, which, expected):
    latest, best = states
    path = tmp_path / "checkpoint.pth"
    torch.save(_hrnet_checkpoint(latest, best), path)
    loaded = load_checkpoint(path, which=which)
    assert loaded.meta.arch == "hrnet_w32" and loaded.meta.source == "hrnet-checkpoint"
    assert loaded.meta.num_joints == 17 and loaded.meta.keypoints == "coco" and loaded.meta.color == "rgb"
    got = _weights(loaded)
    assert _equal(got, latest if expected == "latest" else best)
    assert not _equal(got, best if expected == "latest" else latest)


def test_auto_falls_back_to_best_when_there_is_no_latest(tmp_path: Path, states):
    _, best = states
    path = tmp_path / "checkpoint.pth"
    torch.save(_hrnet_checkpoint(None, best), path)
    assert _equal(_weights(load_checkpoint(path)), best)
    with pytest.raises(CheckpointError, match="no state dict under state_dict"):
        load_checkpoint(path, which="state_dict")


def test_only_a_leading_module_prefix_is_stripped(states):
    latest, best = states
    sd, source, meta = extract_state_dict(_hrnet_checkpoint(latest, best))
    assert list(sd) == list(latest) and source == "hrnet-checkpoint" and meta == {}
    assert all(torch.equal(sd[k], latest[k]) for k in sd)
    sd, _, _ = extract_state_dict(_hrnet_checkpoint(latest, best), "best_state_dict")
    assert all(torch.equal(sd[k], best[k]) for k in sd)
    odd = {"module.final_layer.weight": torch.zeros(1), "head.module.x": torch.ones(1)}
    sd, _, _ = extract_state_dict(odd)
    assert set(sd) == {"final_layer.weight", "module.x"}


def test_plain_state_dicts_ignore_auto_but_not_a_named_key(states):
    latest, _ = states
    sd, source, _ = extract_state_dict(dict(latest))
    assert source == "hrnet" and all(torch.equal(sd[k], latest[k]) for k in latest)
    with pytest.raises(CheckpointError, match="no state dict under best_state_dict"):
        extract_state_dict(dict(latest), "best_state_dict")
    with pytest.raises(ValueError, match="which must be one of"):
        extract_state_dict(dict(latest), "latest")


def test_a_dict_with_both_keys_but_no_optimizer_is_not_called_an_hrnet_checkpoint(states):
    latest, best = states
    sd, source, _ = extract_state_dict({"state_dict": latest, "best_state_dict": best})
    assert source == "hrnet" and all(torch.equal(sd[k], latest[k]) for k in latest)

