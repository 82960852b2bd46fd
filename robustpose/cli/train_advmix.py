"""``robustpose train advmix``: AdvMix fine-tuning from a standard checkpoint (the shared engine's options, plus
AdvMix's own)."""

from __future__ import annotations

from typing import Any

import click

from .lazy import module_constant
from .options import PositiveFloat, option_group
from .train import explicit_settings, run_training, training_options

# read without importing robustpose.train.advmix (torch), so that --help starts fast (robustpose/cli/lazy.py)
MIXERS: tuple[str, ...] = module_constant("robustpose.train.advmix.mixers", "MIXERS")
KD_INPUTS: tuple[str, ...] = module_constant("robustpose.train.advmix.method", "KD_INPUTS")
LOSSES: tuple[str, ...] = module_constant("robustpose.train.advmix.method", "LOSSES")

EPILOG = """\b
Examples:
  robustpose train standard --preset cpu-synth --data-root data/synthpose --out runs/standard
  robustpose train advmix --init runs/standard/best.pth --preset cpu-synth --data-root data/synthpose \\
      --epochs 3 --out runs/advmix
  robustpose train advmix --init runs/standard/best.pth --mixer equal ... # EqualMix ablation
  robustpose train advmix --init runs/standard/best.pth --no-kd ...       # without distillation
  robustpose train advmix --init CKPT --kd-input clean --loss mse ...     # the paper's variants
"""

ADVMIX_OPTIONS = [
    click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="Standard checkpoint the pose net starts from (and the teacher, unless --teacher); required "
                      "unless --resume, which takes the run's own."),
    click.option("--teacher", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="Checkpoint of the frozen distillation teacher.  [default: --init]"),
    click.option("--mixer", type=click.Choice(MIXERS), default="advmix", show_default=True,
                 help="How the views are mixed: learned per pixel (advmix) or per image (advmix-image), equal "
                      "weights, random Dirichlet weights, or the augmentations composed in sequence."),
    click.option("--views", type=click.IntRange(min=2), default=3, show_default=True,
                 help="Views mixed, the clean crop included (clean, autoaug, gridmask, autoaug, ...)."),
    click.option("--alpha", type=click.FloatRange(0, 1), default=0.1, show_default=True,
                 help="Weight of the distillation term."),
    click.option("--kd/--no-kd", default=True, show_default=True, help="Distil from the frozen teacher."),
    click.option("--kd-input", type=click.Choice(KD_INPUTS), default="mix", show_default=True,
                 help="Student input in the distillation term: the mix (official code) or the clean crop (paper)."),
    click.option("--loss", type=click.Choice(LOSSES), default="smoothl1", show_default=True,
                 help="Heatmap loss: smoothl1 (official code, inverted flag) or mse (paper)."),
    click.option("--adv-weight", type=PositiveFloat(), default=1.0, show_default=True,
                 help="Weight of the generator's adversarial loss."),
    click.option("--gen-lr", type=PositiveFloat(), default=1e-3, show_default=True,
                 help="Generator learning rate (Adam, the pose net's step schedule)."),
    click.option("--gen-width", type=click.IntRange(min=1), default=64, show_default=True,
                 help="Generator width (ngf)."),
    click.option("--gen-depth", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Generator down-samplings; 0: as many as the input size allows, at most 6."),
    click.option("--probe-every", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Every N steps also measure the pose loss on the equal mix (progress shows both)."),
]
advmix_options = option_group(ADVMIX_OPTIONS)


@click.command("advmix", epilog=EPILOG)
@training_options
@advmix_options
def advmix_cmd(**opts: Any) -> None:
    """AdvMix: an adversarial generator mixes augmented views per pixel; a frozen teacher distils clean poses.

    Its settings are stored with the run: ``--resume`` needs none of them again."""
    from robustpose.train.advmix import AdvMixConfig

    from .eval_ckpt import check_checkpoint_file

    if not opts["init"] and not opts["resume"]:
        raise click.UsageError("Missing option '--init': the standard checkpoint AdvMix fine-tunes and distils from")
    checkpoints = {f"--{option}": (opts[option], check_checkpoint_file(opts[option], f"--{option}"))
                   for option in ("init", "teacher") if opts[option]}
    run_training("advmix", opts, explicit_settings(AdvMixConfig, opts), checkpoints)
