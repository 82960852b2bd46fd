"""The training loop shared by every method: data order, epochs, validation, checkpoints, resume, log, DDP.

A method (standard, AdvMix, ...) is the only varying part: it owns the networks, optimisers and the per-batch
update, behind the :class:`~robustpose.train.method.Method` protocol and its optional hooks (settings, data binding,
per-sample extras, an epoch of its own). Everything else is here:

* **Data order**: epoch ``e`` visits the samples in ``randperm(N)`` of a generator seeded by ``(seed, e)``, split
  across DDP ranks by striding; each sample's augmentation is seeded by ``(seed, e, index)``
  (:class:`~robustpose.train.data.TopDownDataset`). Neither depends on workers or on interruptions.
* **Checkpoints** (atomic): ``RUN_DIR/checkpoint.pth`` after every epoch (weights, method state, epoch, RNG states
  of torch/numpy/python, the log so far, the resolved config) and ``RUN_DIR/best.pth`` (weights + metadata of the
  epoch with the best validation score). Both load with :func:`robustpose.models.load_checkpoint`.
* **Resume** from ``checkpoint.pth`` continues at the next epoch and reproduces the uninterrupted run's weights.
* **Log**: ``RUN_DIR/log.csv``, one row per epoch, one column per value a step returns (its epoch mean);
  ``RUN_DIR/config.yaml``, the resolved config with the method's settings (``method_settings``).
* **Provenance**: checkpoints record ``CheckpointMeta.training_info`` (method, non-default settings, seed, SHA-256 of
  the files the run started from, pool hashes).
* **DDP**: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is initialised (NCCL on CUDA, Gloo on CPU),
  the model wrapped in ``DistributedDataParallel`` (batch norms over the global batch with ``sync_bn``); the log
  shows the mean over processes of each step's values; rank 0 validates and writes. A resumed run may change the
  process count if the global batch (processes x ``batch_size``) stays; a peer that dies stops the others with a
  :class:`~robustpose.train.distributed.PeerFailure` naming the checkpoint to resume from
  (:mod:`robustpose.train.distributed`).
"""

from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from robustpose.corruptions import GROUPS, SEVERITIES
from robustpose.datasets.imageio import write_atomic
from robustpose.inference.sources import OnTheFlyImages
from robustpose.models import CheckpointMeta, create_model, save_checkpoint, torch_load

from .config import TrainConfig, save_config
from .data import Augment, TopDownDataset, keypoint_set_for, read_samples
from .distributed import DistEnv, PeerFailure, convert_sync_batchnorm, global_means, init_process_group, is_peer_failure
from .method import Method, MethodFactory, settings_dict, training_info, unwrap
from .validate import coco_ap, pck, predict

LOG_COLUMNS = ("epoch", "lr", "loss", "val_metric", "val_score", "epoch_s", "data_s", "compute_s", "steps")
ENGINE_COLUMNS = (set(LOG_COLUMNS) - {"loss"}) | {"val_clean"}


class SettingError(ValueError):
    """A setting the model or the data cannot work with (found before anything is written); ``key`` is its
    config key (``data.input_size``, ``batch_size``), so the CLI can name the option that set it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class Callbacks:
    """Progress hooks (the CLI draws a progress bar with them; the library never prints)."""

    on_start: Callable[[int, int, int], None] = lambda first_epoch, epochs, steps_per_epoch: None
    on_step: Callable[[int, int, dict[str, float]], None] = lambda epoch, step, losses: None
    on_epoch: Callable[[dict[str, Any]], None] = lambda row: None


@dataclass
class TrainResult:
    """What a run produced: the run directory, its log rows, the best validation score and the checkpoints."""

    out: Path
    log: list[dict[str, Any]]
    best_score: float
    checkpoint: Path
    best: Path
    timings: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; other names as given."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's legacy global generator and Python's ``random`` (the engine itself passes generators)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_states() -> dict[str, Any]:
    """Global RNG states of torch (CPU, CUDA), numpy and Python, as checkpoint-safe plain values and tensors."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]]}


def set_rng_states(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """Sample order of one epoch for one rank: a seeded permutation, strided across ranks, equal lengths."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    order = torch.randperm(n, generator=g).tolist()
    per_rank = n // world
    return order[rank::world][:per_rank]


def init_loader_worker(worker_id: int) -> None:
    """Loader workers decode and warp in their own thread, without OpenCV's pool (no oversubscription).

    0 (run sequentially), not 1: ``setNumThreads(1)`` rebuilds the pool, and in a forked worker whose parent had
    used the pool it waits forever on a condition variable of the parent's pool thread (a copy no thread will ever
    release), so the first epoch never starts. ``setNumThreads(0)`` leaves the pool alone (tests/test_train_workers.py).
    """
    cv2.setNumThreads(0)


def to_device(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool = False
              ) -> dict[str, torch.Tensor]:
    """The batch on ``device``; with ``channels_last`` the ``(B, 3, H, W)`` images in NHWC memory order."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def checkpoint_meta(config: TrainConfig, method_name: str, num_joints: int,
                    info: dict[str, Any] | None = None) -> CheckpointMeta:
    """Metadata of the checkpoints a run writes (inputs are RGB, ImageNet-normalised); ``info`` is the
    provenance of :func:`~robustpose.train.method.training_info`."""
    kset = keypoint_set_for(config.data.dataset)
    return CheckpointMeta(
        arch=config.model.arch, input_size=tuple(config.data.input_size), heatmap_size=tuple(config.data.heatmap_size),
        color="rgb", keypoints=kset.name, joints=kset.joints, flip_pairs=kset.flip_pairs,
        training_method=method_name, arch_kwargs={**config.model.kwargs, "num_joints": num_joints}, source="robustpose",
        decode=config.decode, target_sigma=float(config.data.sigma), training_info=dict(info or {}),
    )


def check_output_size(model: nn.Module, config: TrainConfig, device: torch.device) -> None:
    """Raise :class:`SettingError` when the model cannot take ``input_size`` crops or its heatmaps for them are not
    ``heatmap_size``."""
    h, w = config.data.input_size
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, 3, h, w, device=device))
    except RuntimeError as exc:  # skip connections or HRNet's fusion of branches of mismatched sizes
        raise SettingError("data.input_size", f"{config.model.arch} cannot take {h}x{w} crops "
                           f"({str(exc).splitlines()[0]}); use an input size with both sides divisible by 32, "
                           "e.g. 256x192") from exc
    finally:
        model.train(was_training)
    if tuple(out.shape[-2:]) != tuple(config.data.heatmap_size):
        raise SettingError("data.input_size", f"{config.model.arch} turns {h}x{w} crops into {out.shape[-2]}x"
                           f"{out.shape[-1]} heatmaps, not data.heatmap_size {config.data.heatmap_size[0]}x"
                           f"{config.data.heatmap_size[1]}; use an input size with both sides divisible by 32 and "
                           "heatmaps a quarter of it")


def log_columns(rows: list[dict[str, Any]]) -> list[str]:
    """:data:`LOG_COLUMNS`, then every other name the rows carry (the methods' losses), in order of appearance."""
    columns = list(LOG_COLUMNS)
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=log_columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue().encode("utf-8"))


class StepMeans:
    """Running epoch means of the named values that steps return (each over the steps that reported it)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        clash = sorted(set(values) & ENGINE_COLUMNS)
        if clash:
            raise ValueError(f"a method's step returned {clash}: names the engine's log uses itself; rename them")
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}


def build_datasets(config: TrainConfig) -> tuple[TopDownDataset, TopDownDataset, Path]:
    """Training (augmented) and validation (plain) datasets, and the validation annotation file."""
    paths = config.data.resolved_paths()
    d = config.data
    aspect = d.input_size[1] / d.input_size[0]
    kset = keypoint_set_for(d.dataset)
    aug = Augment(**config.augment_params(), rotation_prob=d.rotation_prob, flip=d.flip)
    train = TopDownDataset(read_samples(d.dataset, paths["train_ann"], paths["train_images"], aspect), kset,
                           tuple(d.input_size), tuple(d.heatmap_size), d.sigma, aug, seed=config.seed)
    val = TopDownDataset(read_samples(d.dataset, paths["val_ann"], paths["val_images"], aspect), kset,
                         tuple(d.input_size), tuple(d.heatmap_size), d.sigma, None, seed=config.seed)
    return train, val, paths["val_ann"]


def validation_score(config: TrainConfig, model: nn.Module, val: TopDownDataset, val_ann: Path,
                     device: torch.device) -> tuple[str, float]:
    """(metric name, value): COCO AP on GT boxes for COCO-format data, PCK@0.1 of the box for MPII."""
    coords, scores = predict(unwrap(model), val, device, batch_size=max(config.batch_size, 32),
                             flip_test=config.flip_test, workers=config.data.workers, decode=config.decode)
    if config.data.dataset == "mpii":
        return "PCK@0.1", pck(val, coords)
    rules = "ochuman" if config.data.dataset == "ochuman" else "coco"
    return "AP", coco_ap(val_ann, val, coords, scores, rules=rules)["AP"]


@dataclass(frozen=True)
class HeldOutImages:
    """A validation image by path, corrupted in memory exactly as ``robustpose build-c`` would write it."""

    source: OnTheFlyImages

    def __call__(self, path: Path) -> np.ndarray:
        return self.source(Path(path).relative_to(self.source.root).as_posix())


def holdout_sets(val: TopDownDataset, images: Path) -> list[tuple[tuple[str, int], TopDownDataset]]:
    """The validation split under each held-out corruption (``GROUPS["extra"]``: speckle noise, Gaussian blur,
    spatter, saturate, as ImageNet-C set them aside for validation) at each severity, seeded and JPEG-encoded as the
    benchmark cells are; never one of the 15 benchmark corruptions."""
    sets = []
    for corruption in GROUPS["extra"]:
        for severity in SEVERITIES:
            cell = TopDownDataset(val.samples, val.kset, val.input_size, val.heatmap_size, val.sigma, None,
                                  seed=val.seed, load_image=HeldOutImages(OnTheFlyImages(images, corruption, severity)))
            sets.append(((corruption, severity), cell))
    return sets


def selection_scores(config: TrainConfig, model: nn.Module, val: TopDownDataset, val_ann: Path,
                     device: torch.device, holdout: list[tuple[tuple[str, int], TopDownDataset]]) -> dict[str, Any]:
    """The log's ``val_metric`` / ``val_score`` (the score ``config.select`` ranks epochs by) and, for
    ``holdout-c``, the clean score as ``val_clean``: the mean over the held-out cells is the score then."""
    metric, clean = validation_score(config, model, val, val_ann, device)
    if config.select != "holdout-c":
        return {"val_metric": metric, "val_score": clean}
    held_out = [validation_score(config, model, cell, val_ann, device)[1] for _, cell in holdout]
    return {"val_metric": f"{metric} held-out-C", "val_score": float(np.mean(held_out)), "val_clean": clean}


def check_resumed_settings(saved: dict[str, Any], current: dict[str, Any], method: str, ckpt: Path) -> None:
    """Raise ``ValueError`` naming the method settings in which a resumed run differs from the one it resumes
    (a checkpoint written before settings were recorded has none to compare)."""
    if not saved:
        return
    keys = sorted(set(saved) | set(current))
    diff = [f"{k}={saved.get(k)!r} (this run: {current.get(k)!r})" for k in keys if saved.get(k) != current.get(k)]
    if diff:
        raise ValueError(f"{ckpt} was trained with other {method} settings: {'; '.join(diff)}; resume with the "
                         "run's own settings or train into a new --out")


def check_global_batch(state: dict[str, Any], world: int, batch_size: int, ckpt: Path) -> None:
    """Raise ``ValueError`` unless this run's global batch (processes x per-process ``batch_size``) is the one the
    checkpoint trained with: then the same samples make every step, whatever the process count (checkpoints from
    before the count was recorded were written by one process)."""
    saved_world = int(state["train_state"].get("world", 1))
    saved_batch = int(state.get("config", {}).get("batch_size", batch_size))
    if saved_world * saved_batch != world * batch_size:
        fit = (saved_world * saved_batch) / world
        hint = (f"--batch-size {int(fit)} keeps it with {world} process(es)" if fit == int(fit)
                else f"use a process count that divides {saved_world * saved_batch}")
        raise ValueError(f"--resume: {ckpt} trained with a global batch of {saved_world * saved_batch} "
                         f"({saved_world} process(es) x batch {saved_batch}), this run has {world * batch_size} "
                         f"({world} x {batch_size}); {hint}, or train into a new --out")


@contextmanager
def peer_guard(rank: int, world: int, epoch: int, ckpt: Path) -> Iterator[None]:
    """Turn a collective that fails because another process went away into a :class:`PeerFailure` saying what
    to resume (``epoch``: the one under way)."""
    try:
        yield
    except Exception as exc:
        if world > 1 and is_peer_failure(exc):
            raise PeerFailure(peer_failure_message(exc, rank, world, epoch, ckpt)) from exc
        raise


def peer_failure_message(exc: BaseException, rank: int, world: int, epoch: int, ckpt: Path) -> str:
    """What a surviving rank says when a collective fails because another process went away."""
    detail = " ".join(str(exc).split())
    if detail.startswith("[") and "] " in detail:  # gloo's "[.../pair.cc:537] Read error ...: Connection reset"
        detail = detail.split("] ", 1)[1]
    detail = detail.split(". ")[0][:160] or type(exc).__name__
    resume = (f"{ckpt} keeps epoch {epoch - 1} (the last finished one): rerun the same command with --resume"
              if ckpt.exists() else "no epoch had finished, so there is nothing to resume: rerun the same command")
    return (f"rank {rank}: another of the {world} processes stopped during epoch {epoch} ({detail}); torchrun's "
            f"report names the failed rank; {resume}")


def _run_epoch(method: Method, train_set: TopDownDataset, config: TrainConfig, device: torch.device, epoch: int,
               rank: int, world: int, report: Callable[[int, dict[str, float]], None]
               ) -> tuple[StepMeans, float, float, int]:
    """One epoch of steps: (means, data seconds, compute seconds, steps). A method with ``train_epoch`` runs the
    epoch itself (no image loader is built)."""
    means, counter = StepMeans(), {"steps": 0}

    def on_step(step: int, losses: dict[str, float]) -> None:
        means.add(losses)
        counter["steps"] += 1
        report(step, losses)

    if hasattr(method, "train_epoch"):
        t = time.perf_counter()
        method.train_epoch(epoch, on_step)
        return means, 0.0, time.perf_counter() - t, counter["steps"]
    order = epoch_order(len(train_set), config.seed, epoch, rank, world)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=order, drop_last=True,
                        num_workers=config.data.workers, worker_init_fn=init_loader_worker)
    data_s = compute_s = 0.0
    t0 = time.perf_counter()
    for step, batch in enumerate(loader):
        t1 = time.perf_counter()
        losses = global_means(method.step(to_device(batch, device, config.channels_last)), device)
        t2 = time.perf_counter()
        data_s += t1 - t0
        compute_s += t2 - t1
        on_step(step, losses)
        t0 = time.perf_counter()
    return means, data_s, compute_s, counter["steps"]


def train(config: TrainConfig, make_method: MethodFactory, *, resume: bool = False,
          callbacks: Callbacks | None = None) -> TrainResult:
    """Run (or resume) training as ``config`` says; returns the run's log and checkpoint paths.

    The method's settings (its ``settings`` dataclass) replace ``config.method_settings`` in what the run records.

    Raises
    ------
    FileExistsError
        If ``config.out`` already holds a checkpoint and ``resume`` is False.
    FileNotFoundError
        If ``resume`` is True but there is no ``checkpoint.pth`` to resume from.
    SettingError
        If the model cannot take ``data.input_size`` or ``batch_size`` exceeds the training samples (raised before
        anything is written).
    ValueError
        If a resumed run's method settings differ from those the checkpoint was trained with.
    """
    cb = callbacks or Callbacks()
    out = Path(config.out)
    ckpt_path, best_path, log_path = out / "checkpoint.pth", out / "best.pth", out / "log.csv"
    env = DistEnv.from_env()
    world, rank = env.world, env.rank
    device = resolve_device(config.device, env.local_rank)
    init_process_group(env, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}; start the run without --resume")

    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    train_set, val_set, val_ann = build_datasets(config)
    num_joints = train_set.kset.num_joints
    model = create_model(config.model.arch, num_joints=num_joints, **config.model.kwargs).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    check_output_size(model, config, device)
    if world > 1 and config.sync_bn:
        model = convert_sync_batchnorm(model, device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    method = make_method(model, config, device)
    config = replace(config, method_settings=settings_dict(method))
    if hasattr(method, "bind_data"):
        method.bind_data(train_set)
    train_set.extras = method.extras() if hasattr(method, "extras") else None
    meta = checkpoint_meta(config, method.name, num_joints, training_info(config, method))
    # how the weights in each file were chosen: best.pth by the run's rule, checkpoint.pth is always the last epoch
    best_meta = replace(meta, training_info={**meta.training_info, "select": config.select})
    meta = replace(meta, training_info={**meta.training_info, "select": "final"})
    holdout = (holdout_sets(val_set, config.data.resolved_paths()["val_images"])
               if config.select == "holdout-c" and rank == 0 else [])

    first_epoch, log, best_score = 0, [], -float("inf")
    if resume:
        state = torch_load(ckpt_path)
        check_resumed_settings(state.get("config", {}).get("method_settings", {}), config.method_settings,
                               config.method, ckpt_path)
        check_global_batch(state, world, config.batch_size, ckpt_path)
        unwrap(model).load_state_dict(state["state_dict"])
        ts = state["train_state"]
        method.load_state_dict(ts["method"])
        first_epoch, log, best_score = ts["epoch"] + 1, list(ts["log"]), ts["best_score"]
        set_rng_states(ts["rng"])
    if hasattr(method, "train_epoch"):
        steps_per_epoch = 0  # the method's epoch has its own length
    else:
        steps_per_epoch = (len(train_set) // world) // config.batch_size
        if steps_per_epoch == 0:
            raise SettingError("batch_size", f"batch_size {config.batch_size} exceeds the {len(train_set) // world} "
                               "training samples per process; lower --batch-size")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    cb.on_start(first_epoch, config.epochs, steps_per_epoch)
    totals = {"data_s": 0.0, "compute_s": 0.0, "steps": 0}
    for epoch in range(first_epoch, config.epochs):
        train_set.set_epoch(epoch)
        method.start_epoch(epoch)
        t_epoch = time.perf_counter()
        lr = method.lr()
        with peer_guard(rank, world, epoch, ckpt_path):
            means, data_s, compute_s, steps = _run_epoch(
                method, train_set, config, device, epoch, rank, world,
                lambda step, losses, epoch=epoch: cb.on_step(epoch, step, losses))
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "loss": 0.0, **means.means(), "steps": steps,
                               "data_s": round(data_s, 3), "compute_s": round(compute_s, 3)}
        if rank == 0:
            if (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs:
                row.update(selection_scores(config, model, val_set, val_ann, device, holdout))
            row["epoch_s"] = round(time.perf_counter() - t_epoch, 3)
            log.append(row)
            if config.select == "final" or row.get("val_score", -float("inf")) > best_score:
                best_score = row.get("val_score", best_score)
                save_checkpoint(best_path, unwrap(model), best_meta,
                                extra={"config": config.to_dict(), "epoch": epoch, "val": row})
            train_state = {"epoch": epoch, "method": method.state_dict(), "log": log, "best_score": best_score,
                           "rng": rng_states(), "world": world}
            save_checkpoint(ckpt_path, unwrap(model), meta, extra={"config": config.to_dict(),
                                                                    "train_state": train_state})
            _write_log(log_path, log)
        totals["data_s"] += data_s
        totals["compute_s"] += compute_s
        totals["steps"] += steps
        cb.on_epoch(row)
        if world > 1:
            with peer_guard(rank, world, epoch + 1, ckpt_path):
                dist.barrier()
    return TrainResult(out, log, best_score, ckpt_path, best_path, totals)
