"""What a training method is to the engine (:class:`Method`), its optional hooks, and its recorded provenance.

A method owns its networks, optimisers and per-batch update. Beyond the required members of :class:`Method`, the
engine calls these optional hooks when a method has them (:class:`MethodBase` gives the defaults):

* ``settings``: a dataclass of the method's own settings. The engine stores it in ``config.yaml`` and in every
  checkpoint (``TrainConfig.method_settings``), ``--resume`` restores it, and a resumed run whose method has other
  settings is refused.
* ``bind_data(train_set)``: the training :class:`~robustpose.train.data.TopDownDataset`, for a method that crops
  again (``train_set.params(i)`` and ``train_set.crop(i, params)``).
* ``extras()``: a :class:`~robustpose.train.data.SampleExtras` computed per sample in the loader workers.
* ``train_epoch(epoch, on_step)``: a whole epoch for a method whose epoch is not a loop of steps over the image
  dataset; the engine then builds no loader and logs what it returns.
* ``init_files()`` and ``pools()``: the checkpoint files a run starts from and the augmentation pools it uses
  (setting name -> content hash), recorded with their SHA-256 in ``CheckpointMeta.training_info``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from robustpose.models import load_checkpoint, load_weights

from .config import TrainConfig
from .data import SampleExtras, TopDownDataset


class Method(Protocol):
    """One training method: what happens to a batch. The engine does everything else.

    Attributes
    ----------
    name : str
        Recorded in the checkpoint metadata (``training_method``): the method and its non-default settings, e.g.
        ``advmix[mixer=equal]``.
    model : nn.Module
        The pose network (possibly DDP-wrapped) that is validated and saved.
    """

    name: str
    model: nn.Module

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (learning-rate schedules)."""

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Update the networks on one batch; return named losses and statistics (``loss`` is the headline one).
        ``log.csv`` gets one column per name, the epoch mean over the steps that reported it."""

    def lr(self) -> float:
        """The pose network's current learning rate."""

    def state_dict(self) -> dict[str, Any]:
        """Optimisers, schedulers, extra networks: what resume needs beyond the pose weights."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""


MethodFactory = Callable[[nn.Module, TrainConfig, torch.device], Method]
StepCallback = Callable[[int, dict[str, float]], None]


class MethodBase:
    """Defaults of the optional hooks (see the module docstring); methods may inherit them."""

    settings: Any = None

    def bind_data(self, train_set: TopDownDataset) -> None:
        """Keep what the method needs of the training dataset (nothing by default)."""

    def extras(self) -> SampleExtras | None:
        """Per-sample extras for the loader workers (none by default)."""
        return None

    def init_files(self) -> dict[str, str]:
        """Checkpoint files the run starts from, by role (``init``, ``teacher``...)."""
        return {}

    def pools(self) -> dict[str, str]:
        """Augmentation pools the method draws from: name -> content hash."""
        return {}


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def load_init(model: nn.Module, path: str) -> None:
    """Load the weights of checkpoint ``path`` into ``model`` (DDP-wrapped or not); a mismatch names the keys."""
    load_weights(unwrap(model), load_checkpoint(path).model.state_dict(), origin=path)


def settings_from(cls: type, config: TrainConfig) -> Any:
    """The method settings dataclass ``cls`` from ``config.method_settings``; unknown keys are an error naming
    them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(config.method_settings) - known)
    if unknown:
        raise ValueError(f"method_settings: unknown keys {unknown} for {config.method}; known: {sorted(known)}")
    return cls(**config.method_settings)


def settings_dict(method: Any) -> dict[str, Any]:
    """The method's settings as a plain dict (empty for a method without settings)."""
    settings = getattr(method, "settings", None)
    return asdict(settings) if is_dataclass(settings) else {}


def non_default(settings: Any, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of the dataclass ``settings`` that differ from the class defaults, in field order."""
    default = type(settings)()
    return {f.name: getattr(settings, f.name) for f in fields(settings)
            if f.name not in ignore and getattr(settings, f.name) != getattr(default, f.name)}


def run_label(base: str, settings: dict[str, Any]) -> str:
    """``advmix`` + ``[k=v,...]`` of the given settings: the ``training_method`` string of a checkpoint."""
    return base + (f"[{','.join(f'{k}={v}' for k, v in settings.items())}]" if settings else "")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def training_info(config: TrainConfig, method: Any) -> dict[str, Any]:
    """What produced a run's weights, for ``CheckpointMeta.training_info``: the method, its non-default settings
    (checkpoint paths replaced by the files' SHA-256 under ``files``, pool paths by the pools' hashes under ``pools``,
    both keyed by the setting's name), the seed."""
    settings = getattr(method, "settings", None)
    files = method.init_files() if hasattr(method, "init_files") else {}
    pools = dict(method.pools()) if hasattr(method, "pools") else {}
    changed = non_default(settings, ignore=(*files, *pools)) if is_dataclass(settings) else {}
    return {"method": config.method, "settings": changed, "seed": int(config.seed),
            "files": {role: file_sha256(path) for role, path in files.items()}, "pools": pools}
