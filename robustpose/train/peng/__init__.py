"""Peng et al. (CVPR 2018, "Jointly Optimize Data Augmentation and Network Training"): an agent network picks, per
sample, the scale and rotation (ASR) and the feature-map occlusion (AHO) that make it hard, and is rewarded when its
choice is harder than a random one. See ``docs/peng.md``.

``train(config, functools.partial(PengAgentMethod, settings=PengAgentConfig(init=...)))`` pre-trains an agent;
``train(config, functools.partial(PengMethod, settings=PengConfig(init=..., agent=..., mode="asr")))`` trains jointly.
"""

from .agent import Agent
from .bins import ROTATION_BINS, SCALE_BINS, Bins, bounded_gaussian, cell_mask, grid_for, sample_cells, sample_value
from .method import (
                     AGENT_EVERY,
                     AGENT_MODES,
                     MODES,
                     SPLITS,
                     PengAgentConfig,
                     PengAgentMethod,
                     PengConfig,
                     PengMethod,
                     batch_kinds,
                     load_agent,
)
from .targets import hardness_targets, joint_votes, kl_loss, move_target, person_scores, project

__all__ = [
    "AGENT_EVERY",
    "AGENT_MODES",
    "MODES",
    "ROTATION_BINS",
    "SCALE_BINS",
    "SPLITS",
    "Agent",
    "Bins",
    "PengAgentConfig",
    "PengAgentMethod",
    "PengConfig",
    "PengMethod",
    "batch_kinds",
    "bounded_gaussian",
    "cell_mask",
    "grid_for",
    "hardness_targets",
    "joint_votes",
    "kl_loss",
    "load_agent",
    "move_target",
    "person_scores",
    "project",
    "sample_cells",
    "sample_value",
]
