"""docs/asda.md's figures from a finished ``robustpose train asda --snapshot`` run.

1. ``asda_pastes.png``: the same training crops with the same parts, pasted by the generator at the start of
   training (zero-initialised: the identity, the part at the centre), after the first epoch and at the end.
2. ``asda_theta.png``: the rotation (degrees) and translation (grid units) the generator chooses per part type on
   ``--crops`` training crops, after the first epoch and at the end (types the pool lacks are left out: their heads
   never get a gradient and stay at the identity).

Usage::

    python tools/asda_figures.py --run runs/asda-s0 --out docs/images
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from robustpose.datasets.parts import TYPE_NAMES, load_pool
from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, torch_load
from robustpose.train import resolve_config
from robustpose.train.asda import ASDAConfig, PartGenerator, PartPaster, paste, select_rt
from robustpose.train.asda.paster import ROTATION_RANGE, TRANSLATION_RANGE
from robustpose.train.engine import build_datasets


def generators(run: Path, width: int) -> dict[str, PartGenerator]:
    """The generator at the start, after epoch 0 and at the end of ``run`` (eval mode)."""
    out = {}
    for label, state in (("start (identity)", torch_load(run / "generator" / "epoch000.pth")),
                         ("after epoch 1", torch_load(run / "generator" / "epoch001.pth")),
                         ("end", torch_load(run / "checkpoint.pth")["train_state"]["method"]["generator"])):
        g = PartGenerator(len(TYPE_NAMES), width)
        g.load_state_dict(state)
        out[label] = g.eval()
    return out


def crops(run: Path, n: int, seed: int = 0) -> tuple[dict[str, torch.Tensor], ASDAConfig]:
    """``n`` training crops of the run's data (epoch 0's augmentation) with parts, collated, and the settings."""
    state = torch_load(run / "checkpoint.pth")
    config = resolve_config(state["config"])
    settings = ASDAConfig(**config.method_settings)
    train_set, _, _ = build_datasets(config)
    train_set.extras = PartPaster(load_pool(settings.pool), tuple(config.data.input_size), TYPE_NAMES,
                                  settings.num_parts, config.data.dataset != "mpii", settings.min_visible,
                                  settings.erode, settings.blur)
    train_set.set_epoch(0)
    rng = np.random.default_rng(seed)
    items = []
    for i in rng.permutation(len(train_set)):
        item = train_set[int(i)]
        if (item["part_type"] >= 0).any():
            items.append(item)
        if len(items) == n:
            break
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}, settings


def show(x: torch.Tensor) -> np.ndarray:
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


@torch.no_grad()
def pastes_figure(batch: dict[str, torch.Tensor], gens: dict[str, PartGenerator], png: Path) -> None:
    n = len(batch["image"])
    fig, axes = plt.subplots(len(gens) + 1, n, figsize=(1.25 * n, 1.75 * (len(gens) + 1)), squeeze=False)
    rows = {"crop": batch["image"]}
    for label, g in gens.items():
        rt = select_rt(g(batch["image"]), batch["part_type"])
        rows[label] = paste(batch["image"], batch["part_image"], batch["part_mask"], batch["part_type"], rt)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(show(images[c]))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
            if r == 0:
                ax.set_title(TYPE_NAMES[int(batch["part_type"][c, 0])].replace("_", " "), fontsize=6)
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)


@torch.no_grad()
def theta_figure(batch: dict[str, torch.Tensor], gens: dict[str, PartGenerator], types: list[str],
                 png: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Per type: the rotation and translation of the generator over the crops; returns (mean, std) of the
    rotation in degrees and of |translation| per generator and type."""
    shown = {k: g for k, g in gens.items() if not k.startswith("start")}
    fig, axes = plt.subplots(2, len(shown), figsize=(4.2 * len(shown), 6.4), squeeze=False)
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    idx = [TYPE_NAMES.index(t) for t in types]
    for col, (label, g) in enumerate(shown.items()):
        out = g(batch["image"])[:, idx]  # (B, types, 3)
        rot = (out[..., 0] * math.degrees(ROTATION_RANGE)).numpy()
        shift = (out[..., 1:] * TRANSLATION_RANGE).numpy()
        ax = axes[0, col]
        ax.boxplot([rot[:, k] for k in range(len(types))], vert=False, showfliers=False)
        ax.set_yticks(range(1, len(types) + 1), [t.replace("_", " ") for t in types], fontsize=7)
        ax.set_xlim(-90, 90)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("rotation (degrees; range +-90)", fontsize=8)
        ax.set_title(f"generator {label}", fontsize=9)
        ax = axes[1, col]
        for k, t in enumerate(types):
            ax.scatter(shift[:, k, 0], shift[:, k, 1], s=4, alpha=0.5, label=t.replace("_", " "))
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(1.2, -1.2)  # image y points down
        ax.set_aspect("equal")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("translation x (grid units; the crop spans -1..1)", fontsize=8)
        ax.set_ylabel("translation y", fontsize=8)
        ax.legend(fontsize=6, markerscale=3, loc="lower left")
        summary[label] = {t: (float(rot[:, k].mean()), float(rot[:, k].std()),
                              float(np.linalg.norm(shift[:, k], axis=1).mean())) for k, t in enumerate(types)}
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `train asda --snapshot` run folder")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--crops", type=int, default=256, help="training crops for the per-type statistics")
    parser.add_argument("--show", type=int, default=8, help="crops in the paste figure")
    args = parser.parse_args()
    torch.set_num_threads(1)
    batch, settings = crops(args.run, args.crops)
    gens = generators(args.run, settings.gen_width)
    args.out.mkdir(parents=True, exist_ok=True)
    pastes_figure({k: v[:args.show] for k, v in batch.items()}, gens, args.out / "asda_pastes.png")
    types = list(load_pool(settings.pool).by_type)
    summary = theta_figure(batch, gens, types, args.out / "asda_theta.png")
    print(f"wrote {args.out / 'asda_pastes.png'} and {args.out / 'asda_theta.png'}")
    for label, per_type in summary.items():
        print(f"generator {label}: type: rotation mean / std (deg), mean |translation| (grid units)")
        for t, (m, s, d) in per_type.items():
            print(f"  {t:22s} {m:7.1f} {s:6.1f} {d:6.3f}")


if __name__ == "__main__":
    main()
