"""Training past one process: the torchrun environment, batch norm over the global batch (also on CPU), the
global means the log shows, each rank's share of a batch's random draws, and a clear error when a peer dies.

Under ``torchrun --nproc_per_node W`` rank ``r`` trains on every ``W``-th sample of the epoch's permutation, so
step ``s`` of the ``W`` processes covers exactly the samples of step ``s`` of one process with a ``W`` times larger
batch (the *global batch*). DDP averages the gradients; with ``sync_bn`` the batch norms normalise with the global
batch's statistics too, so the ``W``-process run computes the one-process run's update up to float rounding
(``tests/test_multiprocess.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job (``rank 0 of 1`` outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DistEnv:
        """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as torchrun sets them."""
        return cls(int(environ.get("RANK", "0")), int(environ.get("WORLD_SIZE", "1")),
                   int(environ.get("LOCAL_RANK", "0")))


def init_process_group(env: DistEnv, device: torch.device) -> None:
    """Join the torchrun job (NCCL on CUDA, Gloo otherwise) unless alone or already joined."""
    if env.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _synced() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over processes: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over all processes, with autograd through the sum."""
    return _AllReduceSum.apply(x)


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the global batch of all processes, on any device and
    backend (PyTorch's ``nn.SyncBatchNorm`` runs on GPUs only).

    Two differentiable all-reduces per forward: the per-channel sum (and count), then the sum of squared deviations
    from the global mean (two passes, as batch norm itself computes the variance, so no cancellation). The backward
    all-reduces their gradients, so every rank gets the gradient of the global batch's loss. Running statistics are
    updated with the global mean and the unbiased global variance, identically on every rank. Alone, or in eval
    mode, it is ``nn.BatchNorm*d``; it has the same parameters and buffers, so checkpoints load into either.

    Shape: ``(B, C, ...)`` -> same, statistics over every axis but ``C``.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _synced()):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_tensor([x.numel() / x.shape[1]])
        total = all_reduce_sum(torch.cat([x.sum(dim=dims), count]))
        n = total[-1].detach()
        mean = total[:-1] / n
        var = all_reduce_sum(((x - mean.view(shape)) ** 2).sum(dim=dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(float(n) - 1, 1.0))
        out = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every batch norm normalising over the global batch: PyTorch's ``nn.SyncBatchNorm`` on CUDA
    (fused kernels, NCCL), :class:`GlobalBatchNorm` elsewhere. Weights, buffers and ``requires_grad`` are kept."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats).to(next(module.buffers(), torch.empty(0)).device)
        out.load_state_dict(module.state_dict())
        if module.affine:
            out.weight.requires_grad_(module.weight.requires_grad)
            out.bias.requires_grad_(module.bias.requires_grad)
        out.train(module.training)
        return out
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


def global_means(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """The mean over all processes of each named value a step returned (identity when alone): the loss of the
    global batch, as one process with that batch would log it. Every rank must report the same names."""
    if not _synced():
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def rank_share(draws: dict[str, torch.Tensor], rank: int, world: int) -> dict[str, torch.Tensor]:
    """This rank's rows of per-sample draws made for the global batch (batch-first tensors): rank ``r`` holds the
    global batch's samples ``r, r + world, ...``, as the engine's strided split gives them."""
    return {k: v[rank::world] for k, v in draws.items()}


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    return (dist.get_rank(), dist.get_world_size()) if _synced() else (0, 1)


class PeerFailure(RuntimeError):
    """Another process of the torchrun job stopped (crashed, was killed, lost its connection) during training."""


def is_peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because a peer went away (gloo / NCCL / the rendezvous store)."""
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("connection closed by peer", "connection reset by peer", "gloo", "nccl", "broken pipe"))
