"""Lifting methods for :func:`robustpose.lift.engine.train_lift`: standard supervised training and PoseAug.

Each is built as ``Method(lifter, config, device, train_set)`` and has the image engine's method members: ``name``,
``settings`` (a dataclass stored with the run), ``start_epoch``, ``train_epoch(epoch, on_step)``, ``lr``,
``state_dict`` / ``load_state_dict`` and ``init_files`` (the checkpoint the lifter starts from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustpose.models.checkpoint import CheckpointError
from robustpose.train.engine import epoch_order
from robustpose.train.method import MethodBase, non_default, run_label, settings_from

from .data import LiftSet
from .engine import LiftConfig, lifter_steps, load_lift_checkpoint, tensors
from .poseaug import (
    BA_BETA,
    BA_STD,
    BA_WEIGHT,
    CLIP_NORM,
    FEEDBACK,
    RT_BETA,
    RT_STD,
    RT_WEIGHT,
    W_ADV2D,
    W_ADV3D,
    W_REG,
    Discriminator2D,
    KCSDiscriminator,
    PoseAugmentor,
    PoseAugSettings,
    ReplayPool,
    beta_schedule,
    hardness,
    in_frame,
    lsgan_d,
    lsgan_g,
    regulariser,
    subject_templates,
    swap_bone_lengths,
)
from .skeleton import project, root_relative


@dataclass
class StandardLiftSettings:
    """Standard lifting: MPJPE loss on real pairs. ``init``: a lifting checkpoint to start from (fine-tuning)."""

    init: str = ""


def _load_init(lifter: nn.Module, path: str) -> None:
    """The weights of lifting checkpoint ``path``; another architecture is a ``CheckpointError`` naming both."""
    obj = load_lift_checkpoint(path)
    try:
        lifter.load_state_dict(obj["state_dict"])
    except RuntimeError as err:
        meta = obj.get("meta", {})
        raise CheckpointError(f"--init {path} holds a {meta.get('arch')} lifter {meta.get('arch_kwargs')}, which "
                              f"does not fit this run's ({str(err).splitlines()[0][:80]}...); pass the same --arch "
                              "and --width") from None


class StandardLift(MethodBase):
    """Supervised lifter training (Martinez et al.'s recipe): Adam, staircase decay, MPJPE loss."""

    settings_class = StandardLiftSettings

    def __init__(self, lifter: nn.Module, config: LiftConfig, device: torch.device, train_set: LiftSet) -> None:
        self.settings = settings_from(StandardLiftSettings, config)
        self.name = run_label("standard", non_default(self.settings, ignore=("init",)))
        self.model, self.config, self.device = lifter, config, device
        if self.settings.init:
            _load_init(lifter, self.settings.init)
        self.data = tensors(train_set, device)
        self.optimizer = torch.optim.Adam(lifter.parameters(), lr=config.lr, foreach=True)
        self.counter = {"steps": 0}

    def init_files(self) -> dict[str, str]:
        return {"init": self.settings.init} if self.settings.init else {}

    def start_epoch(self, epoch: int) -> None:
        """The learning rate follows the step count (set in every step)."""

    def train_epoch(self, epoch: int, on_step: Any) -> None:
        order = epoch_order(len(self.data["pose2d"]), self.config.seed, epoch)
        lifter_steps(self.model, self.optimizer, self.data["pose2d"], self.data["target"], order, self.config,
                     self.counter, on_step)

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "steps": self.counter["steps"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.counter["steps"] = int(state["steps"])


class PoseAugLift(MethodBase):
    """PoseAug's epoch (official loop): bone-length swap, one GAN pass over the (swapped) training poses that also
    fills a buffer of in-frame augmented pairs, and after the warm-up one lifter epoch on the buffer, then one on
    the real pairs; linear learning-rate decay of G and D per epoch."""

    settings_class = PoseAugSettings

    def __init__(self, lifter: nn.Module, config: LiftConfig, device: torch.device, train_set: LiftSet) -> None:
        self.settings = s = settings_from(PoseAugSettings, config)
        s.validate()
        self.name = run_label("poseaug", non_default(s, ignore=("init",)))
        self.model, self.config, self.device = lifter, config, device
        if s.init:
            _load_init(lifter, s.init)
        self.data = tensors(train_set, device)
        mean_root = tuple(float(v) for v in train_set.pose3d[:, 0].mean(0))
        self.templates = torch.as_tensor(subject_templates(train_set.pose3d, train_set.subject), device=device)
        self.G = PoseAugmentor(s.g_width, s.noise, mean_root, s.rt_translation).to(device)
        self.D3d, self.D2d = KCSDiscriminator(s.d_width).to(device), Discriminator2D(s.d_width).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=s.g_lr, foreach=True)
        self.opt_d = torch.optim.Adam([*self.D3d.parameters(), *self.D2d.parameters()], lr=s.d_lr, foreach=True)
        self.opt_lifter = torch.optim.Adam(lifter.parameters(), lr=config.lr, foreach=True)
        self.pool3d, self.pool2d = ReplayPool(s.pool_size), ReplayPool(s.pool_size)
        self.counter = {"steps": 0, "g_steps": 0, "d_steps": 0}
        self.feedback = FEEDBACK[s.feedback]

    def init_files(self) -> dict[str, str]:
        return {"init": self.settings.init} if self.settings.init else {}

    def start_epoch(self, epoch: int) -> None:
        """Linear decay of G's and D's learning rates to 0 over the run (the official LambdaLR, stepped per epoch)."""
        factor = 1.0 - epoch / self.config.epochs
        for opt, base in ((self.opt_g, self.settings.g_lr), (self.opt_d, self.settings.d_lr)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    def lr(self) -> float:
        return self.opt_lifter.param_groups[0]["lr"]

    def feedback_active(self, epoch: int) -> bool:
        """Feedback and lifter training start after ``warmup`` epochs."""
        return epoch >= self.settings.warmup

    def epoch_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This epoch's G inputs: camera-coordinate poses (bone lengths swapped to random training subjects'
        templates, unless ``bone_swap`` is off) and their projections."""
        pose3d = self.data["pose3d"]
        if self.settings.bone_swap:
            choice = torch.randint(len(self.templates), (len(pose3d),), device=self.device)
            pose3d = swap_bone_lengths(pose3d, self.templates, choice)
        return pose3d, project(pose3d, self.data["intrinsics"])

    def generator_loss(self, aug: dict[str, torch.Tensor], pose3d: torch.Tensor, pose2d: torch.Tensor,
                       intrinsics: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        """L_G = adv2d + 6 adv3d + 3 reg (+ feedback after the warm-up), with the lifter frozen."""
        out = {"adv2d": lsgan_g(self.D2d(aug["rt2d"])), "adv3d": lsgan_g(self.D3d(aug["ba"])),
               "reg": regulariser(aug["cos"], aug["ratio"])}
        total = W_ADV2D * out["adv2d"] + W_ADV3D * out["adv3d"] + W_REG * out["reg"]
        if self.feedback_active(epoch):
            lifter = self.model
            lifter.eval()
            lifter.requires_grad_(False)
            try:
                target = root_relative(pose3d)
                orig = hardness(lifter(pose2d), target).detach()
                ba2d = project(aug["ba"] + pose3d[:, :1], intrinsics)
                ba = hardness(lifter(ba2d), aug["ba"])
                rt = hardness(lifter(aug["rt2d"]), root_relative(aug["rt"]))
            finally:
                lifter.requires_grad_(True)
                lifter.train()
            beta = beta_schedule(epoch, self.config.epochs, *BA_BETA)
            out["fb_ba"] = self.feedback(ba, orig, beta, BA_STD)
            out["fb_rt"] = self.feedback(rt, orig, RT_BETA, RT_STD)
            total = total + BA_WEIGHT * out["fb_ba"] + RT_WEIGHT * out["fb_rt"]
        out["loss_g"] = total
        return out

    def discriminator_step(self, aug: dict[str, torch.Tensor], idx: torch.Tensor) -> float:
        """LS-GAN step of both discriminators: real training poses vs pooled fakes (BA 3D, projected RT 2D)."""
        real3d = self.data["target"][idx]
        loss = (lsgan_d(self.D3d(real3d), self.D3d(self.pool3d.query(aug["ba"].detach())))
                + lsgan_d(self.D2d(self.data["pose2d"][idx]), self.D2d(self.pool2d.query(aug["rt2d"].detach()))))
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([*self.D3d.parameters(), *self.D2d.parameters()], CLIP_NORM)
        self.opt_d.step()
        self.counter["d_steps"] += 1
        return float(loss.detach())

    def gan_pass(self, epoch: int, on_step: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass of G (and every ``d_every``-th G step, D) over the epoch; returns the buffer of in-frame
        augmented (2D, root-relative 3D) pairs, detached."""
        pose3d, pose2d = self.epoch_inputs()
        intr = self.data["intrinsics"]
        order = epoch_order(len(pose3d), self.config.seed, epoch)
        bs = self.config.batch_size
        buf2d, buf3d = [], []
        for b in range(len(order) // bs):
            idx = torch.as_tensor(order[b * bs:(b + 1) * bs], device=self.device)
            self.G.train()
            aug = self.G(pose3d[idx], intr[idx])
            losses = self.generator_loss(aug, pose3d[idx], pose2d[idx], intr[idx], epoch)
            self.opt_g.zero_grad(set_to_none=True)
            losses["loss_g"].backward()
            nn.utils.clip_grad_norm_(self.G.parameters(), CLIP_NORM)
            self.opt_g.step()
            self.counter["g_steps"] += 1
            values = {k: float(v.detach()) for k, v in losses.items()}
            if self.counter["g_steps"] % self.settings.d_every == 0:
                values["loss_d"] = self.discriminator_step(aug, idx)
            keep = in_frame(aug["rt2d"])
            values["kept"] = float(keep.float().mean())
            buf2d.append(aug["rt2d"][keep].detach())
            buf3d.append(root_relative(aug["rt"][keep]).detach())
            on_step(b, values)
        return torch.cat(buf2d), torch.cat(buf3d)

    def train_epoch(self, epoch: int, on_step: Any) -> None:
        fake2d, fake3d = self.gan_pass(epoch, on_step)
        if not self.feedback_active(epoch):
            return
        fake_order = torch.randperm(len(fake2d)).tolist()
        lifter_steps(self.model, self.opt_lifter, fake2d, fake3d, fake_order, self.config, self.counter, on_step,
                     key="loss_fake")
        order = epoch_order(len(self.data["pose2d"]), self.config.seed, epoch)
        lifter_steps(self.model, self.opt_lifter, self.data["pose2d"], self.data["target"], order, self.config,
                     self.counter, on_step)

    def state_dict(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D3d": self.D3d.state_dict(), "D2d": self.D2d.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "opt_lifter": self.opt_lifter.state_dict(), "pool3d": self.pool3d.state_dict(),
                "pool2d": self.pool2d.state_dict(), "counter": dict(self.counter)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("G", "D3d", "D2d"):
            getattr(self, name).load_state_dict(state[name])
        for name in ("opt_g", "opt_d", "opt_lifter"):
            getattr(self, name).load_state_dict(state[name])
        self.pool3d.load_state_dict(state["pool3d"])
        self.pool2d.load_state_dict(state["pool2d"])
        self.counter.update(state["counter"])


LIFT_METHODS: dict[str, type] = {"standard": StandardLift, "poseaug": PoseAugLift}
