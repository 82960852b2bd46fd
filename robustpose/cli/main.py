"""Entry point of the ``robustpose`` command; each subcommand lives in its own module.

The command modules import only click, rich and light robustpose modules at import time; torch, hotcoco, scipy and
matplotlib are imported inside the commands that need them, so ``robustpose --help`` and every subcommand's
``--help`` start in well under a second (``benchmarks/cli_startup.py``). Failures are reported by
:class:`~robustpose.cli.errors.RobustposeGroup`: one line, exit 1 (data) or 2 (usage), ``--debug`` for a traceback.
"""

from __future__ import annotations

import click

from robustpose import __version__

from .build_c import build_c_cmd, verify_c_cmd
from .corrupt import corrupt_cmd
from .demo import demo_cmd
from .errors import RobustposeGroup
from .eval import eval_cmd
from .leaderboard import leaderboard_cmd
from .lift import lift_group
from .parts import parts_group
from .synth import synth_cmd
from .train import train_group
from .train_advmix import advmix_cmd
from .train_peng import peng_agent_cmd, peng_cmd
from .train_asda import asda_cmd

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}


@click.group(cls=RobustposeGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="robustpose")
@click.option("--debug", is_flag=True,
              help="Show the full traceback of a failure instead of the one-line error (for bug reports).")
def cli(debug: bool) -> None:
    """Measure and improve how robust human pose estimators are to common image corruptions.

    Errors are one line on stderr; exit status 1 for bad data or state, 2 for bad usage, 130 for Ctrl-C (rerun the
    same command to resume). See docs/errors.md.
    """


cli.add_command(corrupt_cmd)
cli.add_command(build_c_cmd)
cli.add_command(verify_c_cmd)
cli.add_command(synth_cmd)
cli.add_command(parts_group)
cli.add_command(eval_cmd)
cli.add_command(leaderboard_cmd)
train_group.add_command(advmix_cmd)
train_group.add_command(peng_agent_cmd)
train_group.add_command(peng_cmd)
train_group.add_command(asda_cmd)
cli.add_command(train_group)
cli.add_command(demo_cmd)
cli.add_command(lift_group)
