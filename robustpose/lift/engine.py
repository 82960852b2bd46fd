"""The lifting track's training loop: epochs, validation on the ``val`` split, checkpoints, exact resume, log.

Why not :func:`robustpose.train.engine.train`: that engine is built around image data (``TopDownDataset``, loaders,
heatmap models created from the image registry, COCO AP / PCK validation, image ``CheckpointMeta``); a lifter trains
on in-memory arrays of 2D/3D pairs and validates by MPJPE, lower is better. This loop keeps the engine's conventions
and reuses its helpers: the epoch order (``randperm`` seeded by ``(seed, epoch)``), the saved global RNG states, the
method protocol (``name``, ``settings``, ``start_epoch``, ``train_epoch(epoch, on_step)``, ``state_dict``), the
settings check on resume, ``training_info`` provenance, atomic writes and ``weights_only`` loading.

Run directory: ``config.yaml``, ``log.csv``, ``checkpoint.pth`` (every epoch: lifter weights, metadata, method
state, RNG states, log, config) and ``best.pth`` (the epoch with the lowest validation MPJPE; a run that starts
from an ``init`` checkpoint also scores the starting weights, as epoch -1, so every method may keep them). Checkpoints are
selected on the ``val`` split only, never on a test split (the official PoseAug code keeps the best *test* error).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from robustpose.datasets.imageio import write_atomic
from robustpose.models.checkpoint import CheckpointError, torch_load
from robustpose.train.engine import (
    StepMeans,
    _write_log,
    check_resumed_settings,
    resolve_device,
    rng_states,
    seed_everything,
    set_rng_states,
)
from robustpose.train.method import StepCallback, training_info

from .data import LiftData, LiftSet, resolve_data
from .metrics import mpjpe
from .models import create_lifter
from .skeleton import JOINTS

FORMAT_KEY = "robustpose_lift_checkpoint"
FORMAT_VERSION = 1


@dataclass
class LiftConfig:
    """A lifting run: data, lifter, optimiser, schedule, method. ``lr`` is the lifter's Adam learning rate, decayed
    by ``lr_decay`` every ``decay_steps`` steps (Martinez et al.: 1e-3, 0.96, 100k)."""

    data: str = ""
    data_2d: str = ""
    splits: str = ""
    cameras: str = ""
    arch: str = "martinez"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.96
    decay_steps: int = 100_000
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    out: str = ""
    method: str = "standard"
    method_settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LiftConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown lifting config keys {unknown}; known: {sorted(known)}")
        return cls(**d)

    def lift_data(self) -> LiftData:
        return resolve_data(self.data, self.data_2d or None, self.splits or None, self.cameras or None)


@dataclass
class LiftCallbacks:
    """Progress hooks (the CLI prints with them; the library never prints)."""

    on_step: Callable[[int, int, dict[str, float]], None] = lambda epoch, step, values: None
    on_epoch: Callable[[dict[str, Any]], None] = lambda row: None


@dataclass
class LiftResult:
    out: Path
    log: list[dict[str, Any]]
    best_score: float
    checkpoint: Path
    best: Path


def tensors(data: LiftSet, device: torch.device) -> dict[str, torch.Tensor]:
    """A split's arrays as float32 tensors on ``device``: ``pose2d``, ``pose3d`` (camera), ``target`` (root-relative),
    ``intrinsics``."""
    p3 = torch.as_tensor(data.pose3d, device=device)
    return {"pose2d": torch.as_tensor(data.pose2d, device=device), "pose3d": p3, "target": p3 - p3[:, :1],
            "intrinsics": torch.as_tensor(data.intrinsics, device=device)}


def lifter_lr(base: float, decay: float, decay_steps: int, step: int) -> float:
    """``base * decay ** (step // decay_steps)`` (Martinez et al.'s staircase decay)."""
    return base * decay ** (step // decay_steps)


def lifter_steps(lifter: nn.Module, optimizer: torch.optim.Optimizer, pose2d: torch.Tensor, target: torch.Tensor,
                 order: list[int], config: LiftConfig, counter: dict[str, int], report: StepCallback,
                 key: str = "loss") -> None:
    """One pass of MPJPE-loss steps over ``order`` in batches (the last incomplete batch dropped, as the image
    engine does; BatchNorm needs more than one sample); ``counter['steps']`` drives the learning-rate decay."""
    lifter.train()
    bs = config.batch_size
    for b in range(len(order) // bs):
        idx = torch.as_tensor(order[b * bs:(b + 1) * bs], device=pose2d.device)
        for group in optimizer.param_groups:
            group["lr"] = lifter_lr(config.lr, config.lr_decay, config.decay_steps, counter["steps"])
        loss = (lifter(pose2d[idx]) - target[idx]).norm(dim=-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        counter["steps"] += 1
        report(b, {key: float(loss.detach())})


@torch.no_grad()
def predict(lifter: nn.Module, pose2d: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
            batch_size: int = 4096) -> np.ndarray:
    """``(N, 16, 3)`` root-relative predictions (metres) of ``(N, 16, 2)`` normalised keypoints, eval mode."""
    was = lifter.training
    lifter.eval()
    x = torch.as_tensor(np.asarray(pose2d, np.float32), device=device)
    out = torch.cat([lifter(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).cpu().numpy()
    lifter.train(was)
    return out


def validation_mpjpe(lifter: nn.Module, val: LiftSet, device: torch.device) -> float:
    """MPJPE in millimetres on root-relative validation poses."""
    gt = val.pose3d - val.pose3d[:, :1]
    return 1000.0 * mpjpe(predict(lifter, val.pose2d, device), gt)


def lift_meta(config: LiftConfig, method_name: str, info: dict[str, Any]) -> dict[str, Any]:
    """Metadata stored in every lifting checkpoint."""
    return {"arch": config.arch, "arch_kwargs": dict(config.arch_kwargs), "joints": list(JOINTS),
            "input": "2D keypoints normalised by the image width (u' = 2u/w - 1, v' = 2v/w - h/w)",
            "output": "root-relative camera-coordinate joints, metres", "training_method": method_name,
            "training_info": dict(info), "source": "robustpose"}


def save_lift_checkpoint(path: Path, lifter: nn.Module, meta: dict[str, Any], extra: dict[str, Any]) -> None:
    """Atomic ``torch.save`` of ``{robustpose_lift_checkpoint: 1, meta, state_dict, **extra}`` (tensors and plain
    values only, so it loads with ``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save({FORMAT_KEY: FORMAT_VERSION, "meta": meta,
                "state_dict": {k: v.detach().cpu() for k, v in lifter.state_dict().items()}, **extra}, buf)
    write_atomic(path, buf.getvalue())


def load_lift_checkpoint(path: str | Path) -> dict[str, Any]:
    """A lifting checkpoint's dict (weights-only loading); another kind of file is a ``CheckpointError`` naming it."""
    obj = torch_load(path)
    if not isinstance(obj, dict) or FORMAT_KEY not in obj:
        raise CheckpointError(f"{path} is not a robustpose lifting checkpoint (no {FORMAT_KEY!r} key); give a "
                              "best.pth or checkpoint.pth of `robustpose lift train`")
    return obj


def load_lifter(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """(lifter with the checkpoint's weights, in eval mode, metadata)."""
    obj = load_lift_checkpoint(path)
    meta = obj["meta"]
    lifter = create_lifter(meta["arch"], **meta["arch_kwargs"])
    try:
        lifter.load_state_dict(obj["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {meta['arch']} {meta['arch_kwargs']} "
                              f"({str(err).splitlines()[0]})") from err
    return lifter.to(device).eval(), meta


def save_config(config: LiftConfig, path: Path) -> None:
    write_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())


def load_config(path: Path) -> LiftConfig:
    """``RUN_DIR/config.yaml`` of a lifting run; an unreadable file is a ``ValueError`` naming it."""
    try:
        return LiftConfig.from_dict(yaml.safe_load(Path(path).read_text()) or {})
    except (OSError, yaml.YAMLError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a lifting run config ({err})") from err


MethodFactory = Callable[..., Any]


def train_lift(config: LiftConfig, methods: dict[str, MethodFactory], *, resume: bool = False,
               callbacks: LiftCallbacks | None = None) -> LiftResult:
    """Run (or resume) a lifting run; ``methods[config.method](lifter, config, device, train_set)`` builds the
    method. Raises ``FileExistsError`` / ``FileNotFoundError`` for a wrong ``resume`` and ``ValueError`` for other
    settings than the resumed run's."""
    cb = callbacks or LiftCallbacks()
    out = Path(config.out)
    ckpt_path, best_path, log_path = out / "checkpoint.pth", out / "best.pth", out / "log.csv"
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}; start the run without --resume")
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    data = config.lift_data()
    train_set, val_set = data.load("train"), data.load("val")
    lifter = create_lifter(config.arch, **config.arch_kwargs).to(device)
    method = methods[config.method](lifter, config, device, train_set)
    config = replace(config, method_settings=asdict(method.settings))
    meta = lift_meta(config, method.name, training_info(config, method))

    first_epoch, log, best = 0, [], float("inf")
    if resume:
        state = torch_load(ckpt_path)
        check_resumed_settings(state.get("config", {}).get("method_settings", {}), config.method_settings,
                               config.method, ckpt_path)
        lifter.load_state_dict(state["state_dict"])
        ts = state["train_state"]
        method.load_state_dict(ts["method"])
        first_epoch, log, best = ts["epoch"] + 1, list(ts["log"]), ts["best_score"]
        set_rng_states(ts["rng"])
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    if not resume and method.init_files():
        # The starting weights are a candidate too (epoch -1): otherwise a method whose first epochs leave the
        # lifter alone (PoseAug's warm-up) could keep its init and one that trains from the first step could not.
        best = validation_mpjpe(lifter, val_set, device)
        save_lift_checkpoint(best_path, lifter, meta, {"config": config.to_dict(), "epoch": -1,
                                                       "val": {"epoch": -1, "val_metric": "MPJPE", "val_score": best}})
    for epoch in range(first_epoch, config.epochs):
        t0 = time.perf_counter()
        method.start_epoch(epoch)
        lr = method.lr()
        means = StepMeans()

        def on_step(step: int, values: dict[str, float], epoch: int = epoch, means: StepMeans = means) -> None:
            means.add(values)
            cb.on_step(epoch, step, values)

        method.train_epoch(epoch, on_step)
        score = validation_mpjpe(lifter, val_set, device)
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "loss": 0.0, **means.means(), "val_metric": "MPJPE",
                               "val_score": score, "epoch_s": round(time.perf_counter() - t0, 3)}
        log.append(row)
        if score < best:
            best = score
            save_lift_checkpoint(best_path, lifter, meta, {"config": config.to_dict(), "epoch": epoch, "val": row})
        train_state = {"epoch": epoch, "method": method.state_dict(), "log": log, "best_score": best,
                       "rng": rng_states()}
        save_lift_checkpoint(ckpt_path, lifter, meta, {"config": config.to_dict(), "train_state": train_state})
        _write_log(log_path, log)
        cb.on_epoch(row)
    return LiftResult(out, log, best, ckpt_path, best_path)

