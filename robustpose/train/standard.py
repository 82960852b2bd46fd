"""Standard supervised training (SimpleBaseline / HRNet recipe): joints MSE on Gaussian heatmaps, Adam, step decay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .method import MethodBase, load_init, settings_from


class JointsMSELoss(nn.Module):
    """HRNet's ``JointsMSELoss``: ``0.5 * mean((w * pred - w * target) ** 2)`` over batch, joints and pixels.

    ``pred`` and ``target`` are ``(B, J, H, W)``; ``weight`` ``(B, J)`` masks unlabelled joints.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        w = weight[:, :, None, None]
        return 0.5 * ((pred * w - target * w) ** 2).mean()


@dataclass
class StandardConfig:
    """Settings of standard training.

    Attributes:
        init: checkpoint whose weights the pose net starts from (fine-tuning); empty: the architecture's init.
    """

    init: str = ""


class StandardMethod(MethodBase):
    """One Adam step on the joints MSE per batch; step decay per epoch; AMP (float16 + GradScaler) on CUDA only.

    ``settings`` default to ``config.method_settings``.
    """

    name = "standard"
    settings_class = StandardConfig

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 settings: StandardConfig | None = None) -> None:
        self.settings = settings if settings is not None else settings_from(StandardConfig, config)
        if self.settings.init:
            load_init(model, self.settings.init)
        self.model = model
        self.device = device
        self.criterion = JointsMSELoss()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr,
                                          weight_decay=config.optim.weight_decay)
        self.base_lr, self.milestones, self.gamma = config.optim.lr, list(config.optim.milestones), config.optim.gamma
        self.amp = bool(config.amp and device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def start_epoch(self, epoch: int) -> None:
        """Set the learning rate of ``epoch`` (counted from 0): ``lr * gamma ** (milestones reached)``."""
        lr = self.base_lr * self.gamma ** sum(epoch >= m for m in self.milestones)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            pred = self.model(batch["image"])
        loss = self.criterion(pred.float(), batch["target"], batch["weight"])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": float(loss.detach())}

    def init_files(self) -> dict[str, str]:
        return {"init": self.settings.init} if self.settings.init else {}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])

