"""``robustpose train asda``: ASDA, body parts pasted adversarially (the shared engine's options, plus ASDA's own)."""

from __future__ import annotations

from typing import Any

import click

from .options import option_group
from .train import explicit_settings, run_training, training_options

EPILOG = """\b
Examples:
  robustpose synth --out data/synthpose --train 3000 --val 200
  robustpose parts synth --data data/synthpose --out data/parts
  robustpose train asda --pool data/parts --init runs/standard/best.pth --preset cpu-synth \\
      --data-root data/synthpose --gen-width 16 --epochs 4 --milestones 3 --out runs/asda
  robustpose train asda --pool data/parts --random ...     # SDA-random: same pastes, uniform rotation/shift
  robustpose train asda --pool lip_parts --data coco ... --gen-init resnet18.pth   # from scratch, as the paper
  robustpose train asda --out runs/asda --resume
"""

ASDA_OPTIONS = [
    click.option("--pool", type=click.Path(exists=True, file_okay=False), default=None,
                 help="Part pool folder (robustpose parts build / parts synth); required unless --resume."),
    click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="Checkpoint the pose net starts from (fine-tuning).  [default: the architecture's "
                      "initialisation, as the paper trains]"),
    click.option("--gen-init", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="ResNet-18 weights (torchvision resnet18 keys) for the generator's trunk; needs --gen-width "
                      "64.  [default: random initialisation; the code uses ImageNet weights]"),
    click.option("--random", is_flag=True, default=False,
                 help="SDA-random baseline: the same pastes with rotation and shift uniform over the generator's "
                      "ranges, no generator."),
    click.option("--num-parts", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Parts pasted per crop (the code's NUM_AUG)."),
    click.option("--gen-lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
                 help="Generator learning rate (Adam, no schedule)."),
    click.option("--gen-width", type=click.IntRange(min=1), default=64, show_default=True,
                 help="Generator trunk width (64: ResNet-18; 16 fits a CPU)."),
    click.option("--nd", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Pose-net steps per batch."),
    click.option("--ng", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Generator steps per batch."),
    click.option("--stn-first", is_flag=True, default=False, help="Run the generator's steps first."),
    click.option("--min-visible", type=click.IntRange(min=0), default=8, show_default=True,
                 help="COCO-format data: no part on crops with fewer visible joints."),
    click.option("--erode", type=click.IntRange(min=0), default=3, show_default=True,
                 help="Erosion kernel of the parts' soft masks (0: none)."),
    click.option("--blur", type=click.IntRange(min=0), default=3, show_default=True,
                 help="Box-blur kernel of the parts' soft masks (0: none)."),
    click.option("--snapshot", is_flag=True, default=False,
                 help="Save the generator at the start of every epoch to OUT/generator/ (for figures)."),
]
asda_options = option_group(ASDA_OPTIONS)


@click.command("asda", epilog=EPILOG)
@training_options
@asda_options
def asda_cmd(**opts: Any) -> None:
    """ASDA: body parts from a part pool pasted into the crops at a rotation and shift an adversarial generator
    chooses per part type; the targets stay the person's.

    Its settings are stored with the run: ``--resume`` needs none of them again."""
    from robustpose.datasets.parts import PoolError, load_pool
    from robustpose.train.asda import ASDAConfig

    from .eval_ckpt import check_checkpoint_file

    if not opts["pool"] and not opts["resume"]:
        raise click.UsageError("Missing option '--pool': the part pool ASDA pastes from (robustpose parts build / "
                               "parts synth)")
    if opts["pool"]:
        try:
            load_pool(opts["pool"])
        except PoolError as exc:
            raise click.ClickException(str(exc)) from None
    if opts["init"]:
        check_checkpoint_file(opts["init"], "--init")
    run_training("asda", opts, explicit_settings(ASDAConfig, opts))
