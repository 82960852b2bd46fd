"""AdvMix as a method of the shared training engine: adversarial view mixing plus distillation from a frozen teacher.

Per batch (``AdvMixMethod.step``), following the official ``train_advmix``:

1. Views of the batch (clean, AutoAugment colour, GridMask; one shared crop) and their mix, computed in
   normalised-tensor space with the mixer's weights.
2. Pose-net step on the *detached* mix:
   ``(1 - alpha) L(D(mix), target) + alpha L(D(mix), T(clean))`` (``alpha`` 0.1, ``T`` the frozen teacher).
3. Generator step with the pose net frozen: ``-adv_weight * L(D(mix), target)`` on the same mix (the pose net has
   just been updated and stays in train mode), for the learned mixers only.

``L`` is the code's loss by default: the official ``JointsMSELoss`` has an inverted flag that makes it
``0.5 * SmoothL1`` (beta 1); ``loss="mse"`` gives the paper's (HRNet's) ``0.5 * MSE``. ``kd_input="clean"`` feeds the
student the clean crop in the distillation term, as the paper's figure draws it (the code uses the mix).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, load_checkpoint

from ..config import TrainConfig
from ..distributed import rank_and_world, rank_share
from ..method import MethodBase, load_init, non_default, run_label, settings_from, unwrap
from ..standard import JointsMSELoss
from .generator import MixGenerator, auto_depth
from .mixers import LEARNED, check_mixer, mix, mix_weights
from .views import make_views, sample_views, view_kinds

KD_INPUTS = ("mix", "clean")
LOSSES = ("smoothl1", "mse")


class JointsSmoothL1Loss(nn.Module):
    """The official AdvMix criterion: ``0.5 * mean(SmoothL1_beta=1(w * pred, w * target))`` over batch, joints
    and pixels (its ``JointsMSELoss`` picks SmoothL1 when its flag is False)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        w = weight[:, :, None, None]
        return 0.5 * F.smooth_l1_loss(pred * w, target * w, beta=1.0)


@dataclass
class AdvMixConfig:
    """AdvMix settings; the defaults follow the official code.

    Attributes:
        init: standard checkpoint the pose net starts from (required unless a teacher module is given).
        teacher: checkpoint of the frozen teacher; default ``init``.
        mixer: ``advmix`` | ``advmix-image`` | ``equal`` | ``dirichlet`` | ``sequential`` (see ``mixers``).
        views: number of views ``k``, the clean crop included.
        alpha: weight of the distillation term.
        kd: distil from the teacher at all (``--no-kd`` sets False: the paper's Table 7).
        kd_input: what the student sees in the distillation term: ``mix`` (code) or ``clean`` (paper figure).
        loss: ``smoothl1`` (code) or ``mse`` (paper).
        adv_weight: weight of the generator's adversarial loss.
        gen_lr: generator learning rate (Adam; same step schedule as the pose net).
        gen_width: generator width (``ngf``).
        gen_depth: generator down-samplings; 0 picks :func:`auto_depth` of the input size.
        gridmask_p, gridmask_ratio: GridMask probability and band ratio.
        probe_every: every this many steps, also log the pose loss on the equal mix of the same views
            (``loss_equal``) to show what the generator's mix adds; 0 never.
    """

    init: str = ""
    teacher: str = ""
    mixer: str = "advmix"
    views: int = 3
    alpha: float = 0.1
    kd: bool = True
    kd_input: str = "mix"
    loss: str = "smoothl1"
    adv_weight: float = 1.0
    gen_lr: float = 1e-3
    gen_width: int = 64
    gen_depth: int = 0
    gridmask_p: float = 0.7
    gridmask_ratio: float = 0.5
    probe_every: int = 0

    def validate(self) -> AdvMixConfig:
        """Check values; raises ``ValueError`` naming the setting."""
        check_mixer(self.mixer)
        view_kinds(self.views)
        if self.kd_input not in KD_INPUTS:
            raise ValueError(f"kd_input must be one of {KD_INPUTS}, got {self.kd_input!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.gen_lr <= 0 or self.gen_width < 1 or self.gen_depth < 0 or self.probe_every < 0:
            raise ValueError("gen_lr and gen_width must be positive, gen_depth and probe_every >= 0")
        return self

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the official ones and matter: paths, logging and, for the unlearned
        mixers, the generator's settings aside."""
        ignored = ("init", "teacher", "probe_every")
        if self.mixer not in LEARNED:
            ignored += ("adv_weight", "gen_lr", "gen_width", "gen_depth")
        return non_default(self, ignore=ignored)

    def run_name(self) -> str:
        """``advmix`` plus :meth:`changed`, e.g. ``advmix[mixer=equal,kd=False]``: the ``training_method`` of the
        checkpoints."""
        return run_label("advmix", self.changed())


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class AdvMixMethod(MethodBase):
    """The AdvMix method for :func:`robustpose.train.train` (see the module docstring for the step).

    Args:
        model: the pose net, already built by the engine; its weights are replaced by ``settings.init`` if given.
        config: the run's configuration (optimiser and schedule of the pose net, input size, seed, AMP).
        device: where everything runs.
        settings: the AdvMix settings; default ``config.method_settings``.
        teacher: a teacher module to use instead of loading ``settings.teacher`` / ``settings.init`` (tests).
    """

    settings_class = AdvMixConfig

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 settings: AdvMixConfig | None = None, teacher: nn.Module | None = None) -> None:
        settings = (settings if settings is not None else settings_from(AdvMixConfig, config)).validate()
        self.settings = settings
        self.name = settings.run_name()
        self.model, self.device = model, device
        if settings.init:
            load_init(model, settings.init)
        if teacher is None:
            path = settings.teacher or settings.init
            if not path:
                raise ValueError("AdvMix needs a standard checkpoint to start from and distil: pass --init "
                                 "(and --teacher for another teacher)")
            teacher = load_checkpoint(path).model
        self.teacher = copy.deepcopy(teacher).to(device).eval()
        _set_requires_grad(self.teacher, False)

        self.criterion = JointsMSELoss() if settings.loss == "mse" else JointsSmoothL1Loss()
        self.kinds = view_kinds(settings.views)
        self.size = tuple(config.data.input_size)
        self.mean, self.std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        # The same stream on every rank: each draws the global batch's views and keeps its own samples' rows, so
        # W processes draw what one process with the global batch draws (robustpose.train.distributed).
        self.rng = torch.Generator().manual_seed(int(config.seed) * 1_000_003)
        self.rank, self.world = rank_and_world()
        self.amp = bool(config.amp and device.type == "cuda")

        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr,
                                          weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, config.optim.milestones,
                                                              config.optim.gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.generator: nn.Module | None = None
        if settings.mixer in LEARNED:
            depth = settings.gen_depth or auto_depth(self.size)
            self.generator = MixGenerator(settings.views, depth, settings.gen_width).to(device)
            if dist.is_initialized() and dist.get_world_size() > 1:  # average its gradients across ranks too
                self.generator = nn.parallel.DistributedDataParallel(
                    self.generator, device_ids=[device.index] if device.type == "cuda" else None)
            self.gen_optimizer = torch.optim.Adam(self.generator.parameters(), lr=settings.gen_lr)
            self.gen_scheduler = torch.optim.lr_scheduler.MultiStepLR(self.gen_optimizer, config.optim.milestones,
                                                                      config.optim.gamma)
            self.gen_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self._epoch = 0
        self._steps = 0

    # ------------------------------------------------------------------ engine protocol

    def start_epoch(self, epoch: int) -> None:
        """Set both learning rates for ``epoch`` (decayed at each milestone epoch, counted from 0)."""
        while self._epoch < epoch:
            self.scheduler.step()
            if self.generator is not None:
                self.gen_scheduler.step()
            self._epoch += 1

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # back to the input's precision: float32 after an AMP forward, float64 stays float64
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            return net(x).to(x.dtype)

    def mixed_batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views ``(B, k, C, H, W)``, weights ``(B, k, H, W)`` and mix ``(B, C, H, W)`` of a normalised batch
        (differentiable in the generator's parameters for the learned mixers)."""
        drawn = sample_views(self.kinds, images.shape[0] * self.world, self.size, gridmask_p=self.settings.gridmask_p,
                             generator=self.rng)
        params = [p if p is None else rank_share(p, self.rank, self.world) for p in drawn]
        views = make_views(images, self.kinds, params, self.mean, self.std,
                           gridmask_ratio=self.settings.gridmask_ratio, chain=self.settings.mixer == "sequential")
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            weights = mix_weights(self.settings.mixer, views, self.generator, self.rng,
                                  shard=(self.rank, self.world)).to(views.dtype)
        return views, weights, mix(views, weights)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One pose-net step on the detached mix, then (learned mixers) one generator step on ``-L``."""
        s = self.settings
        images, target, weight = batch["image"], batch["target"], batch["weight"]
        self.model.train()
        if self.generator is not None:
            self.generator.train()
        views, weights, mixed = self.mixed_batch(images)

        _set_requires_grad(self.model, True)
        pred = self._forward(self.model, mixed.detach())
        loss_hm = self.criterion(pred, target, weight)
        logs: dict[str, float] = {"loss_hm": float(loss_hm.detach())}
        loss = loss_hm
        if s.kd:
            with torch.no_grad():
                soft = self._forward(self.teacher, images)
            student = pred if s.kd_input == "mix" else self._forward(self.model, images)
            loss_kd = self.criterion(student, soft, weight)
            loss = (1 - s.alpha) * loss_hm + s.alpha * loss_kd
            logs["loss_kd"] = float(loss_kd.detach())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        logs["loss"] = float(loss.detach())

        if self.generator is not None:
            # Frozen pose net, used unwrapped: under DDP nothing of it is to be synchronised in this step.
            pose = unwrap(self.model)
            _set_requires_grad(pose, False)
            adv = self.criterion(self._forward(pose, mixed), target, weight)
            self.gen_optimizer.zero_grad(set_to_none=True)
            self.gen_scaler.scale(-s.adv_weight * adv).backward()
            self.gen_scaler.step(self.gen_optimizer)
            self.gen_scaler.update()
            _set_requires_grad(pose, True)
            logs["loss_adv"] = float(adv.detach())
        self._steps += 1
        if s.probe_every and self._steps % s.probe_every == 0:
            logs["loss_equal"], logs["loss_mixed"] = self.probe(views, weights, target, weight)
        per_view = weights.detach().mean(dim=(0, 2, 3))
        logs.update({f"w{i}": float(v) for i, v in enumerate(per_view)})
        logs["w_spatial_std"] = float(weights.detach().std(dim=(2, 3)).mean())
        return logs

    @torch.no_grad()
    def probe(self, views: torch.Tensor, weights: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
              ) -> tuple[float, float]:
        """Pose loss of the current pose net (eval mode) on the equal mix and on the mixer's mix of ``views``."""
        was = self.model.training
        self.model.eval()
        equal = views.mean(dim=1)
        out = (float(self.criterion(self._forward(self.model, equal), target, weight)),
               float(self.criterion(self._forward(self.model, mix(views, weights.detach())), target, weight)))
        self.model.train(was)
        return out

    def init_files(self) -> dict[str, str]:
        """The pose net's start and the teacher (when it is another file)."""
        files = {"init": self.settings.init} if self.settings.init else {}
        if self.settings.teacher:
            files["teacher"] = self.settings.teacher
        return files

    def state_dict(self) -> dict[str, Any]:
        state = {"settings": asdict(self.settings), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": self._epoch,
                 "steps": self._steps, "rng": self.rng.get_state(), "teacher": self.teacher.state_dict()}
        if self.generator is not None:
            state.update(generator=unwrap(self.generator).state_dict(), gen_optimizer=self.gen_optimizer.state_dict(),
                         gen_scheduler=self.gen_scheduler.state_dict(), gen_scaler=self.gen_scaler.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a run (the teacher comes back from the checkpoint, never from the student)."""
        saved = AdvMixConfig(**state["settings"])
        if saved.run_name() != self.settings.run_name():
            raise ValueError(f"the checkpoint was trained as {saved.run_name()}, this run is {self.name}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self._epoch, self._steps = state["epoch"], state["steps"]
        self.rng.set_state(state["rng"])
        self.teacher.load_state_dict(state["teacher"])
        if self.generator is not None:
            unwrap(self.generator).load_state_dict(state["generator"])
            self.gen_optimizer.load_state_dict(state["gen_optimizer"])
            self.gen_scheduler.load_state_dict(state["gen_scheduler"])
            self.gen_scaler.load_state_dict(state["gen_scaler"])
