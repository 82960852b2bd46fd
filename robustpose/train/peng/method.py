"""Peng et al. (CVPR 2018) as methods of the shared training engine: agent pre-training (:class:`PengAgentMethod`)
and joint training of pose net and agent (:class:`PengMethod`). See ``docs/peng.md`` for what follows the code,
what follows the paper and what is adapted.

Joint training, per batch of the engine's (randomly augmented) crops:

1. Each sample is assigned a kind by the split: ``random`` (the crop as the loader made it), ``asr`` (re-cropped at
   the agent's scale and rotation) or ``aho`` (the un-augmented crop, 2 grid cells of every feature level zeroed).
2. The agent (eval mode) reads the pose net's detached ``stage_features`` of the un-augmented crops; bins, values
   and cells are drawn from per-sample streams (``TopDownDataset.extras_rng``), so a resumed run draws the same.
3. One pose-net step on the mixed batch (the standard step: joints MSE, Adam, the run's schedule).
4. When due (``agent_every``), one agent step with the pose net frozen: the agent's choice against a random
   reference, per sample, scored by per-person OKS (PCKh on MPII); the reward/penalty target; KL toward it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from robustpose.models import torch_load

from ..config import TrainConfig
from ..data import Augment, CropParams, TopDownDataset
from ..distributed import rank_and_world
from ..engine import epoch_order
from ..method import MethodBase, StepCallback, load_init, non_default, run_label, settings_from, unwrap
from ..standard import StandardConfig, StandardMethod
from .agent import Agent
from .bins import ROTATION_BINS, SCALE_BINS, asr_params, cell_mask, grid_for, sample_cells, sample_value
from .targets import hardness_targets, joint_votes, kl_loss, move_target, person_scores

MODES = ("random", "asr", "aho", "asr+aho")
AGENT_MODES = ("asr", "aho", "asr+aho")
SPLITS = ("auto", "alternate", "thirds")
AGENT_EVERY = ("epoch", "batch")
BOX_PADDING = 1.25  # the crop's box is the person's box x 1.25 (robustpose.inference.transforms)


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass
class PengAgentConfig:
    """Agent pre-training settings (``robustpose train peng-agent``).

    Attributes:
        init: the pose net's checkpoint (frozen; the hardness targets are its scores).
        mode: which heads learn: ``asr`` (scale + rotation), ``aho`` (occlusion) or both.
        agent_lr: RMSprop learning rate (the code's 2.5e-4).
        agent_width: the agent's trunk width (the code's 256).
        grid_rows: rows of the occlusion grid; its columns follow the crop's aspect (:func:`grid_for`).
        samples_per_epoch: people per epoch, the first of the epoch's order (0: all of them).
    """

    init: str = ""
    mode: str = "asr"
    agent_lr: float = 2.5e-4
    agent_width: int = 256
    grid_rows: int = 4
    samples_per_epoch: int = 0

    def validate(self) -> PengAgentConfig:
        _check(self.mode, AGENT_MODES, "mode")
        if self.agent_lr <= 0 or self.agent_width < 1 or self.grid_rows < 1 or self.samples_per_epoch < 0:
            raise ValueError("agent_lr, agent_width and grid_rows must be positive, samples_per_epoch >= 0")
        return self


@dataclass
class PengConfig:
    """Joint training settings (``robustpose train peng``).

    Attributes:
        init: standard checkpoint the pose net starts from.
        agent: a ``peng-agent`` run's ``checkpoint.pth`` (not for ``mode=random``).
        mode: ``random`` (uniform bins and cells, no agent: the ablation), ``asr``, ``aho`` or ``asr+aho``.
        split: ``alternate`` (the code: whole batches, every other one random, the agent kinds in turn on the
            others), ``thirds`` (the paper: every batch split equally into random and each agent kind), ``auto``:
            alternate for ``asr`` (the code has it), thirds when AHO is in (only the paper has AHO in a batch).
        agent_every: ``epoch`` (the code's early return: one agent batch per epoch) or ``batch``.
        agent_lr: the agent's RMSprop learning rate in joint training (the code's 5e-5).
        cells: grid cells AHO zeroes per sample (the code's 2).
    """

    init: str = ""
    agent: str = ""
    mode: str = "asr"
    split: str = "auto"
    agent_every: str = "epoch"
    agent_lr: float = 5e-5
    cells: int = 2

    def validate(self) -> PengConfig:
        _check(self.mode, MODES, "mode")
        _check(self.split, SPLITS, "split")
        _check(self.agent_every, AGENT_EVERY, "agent_every")
        if self.agent_lr <= 0 or self.cells < 1:
            raise ValueError(f"agent_lr must be > 0 and cells >= 1, got {self.agent_lr}, {self.cells}")
        return self

    def resolved_split(self) -> str:
        return self.split if self.split != "auto" else ("alternate" if self.mode == "asr" else "thirds")

    def kinds(self) -> list[str]:
        """The augmentation kinds besides ``random`` (``random`` mode: both, drawn uniformly)."""
        return {"asr": ["asr"], "aho": ["aho"]}.get(self.mode, ["asr", "aho"])

    def run_name(self) -> str:
        """``peng-<mode>`` plus the non-default settings that matter, e.g. ``peng-asr[agent_every=batch]``."""
        ignored = ("init", "agent", "mode") + (("agent_every", "agent_lr") if self.mode == "random" else ())
        return run_label(f"peng-{self.mode}", non_default(self, ignore=ignored))


def batch_kinds(split: str, kinds: list[str], step: int, batch_size: int) -> list[str]:
    """The kind of each sample of step ``step`` (counted from 0 in the epoch).

    ``alternate``: even steps all ``random``; odd steps all one agent kind, the kinds in turn. ``thirds``: the batch
    in ``1 + len(kinds)`` equal consecutive parts, ``random`` first (halves with one kind, thirds with two).
    """
    if split == "alternate":
        return ["random"] * batch_size if step % 2 == 0 else [kinds[(step // 2) % len(kinds)]] * batch_size
    parts = ["random", *kinds]
    return [parts[b * len(parts) // batch_size] for b in range(batch_size)]


def reference_params(plain: CropParams, aug: Augment | None, rng: np.random.Generator) -> tuple[CropParams,
                                                                                                 CropParams]:
    """The random reference of the agent step: a scale-only and a rotation-only crop of the un-augmented box,
    scale and rotation drawn by the run's random laws (``TopDownDataset.draw_params``'s, without half-body or
    flip; none without augmentation)."""
    if aug is None:
        return plain, plain
    sf, rf = aug.scale_factor, aug.rotation_factor
    factor = np.clip(rng.normal() * sf + 1, 1 - sf, 1 + sf)
    rotation = float(np.clip(rng.normal() * rf, -2 * rf, 2 * rf)) if rng.random() < aug.rotation_prob else 0.0
    return replace(plain, scale=plain.scale * factor), replace(plain, rotation=rotation)


def box_areas(crops: list[CropParams], plain: list[CropParams], heatmap_size: tuple[int, int]) -> np.ndarray:
    """The person's box area in heatmap pixels squared for each crop (OKS scale): the unpadded box fills
    ``1 / 1.25**2`` of an un-augmented crop, and shrinks with the crop's scale factor squared."""
    hh, hw = heatmap_size
    factor = np.array([p.scale[1] / c.scale[1] for c, p in zip(crops, plain)])
    return hh * hw / BOX_PADDING**2 * factor**2


class AgentTools:
    """What both Peng methods do with the frozen or training pose net: un-augmented crops, their detached
    features, crops stacked into batches, per-person scores."""

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device) -> None:
        self.model, self.device = model, device
        self.channels_last = bool(config.channels_last)
        self.decode, self.sigma = config.decode, float(config.data.sigma)
        self.heatmap_size = tuple(config.data.heatmap_size)
        self.data: TopDownDataset | None = None

    def bind(self, train_set: TopDownDataset) -> None:
        self.data = train_set

    def plain(self, index: int) -> CropParams:
        """The un-augmented box of sample ``index``."""
        return self.data.draw_params(index, None)

    def crops(self, indices: list[int], params: list[CropParams]) -> dict[str, torch.Tensor]:
        """``image`` ``(B, 3, H, W)`` on the device, ``target`` and ``weight`` of the given crops."""
        items = [self.data.crop(i, p) for i, p in zip(indices, params)]
        out = {k: torch.stack([it[k] for it in items]).to(self.device) for k in ("image", "target", "weight")}
        if self.channels_last:
            out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
        return out

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The pose net's detached ``stage_features`` (eval mode: the batch statistics stay untouched)."""
        net = unwrap(self.model)
        was = net.training
        net.eval()
        feats = [f.detach().float() for f in net.stage_features(images)]
        net.train(was)
        return feats

    @torch.no_grad()
    def scores(self, batch: dict[str, torch.Tensor], areas: np.ndarray, mask: torch.Tensor | None = None
               ) -> np.ndarray:
        """Per-person scores ``(B,)`` of the pose net (eval mode) on ``batch``, optionally feature-masked."""
        net = unwrap(self.model)
        was = net.training
        net.eval()
        pred = net(batch["image"], feature_mask=mask).float()
        net.train(was)
        return person_scores(pred.cpu().numpy(), batch["target"].cpu().numpy(), batch["weight"].cpu().numpy(),
                             self.data.kset, areas, self.decode, self.sigma)


def agent_for(model: nn.Module, input_size: tuple[int, int], width: int, grid_rows: int) -> Agent:
    """An agent sized for ``model``'s ``stage_features`` at ``input_size``."""
    net = unwrap(model)
    was = net.training
    with torch.no_grad():
        feats = net.eval().stage_features(torch.zeros(1, 3, *input_size, device=next(net.parameters()).device))
    net.train(was)
    return Agent([f.shape[1] for f in feats], grid_for(input_size, grid_rows), SCALE_BINS.k, ROTATION_BINS.k, width)


def _ddp(module: nn.Module, device: torch.device) -> nn.Module:
    if dist.is_initialized() and dist.get_world_size() > 1:  # average the agent's gradients across ranks too
        return nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    return module


def untrained_heads(logits: dict[str, torch.Tensor], heads: tuple[str, ...] | list[str]) -> torch.Tensor:
    """0 times the logits of the heads that do not learn: added to the loss so that every agent parameter gets a
    (zero) gradient, as DistributedDataParallel needs."""
    return sum((0.0 * v.sum() for h, v in logits.items() if h not in heads), torch.zeros(()))


def softmax_np(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.detach().double(), dim=1).cpu().numpy()


class PengAgentMethod(MethodBase):
    """Agent pre-training against the frozen pose net ``settings.init`` (its epoch is its own: ``train_epoch``).

    Targets, per person, cached (the pose net is frozen and the crops are fixed): ASR, the code's 7 scale-only
    crops at the scale-bin centres and 7 rotation-only crops at the rotation-bin centres (no flip), target the
    normalised ``1 - score``; AHO, the paper's joint votes over the grid cells of the un-augmented crop. Loss: the
    batch-mean ``KL(target || softmax)`` of each learning head, summed. The run's ``checkpoint.pth`` holds the agent
    (``train_state.method.agent``) for ``train peng --agent``.
    """

    settings_class = PengAgentConfig

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 settings: PengAgentConfig | None = None) -> None:
        s = (settings if settings is not None else settings_from(PengAgentConfig, config)).validate()
        if not s.init:
            raise ValueError("peng-agent needs the pose net to score crops with: pass --init STANDARD_CKPT")
        self.settings, self.config, self.device = s, config, device
        self.name = run_label(f"peng-agent-{s.mode}", non_default(s, ignore=("init", "mode")))
        load_init(model, s.init)
        self.model = model
        for p in model.parameters():
            p.requires_grad_(False)
        self.tools = AgentTools(model, config, device)
        self.agent = _ddp(agent_for(model, tuple(config.data.input_size), s.agent_width, s.grid_rows).to(device),
                          device)
        self.optimizer = torch.optim.RMSprop(self.agent.parameters(), lr=s.agent_lr, alpha=0.99, eps=1e-8)
        self.heads = {"asr": ("scale", "rotation"), "aho": ("occlusion",)}.get(s.mode, ("scale", "rotation",
                                                                                       "occlusion"))
        self.cache: dict[int, dict[str, np.ndarray]] = {}

    def bind_data(self, train_set: TopDownDataset) -> None:
        self.tools.bind(train_set)

    def start_epoch(self, epoch: int) -> None:
        """Nothing to schedule: the agent's learning rate is constant (the code's)."""

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def targets(self, indices: list[int]) -> dict[str, np.ndarray]:
        """Each head's targets ``(B, K)`` for the samples ``indices`` (computed once per sample, then cached)."""
        missing = [i for i in indices if i not in self.cache]
        if missing:
            for i, t in zip(missing, self.compute_targets(missing)):
                self.cache[i] = t
        return {h: np.stack([self.cache[i][h] for i in indices]) for h in self.heads}

    def compute_targets(self, indices: list[int]) -> list[dict[str, np.ndarray]]:
        t = self.tools
        plain = [t.plain(i) for i in indices]
        out: list[dict[str, np.ndarray]] = [{} for _ in indices]
        if "scale" in self.heads:
            for head, bins, make in (("scale", SCALE_BINS, lambda p, c: asr_params(p, exponent=c)),
                                     ("rotation", ROTATION_BINS, lambda p, c: asr_params(p, rotation=c))):
                params = [make(p, c) for p in plain for c in bins.centers]  # sample-major, bins minor
                rep = [i for i in indices for _ in bins.centers]
                batch = t.crops(rep, params)
                scores = t.scores(batch, box_areas(params, [p for p in plain for _ in bins.centers], t.heatmap_size))
                for b, target in enumerate(hardness_targets(scores.reshape(len(indices), bins.k))):
                    out[b][head] = target
        if "occlusion" in self.heads:
            votes = self.votes(indices, plain)
            for b in range(len(indices)):
                out[b]["occlusion"] = votes[b]
        return out

    def votes(self, indices: list[int], plain: list[CropParams]) -> np.ndarray:
        """Joint votes of the un-augmented crops: the joints are their target heatmaps decoded."""
        from robustpose.inference.decode import decode_heatmaps

        batch = self.tools.crops(indices, plain)
        xy, _ = decode_heatmaps(batch["target"].cpu().numpy(), self.tools.decode, self.tools.sigma)
        agent = unwrap(self.agent)
        return joint_votes(xy, batch["weight"].cpu().numpy() > 0, self.tools.heatmap_size, agent.grid)

    def train_epoch(self, epoch: int, on_step: StepCallback) -> None:
        ds = self.tools.data
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        order = epoch_order(len(ds), self.config.seed, epoch, rank, world)
        if self.settings.samples_per_epoch:
            order = order[: self.settings.samples_per_epoch]
        bs = self.config.batch_size
        for step in range(len(order) // bs):
            indices = order[step * bs:(step + 1) * bs]
            targets = self.targets(indices)
            feats = self.tools.features(self.tools.crops(indices, [self.tools.plain(i) for i in indices])["image"])
            self.agent.train()
            logits = self.agent(feats)
            kls = {h: kl_loss(torch.from_numpy(targets[h]).to(self.device), logits[h]) for h in self.heads}
            loss = sum(kls.values()) + untrained_heads(logits, self.heads).to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            on_step(step, {"loss": float(loss.detach()), **{f"kl_{h}": float(v.detach()) for h, v in kls.items()},
                           **distribution_logs({h: softmax_np(v) for h, v in logits.items()})})

    def init_files(self) -> dict[str, str]:
        return {"init": self.settings.init}

    def state_dict(self) -> dict[str, Any]:
        agent = unwrap(self.agent)
        return {"settings": asdict(self.settings), "agent": agent.state_dict(), "optimizer": self.optimizer.state_dict(),
                "agent_spec": {"in_channels": [m[0].in_channels for m in agent.lateral], "grid": list(agent.grid),
                               "width": agent.scale_head.in_features, "heads": list(self.heads),
                               "input_size": list(self.config.data.input_size)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.agent).load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])


def distribution_logs(probs: dict[str, np.ndarray]) -> dict[str, float]:
    """Batch means of the agent's distributions ``(B, K)``: ``p_scale0..``, ``p_rot0..``, and the occlusion
    distribution's entropy (nats; uniform over 12 cells: 2.48)."""
    out: dict[str, float] = {}
    for head, short in (("scale", "p_scale"), ("rotation", "p_rot")):
        out.update({f"{short}{j}": float(v) for j, v in enumerate(probs[head].mean(axis=0))})
    occ = probs["occlusion"]
    out["occ_entropy"] = float(-(occ * np.log(np.clip(occ, 1e-30, None))).sum(axis=1).mean())
    return out


def load_agent(path: str, model: nn.Module, input_size: tuple[int, int], device: torch.device,
               heads: list[str]) -> Agent:
    """The agent of a ``peng-agent`` run's checkpoint, checked against this pose net and these heads."""
    state = torch_load(path)
    method = state.get("train_state", {}).get("method", {}) if isinstance(state, dict) else {}
    if "agent" not in method or "agent_spec" not in method:
        raise ValueError(f"{path} is not a peng-agent checkpoint (no agent in it); pre-train one with "
                         "`robustpose train peng-agent`")
    spec = method["agent_spec"]
    wanted = agent_for(model, input_size, spec["width"], spec["grid"][0])
    have = [m[0].in_channels for m in wanted.lateral]
    if have != list(spec["in_channels"]) or list(wanted.grid) != list(spec["grid"]):
        raise ValueError(f"{path}: the agent reads features of {spec['in_channels']} channels on a {spec['grid']} "
                         f"grid, this pose net gives {have} on {list(wanted.grid)}; pre-train the agent on this "
                         "architecture and input size")
    untrained = sorted(set(heads) - set(spec["heads"]))
    if untrained:
        raise ValueError(f"{path}: the agent's {untrained} head was not pre-trained (its mode: {spec['heads']}); "
                         "pre-train with a peng-agent --mode that covers this --mode")
    wanted.load_state_dict(method["agent"])
    return wanted.to(device)


class PengMethod(StandardMethod):
    """Joint training of the pose net and the agent (see the module docstring). The pose net's step is the
    standard one (the same loss, optimiser and schedule as ``standard``), on the mixed batch."""

    settings_class = PengConfig

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 settings: PengConfig | None = None, agent: nn.Module | None = None) -> None:
        s = (settings if settings is not None else settings_from(PengConfig, config)).validate()
        super().__init__(model, config, device, settings=StandardConfig(init=s.init))
        self.settings = s
        self.name = s.run_name()
        self.split, self.kinds = s.resolved_split(), s.kinds()
        self.heads = [h for k in self.kinds for h in ({"asr": ("scale", "rotation"), "aho": ("occlusion",)}[k])]
        self.tools = AgentTools(model, config, device)
        self.grid = grid_for(tuple(config.data.input_size))
        self.agent: nn.Module | None = None
        if s.mode != "random":
            if agent is None:
                if not s.agent:
                    raise ValueError(f"peng --mode {s.mode} needs a pre-trained agent: pass --agent "
                                     "PENG_AGENT_RUN/checkpoint.pth (robustpose train peng-agent)")
                agent = load_agent(s.agent, model, tuple(config.data.input_size), device, self.heads)
            agent = copy.deepcopy(agent).to(device)
            self.grid = tuple(agent.grid)
            self.agent = _ddp(agent, device)
            self.agent_optimizer = torch.optim.RMSprop(self.agent.parameters(), lr=s.agent_lr, alpha=0.99, eps=1e-8)
        self._step = 0
        self._agent_steps_this_epoch = 0

    def bind_data(self, train_set: TopDownDataset) -> None:
        self.tools.bind(train_set)

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self._step = 0
        self._agent_steps_this_epoch = 0

    # ------------------------------------------------------------------ the agent's choices

    def distributions(self, feats: list[torch.Tensor] | None, n: int) -> dict[str, np.ndarray]:
        """Per-sample distributions ``(n, K)`` per head: the agent's softmax (eval mode), uniform in random mode."""
        if self.agent is None:
            return {"scale": np.full((n, SCALE_BINS.k), 1 / SCALE_BINS.k),
                    "rotation": np.full((n, ROTATION_BINS.k), 1 / ROTATION_BINS.k),
                    "occlusion": np.full((n, self.grid[0] * self.grid[1]), 1 / (self.grid[0] * self.grid[1]))}
        self.agent.eval()
        with torch.no_grad():
            logits = self.agent(feats)
        return {h: softmax_np(v) for h, v in logits.items()}

    def choices(self, indices: list[int], probs: dict[str, np.ndarray]) -> dict[str, list]:
        """Drawn per sample from its own streams: scale bin and exponent, rotation bin and degrees, occluded cells."""
        ds = self.tools.data
        out: dict[str, list] = {"js": [], "x": [], "jr": [], "r": [], "cells": []}
        for b, i in enumerate(indices):
            rng = ds.extras_rng(i, "peng-asr")
            js, x = sample_value(probs["scale"][b], SCALE_BINS, rng)
            jr, r = sample_value(probs["rotation"][b], ROTATION_BINS, rng)
            out["js"].append(js), out["x"].append(x), out["jr"].append(jr), out["r"].append(r)
            out["cells"].append(sample_cells(probs["occlusion"][b], self.settings.cells, ds.extras_rng(i, "peng-aho")))
        return out

    def masks(self, cells: list[list[int] | None]) -> torch.Tensor:
        """``(B, 1, gh, gw)``: ones, with each sample's cells zeroed (None: no occlusion)."""
        ones = np.ones((1, *self.grid), np.float32)
        return torch.from_numpy(np.stack([ones if c is None else cell_mask(c, self.grid) for c in cells])
                                ).to(self.device)

    # ------------------------------------------------------------------ the step

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        indices = [int(i) for i in batch["index"]]
        # the split is the global batch's: this rank's samples are its rows rank, rank + world, ... (epoch_order);
        # whether the agent steps is decided from the global batch too, so every rank takes the same branch
        rank, world = rank_and_world()
        split = batch_kinds(self.split, self.kinds, self._step, len(indices) * world)
        kinds = split[rank::world]
        due = self.agent is not None and "random" != split[-1] and (
            self.settings.agent_every == "batch" or self._agent_steps_this_epoch == 0)
        self._step += 1
        logs: dict[str, float] = {}
        images, target, weight = batch["image"], batch["target"], batch["weight"]
        mask = None
        # the un-augmented crops, features and draws of the samples the agent acts on (all of them for its step)
        sel = list(range(len(indices))) if due else [b for b, k in enumerate(kinds) if k != "random"]
        if sel:
            t, ds = self.tools, self.tools.data
            pos = {b: n for n, b in enumerate(sel)}
            indices_sel = [indices[b] for b in sel]
            plain = [t.plain(i) for i in indices_sel]
            plain_batch = t.crops(indices_sel, plain)
            feats = t.features(plain_batch["image"]) if self.agent is not None else None
            probs = self.distributions(feats, len(sel))
            picks = self.choices(indices_sel, probs)
            images, target, weight = images.clone(), target.clone(), weight.clone()
            asr = [b for b, k in enumerate(kinds) if k == "asr"]
            if asr:
                params = [asr_params(plain[pos[b]], picks["x"][pos[b]], picks["r"][pos[b]], ds.params(indices[b]).flip)
                          for b in asr]
                crops = t.crops([indices[b] for b in asr], params)
                images[asr], target[asr], weight[asr] = crops["image"], crops["target"], crops["weight"]
            aho = [b for b, k in enumerate(kinds) if k == "aho"]
            if aho:
                rows = [pos[b] for b in aho]
                images[aho] = plain_batch["image"][rows]
                target[aho], weight[aho] = plain_batch["target"][rows], plain_batch["weight"][rows]
                mask = self.masks([picks["cells"][pos[b]] if k == "aho" else None for b, k in enumerate(kinds)])
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            logs.update(self.choice_logs(probs, picks, [kinds[b] for b in sel]))
        logs.update(self.pose_step(images, target, weight, mask, kinds))
        if due:
            logs.update(self.agent_step(indices_sel, plain, plain_batch, feats, probs, picks))
            self._agent_steps_this_epoch += 1
        return logs

    @property
    def channels_last(self) -> bool:
        return self.tools.channels_last

    def pose_step(self, images: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor | None,
                  kinds: list[str]) -> dict[str, float]:
        """The standard step on the mixed batch; also the loss of each kind's samples (``loss_random``...)."""
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            pred = self.model(images, feature_mask=mask)
        pred = pred.float()
        loss = self.criterion(pred, target, weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        w = weight[:, :, None, None]
        per_sample = (0.5 * (pred.detach() * w - target * w) ** 2).mean(dim=(1, 2, 3))
        logs = {"loss": float(loss.detach())}
        for kind in dict.fromkeys(kinds):
            sel = torch.tensor([k == kind for k in kinds], device=per_sample.device)
            logs[f"loss_{kind}"] = float(per_sample[sel].mean())
        return logs

    def agent_step(self, indices: list[int], plain: list[CropParams], plain_batch: dict[str, torch.Tensor],
                   feats: list[torch.Tensor], probs: dict[str, np.ndarray], picks: dict[str, list]
                   ) -> dict[str, float]:
        """The agent against a random reference, per sample (pose net frozen, eval mode); KL toward the moved
        copy of its own prediction."""
        t, ds = self.tools, self.tools.data
        targets: dict[str, np.ndarray] = {}
        logs: dict[str, float] = {}
        if "scale" in self.heads:
            refs = [reference_params(p, ds.augment, ds.extras_rng(i, "peng-reference")) for i, p in zip(indices, plain)]
            for head, key, ref_of, make in (
                    ("scale", "js", 0, lambda b: asr_params(plain[b], exponent=picks["x"][b])),
                    ("rotation", "jr", 1, lambda b: asr_params(plain[b], rotation=picks["r"][b]))):
                ref_params = [r[ref_of] for r in refs]
                agent_params = [make(b) for b in range(len(indices))]
                ref = t.scores(t.crops(indices, ref_params), box_areas(ref_params, plain, t.heatmap_size))
                mine = t.scores(t.crops(indices, agent_params), box_areas(agent_params, plain, t.heatmap_size))
                harder = ref - mine > 0
                targets[head] = np.stack([move_target(probs[head][b], picks[key][b], bool(harder[b]))
                                          for b in range(len(indices))])
                logs[f"harder_{head}"] = float(harder.mean())
        if "occlusion" in self.heads:
            k = self.grid[0] * self.grid[1]
            uniform = np.full(k, 1 / k)
            ref_cells = [sample_cells(uniform, self.settings.cells, ds.extras_rng(i, "peng-aho-reference"))
                         for i in indices]
            areas = box_areas(plain, plain, t.heatmap_size)
            ref = t.scores(plain_batch, areas, self.masks(ref_cells))
            mine = t.scores(plain_batch, areas, self.masks(picks["cells"]))
            harder = ref - mine > 0
            targets["occlusion"] = np.stack([move_target(probs["occlusion"][b], picks["cells"][b], bool(harder[b]))
                                             for b in range(len(indices))])
            logs["harder_occlusion"] = float(harder.mean())
        self.agent.train()
        logits = self.agent(feats)
        loss = sum(kl_loss(torch.from_numpy(targets[h]).to(self.device), logits[h]) for h in self.heads)
        loss = loss + untrained_heads(logits, self.heads).to(self.device)
        self.agent_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.agent_optimizer.step()
        logs["loss_agent"] = float(loss.detach())
        return logs

    def choice_logs(self, probs: dict[str, np.ndarray], picks: dict[str, list], kinds: list[str]) -> dict[str, float]:
        """The agent's mean distributions over the batch and the mean drawn scale factor / |rotation|."""
        out = distribution_logs(probs)
        asr = [b for b, k in enumerate(kinds) if k == "asr"]
        if asr:
            out["asr_scale"] = float(np.mean([2.0 ** picks["x"][b] for b in asr]))
            out["asr_abs_rot"] = float(np.mean([abs(picks["r"][b]) for b in asr]))
        return out

    # ------------------------------------------------------------------ provenance and resume

    def init_files(self) -> dict[str, str]:
        files = {"init": self.settings.init} if self.settings.init else {}
        if self.settings.agent and self.settings.mode != "random":
            files["agent"] = self.settings.agent
        return files

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "settings": asdict(self.settings)}
        if self.agent is not None:
            state.update(agent=unwrap(self.agent).state_dict(), agent_optimizer=self.agent_optimizer.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = PengConfig(**state["settings"])
        if saved.run_name() != self.settings.run_name():
            raise ValueError(f"the checkpoint was trained as {saved.run_name()}, this run is {self.name}")
        super().load_state_dict(state)
        if self.agent is not None:
            unwrap(self.agent).load_state_dict(state["agent"])
            self.agent_optimizer.load_state_dict(state["agent_optimizer"])
