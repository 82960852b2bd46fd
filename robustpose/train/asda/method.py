"""ASDA as a method of the shared training engine: body parts pasted into the crops at a rotation and position an
adversarial generator chooses (Bin et al., ECCV 2020; the official ``lib/core/function.py::train``).

Per batch (:meth:`ASDAMethod.step`), with the parts already on their canvases (the loader workers'
:class:`~robustpose.train.asda.paster.PartPaster`):

1. ``theta = G(x)``: the generator's ``(r, t_x, t_y)`` per part type from the normalised crop ``x``.
2. Pose-net step: ``L_D = JointsMSE(D(paste(x, theta)), y; w)`` on the detached paste. Update D.
3. Generator step: a fresh forward of the *updated* pose net on the same paste, ``L_G = -L_D``; only G is updated.

Both networks stay in train mode (so D's BatchNorm statistics move in both passes, as in the code). ``stn_first``
runs the generator steps first, ``nd`` / ``ng`` repeat the steps (the code's ``STN_FIRST``, ``ND``, ``NG``); after a
generator step the next step pastes with the updated generator. ``random`` is the SDA-random baseline: the same
parts, canvases and sizes, ``(r, t_x, t_y)`` uniform over the same ranges (drawn in the workers), no generator.
Targets and weights are those of the crop, never changed; validation never calls the generator.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from robustpose.datasets.parts import TYPE_NAMES, load_pool

from ..config import TrainConfig
from ..distributed import convert_sync_batchnorm
from ..method import non_default, run_label, settings_from, unwrap
from ..standard import StandardConfig, StandardMethod
from .generator import PartGenerator
from .paster import ROTATION_RANGE, TRANSLATION_RANGE, PartPaster, paste, select_rt


@dataclass
class ASDAConfig:
    """ASDA settings; the defaults follow the official code.

    Attributes:
        pool: part pool folder (``robustpose parts build`` / ``parts synth``); required.
        init: checkpoint the pose net starts from (fine-tuning); empty: trained from the architecture's
            initialisation, as the paper trains.
        gen_init: ResNet-18 weights for the generator's trunk (torchvision ``resnet18`` keys; needs
            ``gen_width`` 64); empty: random initialisation (the code starts from ImageNet weights, which cannot be
            fetched here).
        random: the SDA-random baseline (uniform ``(r, t)``, no generator).
        num_parts: parts pasted per crop (the code's NUM_AUG, 1).
        gen_lr: generator learning rate (Adam, no schedule).
        gen_width: generator trunk width (64: ResNet-18; smaller for CPU presets).
        nd, ng: pose-net and generator steps per batch.
        stn_first: the generator's steps first.
        min_visible: COCO-format data: no part on crops with fewer visible joints.
        erode, blur: soft-mask kernels of the parts.
        snapshot: also save the generator's weights at the start of every epoch to ``RUN/generator/`` (figures).
    """

    pool: str = ""
    init: str = ""
    gen_init: str = ""
    random: bool = False
    num_parts: int = 1
    gen_lr: float = 1e-3
    gen_width: int = 64
    nd: int = 1
    ng: int = 1
    stn_first: bool = False
    min_visible: int = 8
    erode: int = 3
    blur: int = 3
    snapshot: bool = False

    def validate(self) -> ASDAConfig:
        """Check values; raises ``ValueError`` naming the setting."""
        if not self.pool:
            raise ValueError("ASDA needs a part pool: pass --pool (build one with `robustpose parts build` or "
                             "`robustpose parts synth`)")
        if self.num_parts < 1 or self.nd < 1 or self.ng < 1:
            raise ValueError("num_parts, nd and ng must be >= 1")
        if self.gen_lr <= 0 or self.gen_width < 1 or self.erode < 0 or self.blur < 0 or self.min_visible < 0:
            raise ValueError("gen_lr and gen_width must be positive, erode, blur and min_visible >= 0")
        if self.gen_init and self.gen_width != 64:
            raise ValueError(f"gen_init loads ResNet-18 weights, which need gen_width 64 (got {self.gen_width})")
        if self.random and self.gen_init:
            raise ValueError("random (SDA-random) has no generator: drop gen_init")
        return self

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the code's and change what is trained: paths and snapshots aside, and
        without a generator its settings aside too."""
        ignored = ("pool", "init", "gen_init", "snapshot")
        if self.random:
            ignored += ("gen_lr", "gen_width", "ng", "stn_first")
        return non_default(self, ignore=ignored)

    def run_name(self) -> str:
        """``asda`` plus :meth:`changed`, e.g. ``asda[random=True]``: the ``training_method`` of the checkpoints."""
        return run_label("asda", self.changed())


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class ASDAMethod(StandardMethod):
    """The ASDA method for :func:`robustpose.train.train` (see the module docstring for the step).

    The pose net's optimiser, schedule and AMP are standard training's (its step is the pose-net step here).

    Args:
        model: the pose net, built by the engine; its weights are replaced by ``settings.init`` if given.
        config: the run's configuration.
        device: where everything runs.
        settings: ASDA's settings; default ``config.method_settings``.
    """

    settings_class = ASDAConfig

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 settings: ASDAConfig | None = None) -> None:
        settings = (settings if settings is not None else settings_from(ASDAConfig, config)).validate()
        super().__init__(model, config, device, settings=StandardConfig(init=settings.init))
        self.settings = settings
        self.name = settings.run_name()
        self.pool = load_pool(settings.pool)
        self.input_size = tuple(config.data.input_size)
        self.coco = config.data.dataset != "mpii"
        self.channels_last = bool(config.channels_last)
        self.snapshots = Path(config.out) / "generator" if settings.snapshot else None
        self.generator: nn.Module | None = None
        if not settings.random:
            generator = PartGenerator(len(TYPE_NAMES), settings.gen_width)
            if settings.gen_init:
                generator.load_trunk(settings.gen_init)
            self.generator = generator.to(device)
            if config.channels_last:
                self.generator = self.generator.to(memory_format=torch.channels_last)
            if dist.is_initialized() and dist.get_world_size() > 1:  # average its gradients across ranks too
                if config.sync_bn:  # its batch norms normalise over the global batch, as the pose net's do
                    self.generator = convert_sync_batchnorm(self.generator, device)
                self.generator = nn.parallel.DistributedDataParallel(
                    self.generator, device_ids=[device.index] if device.type == "cuda" else None)
            self.gen_optimizer = torch.optim.Adam(self.generator.parameters(), lr=settings.gen_lr)
            self.gen_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.order = (["G"] * settings.ng + ["D"] * settings.nd if settings.stn_first
                      else ["D"] * settings.nd + ["G"] * settings.ng) if self.generator is not None \
            else ["D"] * settings.nd

    # ------------------------------------------------------------------ engine hooks

    def extras(self) -> PartPaster:
        s = self.settings
        return PartPaster(self.pool, self.input_size, TYPE_NAMES, s.num_parts, self.coco, s.min_visible, s.erode,
                          s.blur)

    def pools(self) -> dict[str, str]:
        return {"pool": self.pool.hash}

    def init_files(self) -> dict[str, str]:
        files = super().init_files()
        if self.settings.gen_init:
            files["gen_init"] = self.settings.gen_init
        return files

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        if self.snapshots is not None and self.generator is not None:
            self.snapshots.mkdir(parents=True, exist_ok=True)
            torch.save(unwrap(self.generator).state_dict(), self.snapshots / f"epoch{epoch:03d}.pth")

    # ------------------------------------------------------------------ the step

    def _theta(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each slot's ``(r, t_x, t_y)`` ``(B, N, 3)``: the generator's for the slot's type, or the workers'
        uniform draw (``random``)."""
        if self.generator is None:
            return batch["part_rt"]
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            per_type = self.generator(batch["image"]).float()
        return select_rt(per_type, batch["part_type"])

    def _paste(self, batch: dict[str, torch.Tensor], rt: torch.Tensor) -> torch.Tensor:
        out = paste(batch["image"], batch["part_image"], batch["part_mask"], batch["part_type"], rt)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def _generator_step(self, batch: dict[str, torch.Tensor], pasted: torch.Tensor) -> float:
        """``-L_D`` through a fresh forward of the (frozen, train-mode) pose net; updates G only."""
        pose = unwrap(self.model)  # nothing of the pose net is to be synchronised in this step under DDP
        _set_requires_grad(pose, False)
        pose.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            pred = pose(pasted).float()
        loss = self.criterion(pred, batch["target"], batch["weight"])
        self.gen_optimizer.zero_grad(set_to_none=True)
        self.gen_scaler.scale(-loss).backward()
        self.gen_scaler.step(self.gen_optimizer)
        self.gen_scaler.update()
        _set_requires_grad(pose, True)
        return float(loss.detach())

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """The steps of :attr:`order` on one batch; logs the pose loss (``loss``), the pose loss of the generator
        step's fresh forward (``loss_adv``), the mean |rotation| in degrees and |translation| in grid units of the
        pasted parts, and the share of crops with a part."""
        if self.generator is not None:
            self.generator.train()
        logs: dict[str, float] = {}
        rt = pasted = None
        for i, phase in enumerate(self.order):
            if pasted is None:
                # with a graph only when a generator step will use it (none for the pastes after the last one)
                with torch.set_grad_enabled("G" in self.order[i:]):
                    rt = self._theta(batch)
                    pasted = self._paste(batch, rt)
            if phase == "D":
                logs["loss"] = super().step({"image": pasted.detach(), "target": batch["target"],
                                             "weight": batch["weight"]})["loss"]
            else:
                logs["loss_adv"] = self._generator_step(batch, pasted)
                pasted = None  # G moved: the next step pastes again
        used = batch["part_type"] >= 0
        n = int(used.sum())
        if n:
            rt = rt.detach()[used]
            logs["rot_deg"] = float(rt[:, 0].abs().mean()) * math.degrees(ROTATION_RANGE)
            logs["shift"] = float(rt[:, 1:].norm(dim=1).mean()) * TRANSLATION_RANGE
        logs["pasted"] = float(used.any(dim=1).float().mean())
        return logs

    # ------------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "settings": asdict(self.settings), "pool": self.pool.hash}
        if self.generator is not None:
            state.update(generator=unwrap(self.generator).state_dict(), gen_optimizer=self.gen_optimizer.state_dict(),
                         gen_scaler=self.gen_scaler.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a run; refused when it was trained as another ASDA variant or with another pool."""
        saved = ASDAConfig(**state["settings"])
        if saved.run_name() != self.settings.run_name():
            raise ValueError(f"the checkpoint was trained as {saved.run_name()}, this run is {self.name}")
        if state["pool"] != self.pool.hash:
            raise ValueError(f"the run was trained with part pool {state['pool'][:12]}..., {self.settings.pool} is "
                             f"{self.pool.hash[:12]}... (rebuilt or changed?); resume with the run's own pool")
        super().load_state_dict(state)
        if self.generator is not None:
            unwrap(self.generator).load_state_dict(state["generator"])
            self.gen_optimizer.load_state_dict(state["gen_optimizer"])
            self.gen_scaler.load_state_dict(state["gen_scaler"])

