"""``robustpose train peng-agent`` and ``robustpose train peng``: Peng et al.'s agent pre-training and joint
training (the shared engine's options, plus the method's own)."""

from __future__ import annotations

from typing import Any

import click

from .lazy import module_constant
from .train import explicit_settings, run_training, training_options

# read without importing robustpose.train.peng (torch), so that --help starts fast (robustpose/cli/lazy.py)
_METHOD = "robustpose.train.peng.method"
MODES: tuple[str, ...] = module_constant(_METHOD, "MODES")
AGENT_MODES: tuple[str, ...] = module_constant(_METHOD, "AGENT_MODES")
SPLITS: tuple[str, ...] = module_constant(_METHOD, "SPLITS")
AGENT_EVERY: tuple[str, ...] = module_constant(_METHOD, "AGENT_EVERY")

EPILOG = """\b
Examples:
  robustpose train standard --preset cpu-synth --data-root data/synthpose --out runs/standard
  robustpose train peng-agent --mode asr+aho --init runs/standard/best.pth --preset cpu-synth \\
      --data-root data/synthpose --epochs 1 --samples-per-epoch 1024 --out runs/agent
  robustpose train peng --mode asr --init runs/standard/best.pth --agent runs/agent/checkpoint.pth \\
      --preset cpu-synth --data-root data/synthpose --epochs 4 --milestones 3,4 --out runs/peng-asr
  robustpose train peng --mode random --init runs/standard/best.pth ...   # the ablation: no agent
  robustpose train peng --out runs/peng-asr --resume                       # continue an interrupted run
"""


def _option(name: str, **kwargs: Any):
    return click.option(name, show_default=True, **kwargs)


AGENT_OPTIONS = [
    _option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
            help="The pose net's checkpoint (frozen: its scores make the hardness targets); required unless --resume."),
    _option("--mode", type=click.Choice(AGENT_MODES), default=module_constant(_METHOD, "PengAgentConfig.mode"),
            help="Heads that learn: asr (scale + rotation bins), aho (occlusion cells) or both."),
    _option("--agent-lr", type=click.FloatRange(min=0, min_open=True),
            default=module_constant(_METHOD, "PengAgentConfig.agent_lr"), help="RMSprop learning rate (the code's)."),
    _option("--agent-width", type=click.IntRange(min=1), default=module_constant(_METHOD, "PengAgentConfig.agent_width"),
            help="The agent's trunk width (the code's 256)."),
    _option("--grid-rows", type=click.IntRange(min=1), default=module_constant(_METHOD, "PengAgentConfig.grid_rows"),
            help="Rows of the occlusion grid (columns follow the crop's aspect: 4x3 for 4:3 crops, 4x4 square)."),
    _option("--samples-per-epoch", type=click.IntRange(min=0),
            default=module_constant(_METHOD, "PengAgentConfig.samples_per_epoch"),
            help="People per epoch, the first of the epoch's order (0: all; each costs 15 crops the first time)."),
]

PENG_OPTIONS = [
    _option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
            help="Standard checkpoint the pose net starts from; required unless --resume, which takes the run's own."),
    _option("--agent", type=click.Path(exists=True, dir_okay=False), default=None,
            help="A peng-agent run's checkpoint.pth (every mode but random)."),
    _option("--mode", type=click.Choice(MODES), default=module_constant(_METHOD, "PengConfig.mode"),
            help="random (uniform bins and cells, no agent: the ablation), asr, aho or asr+aho."),
    _option("--split", type=click.Choice(SPLITS), default=module_constant(_METHOD, "PengConfig.split"),
            help="alternate (code: whole batches alternate random / agent), thirds (paper: every batch split into "
                 "random / ASR / AHO parts), auto (alternate for asr, thirds when AHO is in)."),
    _option("--agent-every", type=click.Choice(AGENT_EVERY), default=module_constant(_METHOD, "PengConfig.agent_every"),
            help="Agent updates: one batch per epoch (the code's early return) or every agent batch."),
    _option("--agent-lr", type=click.FloatRange(min=0, min_open=True),
            default=module_constant(_METHOD, "PengConfig.agent_lr"), help="The agent's RMSprop learning rate (code)."),
    _option("--cells", type=click.IntRange(min=1), default=module_constant(_METHOD, "PengConfig.cells"),
            help="Grid cells AHO zeroes per sample, on every feature level."),
]


def _apply(options: list):
    def wrap(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return wrap


def _check_files(opts: dict[str, Any], names: tuple[str, ...]) -> None:
    from .eval_ckpt import check_checkpoint_file

    for name in names:
        if opts.get(name):
            check_checkpoint_file(opts[name], f"--{name}")


@click.command("peng-agent", epilog=EPILOG)
@training_options
@_apply(AGENT_OPTIONS)
def peng_agent_cmd(**opts: Any) -> None:
    """Pre-train Peng et al.'s agent against a frozen pose net (KL to hardness targets).

    ASR targets: the normalised 1 - score of 7 scale-only and 7 rotation-only crops at the bin centres (per-person
    OKS; PCKh on MPII); AHO targets: each visible joint votes for its grid cell. The run's checkpoint.pth is the
    agent for `train peng --agent`."""
    from robustpose.train import PengAgentConfig

    if not opts["init"] and not opts["resume"]:
        raise click.UsageError("Missing option '--init': the pose net whose scores make the agent's targets")
    _check_files(opts, ("init",))
    run_training("peng-agent", opts, explicit_settings(PengAgentConfig, opts))


@click.command("peng", epilog=EPILOG)
@training_options
@_apply(PENG_OPTIONS)
def peng_cmd(**opts: Any) -> None:
    """Peng et al.: train the pose net on random and agent-chosen scale/rotation (ASR) and feature-occlusion (AHO)
    samples, the agent rewarded when its choice is harder than a random one.

    Its settings are stored with the run: ``--resume`` needs none of them again."""
    from robustpose.train import PengConfig

    if not opts["resume"]:
        if not opts["init"]:
            raise click.UsageError("Missing option '--init': the standard checkpoint Peng et al. fine-tune")
        if opts["mode"] != "random" and not opts["agent"]:
            raise click.UsageError(f"Missing option '--agent': --mode {opts['mode']} needs a pre-trained agent "
                                   "(robustpose train peng-agent); --mode random needs none")
    _check_files(opts, ("init", "agent"))
    run_training("peng", opts, explicit_settings(PengConfig, opts))
