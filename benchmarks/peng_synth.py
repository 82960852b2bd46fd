"""Peng et al. on SynthPose: a documented real run for docs/peng.md, its figures, and the step cost against standard.

``run``: from a standard checkpoint, pre-train the agent (both heads) and train jointly (``asr+aho``), writing each
step's logged values (``steps.csv``: the agent's mean distributions, the pose loss per kind of sample).
``figures``: the agent's scale and rotation distributions over pre-training and joint training, and the AHO cells it
occludes drawn on validation crops. ``cost``: wall time per training step (loading + update) of every mode against
standard fine-tuning, the methods interleaved batch by batch so that they share the machine's load.

Usage::

    python benchmarks/peng_synth.py run --work runs/peng --data-root data/synthpose --init runs/synth/best.pth
    python benchmarks/peng_synth.py figures --work runs/peng --data-root data/synthpose --out docs/images
    python benchmarks/peng_synth.py cost --data-root data/synthpose --init runs/synth/best.pth --agent \\
        runs/peng/agent/checkpoint.pth --steps 60
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from robustpose.datasets.keypoints import COCO
from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, create_model, torch_load
from robustpose.train import PRESETS, Callbacks, StandardConfig, StandardMethod, resolve_config, train
from robustpose.train.data import TopDownDataset, read_samples
from robustpose.train.engine import build_datasets, epoch_order
from robustpose.train.peng import (
    MODES,
    ROTATION_BINS,
    SCALE_BINS,
    Agent,
    PengAgentConfig,
    PengAgentMethod,
    PengConfig,
    PengMethod,
    sample_cells,
)


def config(data_root: Path, out: Path, epochs: int, seed: int = 0, threads: int = 1, **over):
    """The cpu-synth preset with this data, length (milestones scaled as in benchmarks/trainers_synth.py), seed."""
    preset = PRESETS["cpu-synth"]
    milestones = [max(1, round(m * epochs / preset["epochs"])) for m in preset["optim"]["milestones"]]
    layer = {"data": {"root": str(data_root)}, "epochs": epochs, "seed": seed, "device": "cpu", "threads": threads,
             "optim": {"milestones": milestones}, "out": str(out)}
    return resolve_config(preset, layer, over)


def recorded(run: Path, cfg, factory) -> None:
    """Train ``factory`` into ``run`` (unless finished) and keep every step's values in ``run/steps.csv``."""
    if (run / "checkpoint.pth").exists():
        return
    steps: list[dict] = []
    t = time.perf_counter()
    result = train(cfg, factory, callbacks=Callbacks(
        on_step=lambda epoch, step, logs: steps.append({"epoch": epoch, "step": step, **logs})))
    pd.DataFrame(steps).to_csv(run / "steps.csv", index=False)
    (run / "timing.json").write_text(json.dumps({**result.timings, "wall_s": time.perf_counter() - t}))


def run(args: argparse.Namespace) -> None:
    agent_dir, joint_dir = args.work / "agent", args.work / "joint"
    agent_cfg = config(args.data_root, agent_dir, args.agent_epochs, method="peng-agent")
    recorded(agent_dir, agent_cfg, partial(PengAgentMethod, settings=PengAgentConfig(
        init=str(args.init), mode="asr+aho", agent_width=args.agent_width)))
    joint_cfg = config(args.data_root, joint_dir, args.epochs, method="peng")
    recorded(joint_dir, joint_cfg, partial(PengMethod, settings=PengConfig(
        init=str(args.init), agent=str(agent_dir / "checkpoint.pth"), mode="asr+aho", agent_every=args.agent_every)))


def _bins_panel(ax, frame: pd.DataFrame, prefix: str, centers: tuple[float, ...], label: str, title: str) -> None:
    cols = [f"{prefix}{j}" for j in range(len(centers))]
    data = frame[cols].to_numpy().T
    im = ax.imshow(data, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=max(0.3, float(data.max())),
                   interpolation="nearest")
    ax.set_yticks(range(len(centers)), [label.format(c) for c in centers], fontsize=6)
    ax.set_title(title, fontsize=7)
    return im


def distribution_figure(work: Path, png: Path, smooth: int = 10) -> Path:
    """Scale and rotation distributions (batch means, ``smooth``-step running means) over pre-training and joint
    training; the uniform level is 1/7 = 0.143."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pre = pd.read_csv(work / "agent" / "steps.csv")
    joint = pd.read_csv(work / "joint" / "steps.csv")
    joint = joint.dropna(subset=["p_scale0"])
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.2), sharey="row")
    fig.subplots_adjust(hspace=0.4)
    for c, (name, frame) in enumerate((("agent pre-training", pre), ("joint training (agent batches)", joint))):
        frame = frame.reset_index(drop=True).rolling(smooth, min_periods=1).mean()
        im = _bins_panel(axes[0, c], frame, "p_scale", SCALE_BINS.centers, "x={:+.1f}",
                         f"{name}: scale bins (factor 2^x)")
        _bins_panel(axes[1, c], frame, "p_rot", ROTATION_BINS.centers, "{:+.0f} deg", f"{name}: rotation bins")
        axes[1, c].set_xlabel("step" if c == 0 else "agent-augmented step", fontsize=7)
    fig.colorbar(im, ax=axes, fraction=0.025, label="mean probability (uniform 0.143)")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return png


def loss_figure(work: Path, png: Path) -> Path:
    """Pose loss per kind of sample, per epoch of joint training (the engine's log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = pd.read_csv(work / "joint" / "log.csv")
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for kind in ("random", "asr", "aho"):
        if f"loss_{kind}" in log:
            ax.plot(log["epoch"], log[f"loss_{kind}"] * 1e3, marker="o", label=kind)
    ax.set_xlabel("epoch")
    ax.set_ylabel("pose loss (x 1e-3)")
    ax.legend(fontsize=7)
    ax.set_title("joint training: loss on each kind of sample", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return png


def occlusion_figure(work: Path, data_root: Path, png: Path, n: int = 6, seed: int = 0) -> Path:
    """Validation crops with the trained agent's occlusion distribution over the grid (left) and the 2 cells it
    draws (right, greyed), beside 2 uniformly drawn cells of the random reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patches

    state = torch_load(work / "joint" / "checkpoint.pth")
    cfg = state["config"]
    size, hm = tuple(cfg["data"]["input_size"]), tuple(cfg["data"]["heatmap_size"])
    model = create_model(cfg["model"]["arch"], num_joints=17, **cfg["model"]["kwargs"])
    model.load_state_dict(state["state_dict"])
    model.eval()
    spec = torch_load(work / "agent" / "checkpoint.pth")["train_state"]["method"]["agent_spec"]
    agent = Agent(spec["in_channels"], tuple(spec["grid"]), width=spec["width"])
    agent.load_state_dict(state["train_state"]["method"]["agent"])
    agent.eval()
    samples = read_samples("synth", data_root / "annotations" / "person_keypoints_val.json", data_root / "images",
                           size[1] / size[0])
    crops = TopDownDataset(samples[:n], COCO, size, hm, 2.0, None)
    images = torch.stack([crops[i]["image"] for i in range(len(crops))])
    with torch.no_grad():
        probs = torch.softmax(agent(model.stage_features(images))["occlusion"], 1).numpy()
    gh, gw = agent.grid
    mean, std = np.asarray(IMAGENET_MEAN)[:, None, None], np.asarray(IMAGENET_STD)[:, None, None]
    fig, axes = plt.subplots(3, n, figsize=(1.45 * n, 6.2))
    rng = np.random.default_rng(seed)
    for c in range(n):
        img = np.clip(images[c].numpy() * std + mean, 0, 1).transpose(1, 2, 0)
        h, w = img.shape[:2]
        chosen = sample_cells(probs[c], 2, rng)
        uniform = sample_cells(np.full(gh * gw, 1 / (gh * gw)), 2, rng)
        for r, (title, cells) in enumerate((("agent p(cell), %", None), ("agent's 2 cells", chosen),
                                            ("random 2 cells", uniform))):
            ax = axes[r, c]
            ax.imshow(img)
            if cells is None:  # the probability of each cell, in percent (uniform: 100 / cells)
                for cell, v in enumerate(probs[c]):
                    y, x = divmod(cell, gw)
                    ax.text((x + 0.5) * w / gw, (y + 0.5) * h / gh, f"{100 * v:.0f}", color="white", fontsize=7,
                            ha="center", va="center", fontweight="bold",
                            bbox={"facecolor": "black", "alpha": 0.45, "pad": 1, "linewidth": 0})
            else:
                for cell in cells:
                    y, x = divmod(cell, gw)
                    ax.add_patch(patches.Rectangle((x * w / gw, y * h / gh), w / gw, h / gh, facecolor="black",
                                                   alpha=0.8, edgecolor="red", linewidth=2))
            for k in range(1, gw):
                ax.axvline(k * w / gw, color="white", linewidth=0.3)
            for k in range(1, gh):
                ax.axhline(k * h / gh, color="white", linewidth=0.3)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title, fontsize=7)
    fig.suptitle(f"AHO on validation crops ({gh}x{gw} grid; the mask zeroes these cells on every feature level)",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return png


def figures(args: argparse.Namespace) -> None:
    out = args.out
    for png in (distribution_figure(args.work, out / "peng_distributions.png"),
                loss_figure(args.work, out / "peng_losses.png"),
                occlusion_figure(args.work, args.data_root, out / "peng_occlusions.png")):
        print(f"wrote {png}")


def cost(args: argparse.Namespace) -> None:
    """Seconds per step (crops + update) of standard and every Peng mode, interleaved batch by batch."""
    torch.set_num_threads(args.threads)
    cfg = config(args.data_root, Path("/nonexistent"), 4)
    train_set, _, _ = build_datasets(cfg)
    methods = {}
    for name in ["standard", *MODES]:
        model = create_model(cfg.model.arch, num_joints=17, **cfg.model.kwargs).to(memory_format=torch.channels_last)
        if name == "standard":
            m = StandardMethod(model, cfg, torch.device("cpu"), settings=StandardConfig(init=str(args.init)))
        else:
            m = PengMethod(model, cfg, torch.device("cpu"), settings=PengConfig(
                init=str(args.init), agent="" if name == "random" else str(args.agent), mode=name))
            m.bind_data(train_set)
        m.start_epoch(0)
        methods[name] = m
    order = epoch_order(len(train_set), 0, 0)
    times: dict[str, list[float]] = {k: [] for k in methods}
    agent_times: dict[str, list[float]] = {k: [] for k in methods}
    for s in range(args.steps):
        chunk = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
        for name, m in methods.items():
            t = time.perf_counter()
            items = [train_set[i] for i in chunk]
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
            logs = m.step(batch)
            (agent_times if "loss_agent" in logs else times)[name].append(time.perf_counter() - t)
    # the first steps warm up; an agent update (once an epoch by default) is timed apart
    steps_per_epoch = len(train_set) // cfg.batch_size
    base = np.mean(times["standard"][2:])
    rows = []
    for k, v in times.items():
        step, agent = float(np.mean(v[2:])), float(np.mean(agent_times[k])) if agent_times[k] else 0.0
        epoch = ((steps_per_epoch - 1) * step + (agent or step)) / steps_per_epoch
        rows.append({"method": k, "s_per_step": step, "s_agent_step": agent, "ratio_step": step / base,
                     "ratio_epoch": epoch / base})
    table = pd.DataFrame(rows).set_index("method")
    print(f"{steps_per_epoch} steps an epoch; the agent step once an epoch (--agent-every epoch)")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    if args.csv:
        table.to_csv(args.csv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--init", type=Path, required=True)
    p.add_argument("--agent-epochs", type=int, default=2)
    p.add_argument("--agent-width", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--agent-every", default="batch")
    f = sub.add_parser("figures")
    f.add_argument("--work", type=Path, required=True)
    f.add_argument("--data-root", type=Path, required=True)
    f.add_argument("--out", type=Path, default=Path("docs/images"))
    c = sub.add_parser("cost")
    c.add_argument("--data-root", type=Path, required=True)
    c.add_argument("--init", type=Path, required=True)
    c.add_argument("--agent", type=Path, required=True)
    c.add_argument("--steps", type=int, default=40)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    {"run": run, "figures": figures, "cost": cost}[args.command](args)


if __name__ == "__main__":
    main()
