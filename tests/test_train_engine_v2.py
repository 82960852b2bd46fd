"""Training engine v2: drawing vs cropping, per-sample extras, method settings on resume, training_info, named
losses in the log, methods with their own epoch, and AdvMix unchanged by the port.

The digests below were recorded with the engine as it was before the split (commit 5cc31ed), on this project's
CPU build of torch; they pin today's crops and the AdvMix iteration bit for bit.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.datasets.synthpose import SynthConfig, generate_split
from robustpose.models import load_checkpoint, torch_load
from robustpose.report.leaderboard import run_row
from robustpose.train import (AdvMixConfig, AdvMixMethod, Callbacks, StandardConfig, StandardMethod,
                              resolve_config, train)
from robustpose.train.data import Augment, TopDownDataset, keypoint_set_for, read_samples
from robustpose.train.method import settings_from

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pre_v2"
TORCH_RECORDED = "2.13.0"  # the torch the digests were recorded with

CROP_DIGESTS = {
    "coco_aug": "10d0b9d1b77a63628a75a341e4a3c187cc74f947973a10a2c4d17d839d760d9f",
    "coco_plain": "c9746b9cfbcd5920cfc367a23b10ed17c6a41eaa99c450907980885d0aae5fb2",
    "mpii_aug": "608536eeb2c96a2eba6f37123bbe67575992b6282e97027849ec165bad622e32",
    "mpii_plain": "96d10b1d00a29935fa70de6df98ed055354a3f8ed9d8bfa033d5d0c7ff06bdb3",
    "ochuman_aug": "2cbec164d6b7d4e72d9b57f10f5c0fb3d17b001d9e18e3f078e2b93f2971b253",
    "ochuman_plain": "e4fd6fd088dacb6e389892c7186bac746dbe2a9593a2eaa763a7cf70b49a646d",
    "synth_aug": "6b615a07c41332a5072f0df8afa03daacbd1e755c147b6a7977123edd65ab03f",
    "synth_plain": "8c4eebd299176ca53380037f558e53b4784a446a054df21f25d17a98fb1cc899",
}
SYNTH_IMAGES = "1aa47171768985de56f96d86fefc4ce6df5884ffa0f0d419482a8c364b5c2093"
ADVMIX_DIGESTS = {
    "weights": "9888989d2568383c892da44612b45c62ee007ef795981b6c6d463795324a8772",
    "generator": "0ec9cde90e4d8b0492647b53ce17cd1c878514414ce1af189104ae144b8e7e2c",
    "optimizer": "90783b4756d3b3ac2872e4df3f53515ad03ccdb61121bcb98dd18eaf293b4498",
    "gen_optimizer": "27ec192e8e0176ce7e12f497379953456c76844c322b3a8d9b5f0e5219b8135c",
}
# Every branch of the draw: half-body fires on the sample people (more than 3 visible joints).
AUG = Augment(scale_factor=0.35, rotation_factor=45.0, rotation_prob=0.6, flip=True, half_body_prob=0.5,
              half_body_min_joints=3)
TINY = {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16]}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _update(h: Any, obj: Any) -> None:
    """Hash tensors (dtype, shape, bytes), mappings (sorted keys) and sequences; other values by repr."""
    if isinstance(obj, torch.Tensor):
        h.update(str(obj.dtype).encode())
        h.update(str(tuple(obj.shape)).encode())
        h.update(obj.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(str(k).encode())
            _update(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _update(h, v)
    else:
        h.update(repr(obj).encode())


def digest(obj: Any) -> str:
    h = hashlib.sha256()
    _update(h, obj)
    return h.hexdigest()


def _dataset(dataset: str, ann: Path, images: Path, aug: Augment | None, extras=None) -> TopDownDataset:
    size = (64, 48)
    kind = "mpii" if dataset == "mpii" else "coco"
    samples = read_samples(kind, ann, images, size[1] / size[0])
    return TopDownDataset(samples, keypoint_set_for(kind), size, (16, 12), 1.5, aug, seed=3, extras=extras)


@pytest.fixture(scope="module")
def sources(shared_data, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    synth = tmp_path_factory.mktemp("synth")
    generate_split(synth, "train", 3, SynthConfig(), 0)
    h = hashlib.sha256()
    for p in sorted((synth / "images").rglob("*.jpg")):
        h.update(p.read_bytes())
    if h.hexdigest() != SYNTH_IMAGES:
        pytest.fail("SynthPose's rendering changed, so the recorded SynthPose crop digests no longer apply: "
                    "re-record them with the engine of commit 5cc31ed")
    return {"coco": (shared_data / "coco/test_coco.json", shared_data / "coco"),
            "mpii": (shared_data / "mpii/test_mpii.json", shared_data / "mpii"),
            "ochuman": (shared_data / "ochuman/test_ochuman.json", shared_data / "ochuman"),
            "synth": (synth / "annotations/person_keypoints_train.json", synth / "images")}


def _crops_digest(ds: TopDownDataset, epochs: int) -> str:
    h = hashlib.sha256()
    for e in range(epochs):
        ds.set_epoch(e)
        for i in range(len(ds)):
            item = ds[i]
            for k in ("image", "target", "weight", "index"):
                h.update(item[k].numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", ["coco", "mpii", "ochuman", "synth"])
def test_crops_and_targets_are_byte_identical_to_the_engine_before_the_split(sources, name):
    ann, images = sources[name]
    assert _crops_digest(_dataset(name, ann, images, AUG), 3) == CROP_DIGESTS[f"{name}_aug"]
    assert _crops_digest(_dataset(name, ann, images, None), 1) == CROP_DIGESTS[f"{name}_plain"]


def test_getitem_is_crop_of_draw_params_and_identity_params_give_the_plain_crop(sources):
    ds = _dataset("coco", *sources["coco"], AUG)
    plain = _dataset("coco", *sources["coco"], None)
    ds.set_epoch(2)
    fired = {"flip": False, "half_body": False}
    for i in range(len(ds)):
        params = ds.draw_params(i, np.random.default_rng([3, 2, i]))  # the documented stream (seed, epoch, index)
        fired = {k: fired[k] or getattr(params, k) for k in fired}
        a, b = ds[i], ds.crop(i, params)
        assert all(torch.equal(a[k], b[k]) for k in a)
        identity = replace(params, center=plain.samples[i].center, scale=plain.samples[i].scale, rotation=0.0,
                           flip=False)
        c, d = ds.crop(i, identity), plain[i]
        assert all(torch.equal(c[k], d[k]) for k in c)
    assert all(fired.values()), fired  # both branches of the draw were exercised


@dataclass(frozen=True)
class NoiseExtras:
    """Draws a lot from its stream: if it shared the crop's stream, every base draw after it would move."""

    name: str = "noise-test"

    def __call__(self, item, params, sample, rng):
        return {"noise": torch.from_numpy(rng.standard_normal(item["image"].shape).astype(np.float32)),
                "first": torch.tensor(rng.random())}


def test_extras_leave_every_base_crop_and_draw_unchanged(sources):
    base = _dataset("ochuman", *sources["ochuman"], AUG)
    with_extras = _dataset("ochuman", *sources["ochuman"], AUG, extras=NoiseExtras())
    for epoch in range(3):
        base.set_epoch(epoch)
        with_extras.set_epoch(epoch)
        for i in range(len(base)):
            a, b = base[i], with_extras[i]
            assert set(b) == set(a) | {"noise", "first"}
            assert all(torch.equal(a[k], b[k]) for k in a)
            p, q = base.params(i), with_extras.params(i)
            assert all(np.array_equal(getattr(p, f), getattr(q, f)) for f in p.__dataclass_fields__)
            # the extras' stream is its own: seeded by (seed, epoch, index, key of the name), not the crop's
            key = int.from_bytes(hashlib.sha256(b"noise-test").digest()[:4], "little")
            expected = np.random.default_rng([3, epoch, i, key]).standard_normal(a["image"].shape)
            assert torch.equal(b["noise"], torch.from_numpy(expected.astype(np.float32)))
            assert float(b["first"]) != np.random.default_rng([3, epoch, i]).random()
            assert torch.equal(b["noise"], with_extras[i]["noise"])  # deterministic per (epoch, index)


def test_extras_may_not_replace_base_keys(sources):
    @dataclass(frozen=True)
    class Bad:
        name: str = "bad"

        def __call__(self, item, params, sample, rng):
            return {"target": torch.zeros(1)}

    ds = _dataset("coco", *sources["coco"], AUG, extras=Bad())
    with pytest.raises(ValueError, match="base keys"):
        ds[0]


# ---------------------------------------------------------------- a method with settings and extras


@dataclass
class NoiseConfig:
    strength: float = 0.0
    tag: str = "x"


class NoiseMethod(StandardMethod):
    """Standard training on crops plus ``strength`` x per-sample noise from the loader workers."""

    name = "noise"
    settings_class = NoiseConfig

    def __init__(self, model, config, device):
        super().__init__(model, config, device, settings=StandardConfig())
        self.settings = settings_from(NoiseConfig, config)
        self.bound = None

    def init_files(self):
        return {}

    def bind_data(self, train_set):
        self.bound = train_set

    def extras(self):
        return NoiseExtras()

    def step(self, batch):
        assert "noise" in batch and self.bound is not None
        noisy = dict(batch, image=batch["image"] + self.settings.strength * batch["noise"])
        out = super().step(noisy)
        self.steps = getattr(self, "steps", 0) + 1
        probe = {"probe": float(self.steps)} if self.steps % 2 else {}  # reported by every other step only
        return {**out, "noise_abs": float(batch["noise"].abs().mean()), **probe}


def tiny(shared_data, out, **over) -> Any:
    d = shared_data / "coco"
    layer = {"data": {"dataset": "coco", "train_ann": str(d / "test_coco.json"), "train_images": str(d),
                      "val_ann": str(d / "test_coco.json"), "val_images": str(d), "input_size": [64, 64],
                      "heatmap_size": [16, 16], "sigma": 1.0},
             "model": TINY, "optim": {"lr": 5e-3, "milestones": [2]}, "epochs": 1, "batch_size": 4, "threads": 1,
             "device": "cpu", "seed": 5, "out": str(out)}
    return resolve_config(layer, over)


def test_three_epochs_equal_one_plus_a_resume_for_two_with_extras_and_settings(shared_data, tmp_path):
    settings = {"method": "noise", "method_settings": {"strength": 0.5, "tag": "y"}}
    full = train(tiny(shared_data, tmp_path / "full", epochs=3, **settings), NoiseMethod)
    # the cut run loads its data in a worker process: the extras do not depend on where they are computed
    train(tiny(shared_data, tmp_path / "cut", epochs=1, **settings, data={"workers": 1}), NoiseMethod)
    resumed = train(tiny(shared_data, tmp_path / "cut", epochs=3, **settings), NoiseMethod, resume=True)
    a, b = torch_load(full.checkpoint), torch_load(resumed.checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [r["loss"] for r in full.log] == [r["loss"] for r in resumed.log]
    saved = (tmp_path / "cut" / "config.yaml").read_text()
    assert "strength: 0.5" in saved and "tag: y" in saved
    assert b["config"]["method_settings"] == {"strength": 0.5, "tag": "y"}
    # the noise reached the steps (strength 0 gives other weights)
    plain = train(tiny(shared_data, tmp_path / "plain", epochs=3, method="noise",
                       method_settings={"strength": 0.0}), NoiseMethod)
    c = torch_load(plain.checkpoint)
    assert any(not torch.equal(a["state_dict"][k], c["state_dict"][k]) for k in a["state_dict"])
    # resuming with other settings is refused, naming them
    with pytest.raises(ValueError, match=r"strength=0.5 \(this run: 0.25\)"):
        train(tiny(shared_data, tmp_path / "cut", epochs=4, method="noise",
                   method_settings={"strength": 0.25, "tag": "y"}), NoiseMethod, resume=True)


def test_log_has_one_column_per_named_value_with_its_epoch_mean(shared_data, tmp_path):
    seen: list[tuple[int, dict[str, float]]] = []
    cb = Callbacks(on_step=lambda epoch, step, losses: seen.append((epoch, dict(losses))))
    result = train(tiny(shared_data, tmp_path / "r", epochs=2, method="noise", method_settings={"strength": 0.1}),
                   NoiseMethod, callbacks=cb)
    rows = list(csv.DictReader((result.out / "log.csv").open()))
    assert "noise_abs" in rows[0] and "loss" in rows[0]
    for epoch, row in enumerate(rows):
        values = [s["noise_abs"] for e, s in seen if e == epoch]
        losses = [s["loss"] for e, s in seen if e == epoch]
        assert len(values) == 3
        assert float(row["noise_abs"]) == pytest.approx(sum(values) / 3, rel=1e-12)
        assert float(row["loss"]) == pytest.approx(sum(losses) / 3, rel=1e-12)
        probes = [s["probe"] for e, s in seen if e == epoch and "probe" in s]
        assert float(row["probe"]) == pytest.approx(sum(probes) / len(probes), rel=1e-12) and len(probes) < 3


class EpochMethod(StandardMethod):
    """A method that runs its own epoch: two steps on a fixed synthetic batch, never touching the loader."""

    name = "own-epoch"

    def bind_data(self, train_set):
        self.train_set = train_set

    def train_epoch(self, epoch, on_step):
        g = torch.Generator().manual_seed(epoch)
        batch = {"image": torch.randn(2, 3, 64, 64, generator=g), "target": torch.rand(2, 17, 16, 16, generator=g),
                 "weight": torch.ones(2, 17)}
        for step in range(2):
            losses = self.step(batch)
            on_step(step, {**losses, "gan": float(step + epoch)})


def test_a_method_with_its_own_epoch(shared_data, tmp_path, monkeypatch):
    def no_loader(*args, **kwargs):
        raise AssertionError("the engine built a loader for a method with train_epoch")

    monkeypatch.setattr("robustpose.train.engine.DataLoader", no_loader)
    steps: list[int] = []
    result = train(tiny(shared_data, tmp_path / "own", epochs=2), EpochMethod,
                   callbacks=Callbacks(on_step=lambda e, s, losses: steps.append(s)))
    assert steps == [0, 1, 0, 1]
    assert [r["steps"] for r in result.log] == [2, 2]
    assert [r["gan"] for r in result.log] == [0.5, 1.5]
    assert "val_score" in result.log[-1] and result.best.is_file()


# ---------------------------------------------------------------- old checkpoints, training_info, leaderboard


def test_checkpoints_written_before_v2_load_and_resume_exactly(shared_data, tmp_path):
    """The fixture files were written by the engine of commit 5cc31ed: a 1-epoch standard run (seed 2)."""
    best = load_checkpoint(FIXTURES / "best.pth")
    assert best.meta.training_method == "standard" and best.meta.training_info == {}
    assert best.meta.arch == "simplebaseline_res18"
    run = tmp_path / "old"
    run.mkdir()
    shutil.copy(FIXTURES / "checkpoint.pth", run / "checkpoint.pth")
    model = {"arch": "simplebaseline_res18", "kwargs": {"stem_width": 4, "deconv_channels": [8, 8, 8]}}
    over = {"model": model, "optim": {"lr": 5e-3, "milestones": [100]}, "seed": 2, "epochs": 2}
    resumed = train(tiny(shared_data, run, **over), StandardMethod, resume=True)
    fresh = train(tiny(shared_data, tmp_path / "fresh", **over), StandardMethod)
    a, b = torch_load(resumed.checkpoint), torch_load(fresh.checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_training_info_records_method_settings_seed_and_the_init_hash(shared_data, tmp_path):
    std = train(tiny(shared_data, tmp_path / "std"), StandardMethod)
    init_sha = hashlib.sha256(std.best.read_bytes()).hexdigest()
    ft = train(tiny(shared_data, tmp_path / "ft", method_settings={"init": str(std.best)}, seed=7), StandardMethod)
    info = load_checkpoint(ft.best).meta.training_info
    assert info == {"method": "standard", "settings": {}, "seed": 7, "files": {"init": init_sha}, "pools": {},
                    "select": "clean"}
    # fine-tuning started from the init weights, not from a fresh initialisation
    start = load_checkpoint(std.best).model.state_dict()
    scratch = torch_load(std.checkpoint)["state_dict"]
    tuned = torch_load(ft.checkpoint)["state_dict"]
    drift = lambda sd: sum(float((sd[k].float() - start[k].float()).abs().sum()) for k in start)  # noqa: E731
    assert drift(tuned) < drift(scratch) or drift(scratch) == 0

    adv = train(tiny(shared_data, tmp_path / "adv", method="advmix",
                     method_settings={"init": str(std.best), "mixer": "equal", "gen_width": 4}), AdvMixMethod)
    meta = load_checkpoint(adv.best).meta
    assert meta.training_method == "advmix[mixer=equal]"
    assert meta.training_info["settings"] == {"mixer": "equal", "gen_width": 4}
    assert meta.training_info["files"] == {"init": init_sha} and meta.training_info["seed"] == 5


def test_leaderboard_shows_the_method_and_its_non_default_settings(shared_data, tmp_path):
    std = train(tiny(shared_data, tmp_path / "std"), StandardMethod)
    adv = train(tiny(shared_data, tmp_path / "adv", method="advmix",
                     method_settings={"init": str(std.best), "mixer": "dirichlet", "kd": False}), AdvMixMethod)
    d = shared_data / "coco"
    result = CliRunner().invoke(cli, [
        "eval", "--ckpt", str(adv.best), "--dataset", "coco", "--ann", str(d / "test_coco.json"), "--images", str(d),
        "--out", str(tmp_path / "eval"), "--corruptions", "jpeg_compression", "--severities", "1", "--workers", "0",
        "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert run_row(tmp_path / "eval")["method"] == "advmix[mixer=dirichlet,kd=False]"


# ---------------------------------------------------------------- AdvMix: the port changed nothing


def _advmix_state(shared_data, tmp_path, via_config: bool) -> dict[str, str]:
    std = train(tiny(shared_data, tmp_path / "std"), StandardMethod)
    settings = AdvMixConfig(init=str(std.best), gen_width=4, probe_every=2)
    if via_config:
        config = tiny(shared_data, tmp_path / "adv", method="advmix",
                      method_settings={"init": str(std.best), "gen_width": 4, "probe_every": 2})
        result = train(config, AdvMixMethod)
    else:
        result = train(tiny(shared_data, tmp_path / "adv", method="advmix"),
                       lambda m, c, d: AdvMixMethod(m, c, d, settings=settings))
    assert result.log[0]["steps"] == 3
    ck = torch_load(result.checkpoint)
    m = ck["train_state"]["method"]
    return {"weights": digest(ck["state_dict"]), "generator": digest(m["generator"]),
            "optimizer": digest(m["optimizer"]), "gen_optimizer": digest(m["gen_optimizer"])}


@pytest.mark.parametrize("via_config", [False, True])
def test_advmix_three_steps_are_bit_identical_to_before_the_port(shared_data, tmp_path, via_config):
    if torch.__version__.split("+")[0] != TORCH_RECORDED:
        pytest.skip(f"digests recorded with torch {TORCH_RECORDED}")
    assert _advmix_state(shared_data, tmp_path, via_config) == ADVMIX_DIGESTS


# ---------------------------------------------------------------- the CLI: settings restored, contradictions refused


def test_cli_resume_restores_method_settings_and_refuses_contradicting_flags(shared_data, tmp_path):
    std = train(tiny(shared_data, tmp_path / "std"), StandardMethod)
    d = shared_data / "coco"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  arch: simplebaseline_res18\n  kwargs: {stem_width: 8, deconv_channels: [16, 16, 16]}\n"
                   "data: {sigma: 1.0}\n")
    run = tmp_path / "run"
    common = ["--data", "coco", "--train-ann", str(d / "test_coco.json"), "--train-images", str(d), "--val-ann",
              str(d / "test_coco.json"), "--val-images", str(d), "--config", str(cfg), "--input-size", "64x64",
              "--batch-size", "4", "--threads", "1", "--device", "cpu"]
    first = CliRunner().invoke(cli, ["train", "advmix", *common, "--epochs", "1", "--init", str(std.best),
                                     "--gen-width", "4", "--mixer", "dirichlet", "--alpha", "0.2", "--out", str(run)])
    assert first.exit_code == 0, first.output
    before = (run / "checkpoint.pth").read_bytes()
    for flags, named in ((["--mixer", "equal"], "--mixer"), (["--lr", "0.1"], "--lr"),
                         (["--input-size", "96x64"], "--input-size"), (["--no-kd"], "--kd")):
        bad = CliRunner().invoke(cli, ["train", "advmix", "--out", str(run), "--resume", "--epochs", "2", *flags])
        assert bad.exit_code == 2, bad.output
        lines = [line for line in bad.output.splitlines() if line.strip().startswith("Error")]
        assert len(lines) == 1 and named in lines[0] and "--resume" in lines[0], bad.output
        assert (run / "checkpoint.pth").read_bytes() == before  # nothing was written
    wrong_method = CliRunner().invoke(cli, ["train", "standard", "--out", str(run), "--resume", "--epochs", "2"])
    assert wrong_method.exit_code == 2 and "method" in wrong_method.output
    # no settings typed again: the run's own come back; the same value typed again is no contradiction
    ok = CliRunner().invoke(cli, ["train", "advmix", "--out", str(run), "--resume", "--epochs", "2", "--alpha", "0.2"])
    assert ok.exit_code == 0, ok.output
    meta = load_checkpoint(run / "checkpoint.pth").meta
    assert meta.training_method == "advmix[mixer=dirichlet,alpha=0.2]"
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and "loss_kd" in rows[0]
