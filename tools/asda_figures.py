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


def on_screen(rt: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """What ``(r, t_x, t_y)`` ``(..., 3)`` does to a part on screen: its clockwise rotation in degrees (``pi r``:
    the grid maps an output point ``p`` to ``A p + t``, so the part turns by ``A``'s inverse, clockwise for ``r > 0``
    with y pointing down) and where its centre goes, ``-A^T t`` in normalised units (``(..., 2)``)."""
    a = rt[..., 0] * ROTATION_RANGE
    t = rt[..., 1:] * TRANSLATION_RANGE
    cos, sin = torch.cos(a), torch.sin(a)
    centre = -torch.stack([cos * t[..., 0] - sin * t[..., 1], sin * t[..., 0] + cos * t[..., 1]], -1)
    return torch.rad2deg(a).numpy(), centre.numpy()


@torch.no_grad()
def theta_figure(batch: dict[str, torch.Tensor], gens: dict[str, PartGenerator], types: list[str],
                 png: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Per type: the on-screen rotation and displacement (:func:`on_screen`) the generator gives over the crops;
    returns per generator and type the rotation's mean and std in degrees and the mean displacement length."""
    shown = {k: g for k, g in gens.items() if not k.startswith("start")}
    fig, axes = plt.subplots(2, len(shown), figsize=(4.6 * len(shown), 6.6), squeeze=False)
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    idx = [TYPE_NAMES.index(t) for t in types]
    for col, (label, g) in enumerate(shown.items()):
        out = g(batch["image"])[:, idx]  # (B, types, 3)
        rot, shift = on_screen(out)
        ax = axes[0, col]
        ax.boxplot([rot[:, k] for k in range(len(types))], orientation="horizontal", showfliers=False)
        ax.set_yticks(range(1, len(types) + 1), [t.replace("_", " ") for t in types], fontsize=7)
        ax.set_xlim(-90, 90)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("rotation on screen (degrees clockwise; range +-90)", fontsize=8)
        ax.set_title(f"generator {label}", fontsize=9)
        ax = axes[1, col]
        colors = plt.get_cmap("tab20")
        for k, t in enumerate(types):
            ax.scatter(shift[:, k, 0], shift[:, k, 1], s=4, alpha=0.5, color=colors(k % 20), label=t.replace("_", " "))
        reach = TRANSLATION_RANGE / 2 * math.sqrt(2)  # |t| <= 1.2 per axis
        ax.set_xlim(-reach, reach)
        ax.set_ylim(reach, -reach)  # image y points down
        for v in (-1, 1):  # the crop's edges
            ax.axhline(v, color="grey", lw=0.5, ls=":")
            ax.axvline(v, color="grey", lw=0.5, ls=":")
        ax.set_aspect("equal")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("part centre moved by, x (the crop spans -1..1)", fontsize=8)
        ax.set_ylabel("y (down)", fontsize=8)
        if col == len(shown) - 1:
            ax.legend(fontsize=6, markerscale=3, loc="center left", bbox_to_anchor=(1.02, 0.5))
        summary[label] = {t: (float(rot[:, k].mean()), float(rot[:, k].std()),
                              float(np.linalg.norm(shift[:, k], axis=1).mean())) for k, t in enumerate(types)}
    fig.tight_layout()
    fig.savefig(png, dpi=130, bbox_inches="tight")
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
        print(f"generator {label}: type: clockwise rotation mean / std (deg), mean displacement (crop: -1..1)")
        for t, (m, s, d) in per_type.items():
            print(f"  {t:22s} {m:7.1f} {s:6.1f} {d:6.3f}")


if __name__ == "__main__":
    main()
