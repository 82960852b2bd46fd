"""What the learned AdvMix mixer does over training, from the runs' ``steps.csv``: per epoch, each view's mean weight,
the weights' spread over pixels, and the pose loss on the generator's mix against the loss on the equal mix of the
same views (logged every ``--probe-every`` steps by the runs of ``benchmarks/trainers_synth.py``).

Writes a Markdown table (one line per run and epoch) and a figure (one row per run: weights, spread, loss ratio).

Usage::

    python benchmarks/advmix_dynamics.py --work runs/bench --runs advmix-s0 advmix-s1 advmix-image-s0 \\
        --figure docs/images/advmix_dynamics.png --table runs/bench/advmix_dynamics.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from robustpose.report.render import markdown_table

VIEW_NAMES = ("clean", "autoaug", "gridmask")  # the order of the official code's three views (w0, w1, w2)


def per_epoch(steps: pd.DataFrame) -> pd.DataFrame:
    """Per epoch: mean view weights ``w_<view>``, mean spatial spread, mean loss on the mix / on the equal mix (over
    the probed steps), and the pose loss on the mix seen by the generator (``loss_adv``)."""
    views = [c for c in steps.columns if c[1:].isdigit() and c.startswith("w")]
    table = steps.groupby("epoch")[[*views, "w_spatial_std", "loss_adv"]].mean()
    table = table.rename(columns={v: f"w_{VIEW_NAMES[int(v[1:])]}" if int(v[1:]) < len(VIEW_NAMES) else v
                                  for v in views})
    probed = steps.dropna(subset=["loss_equal", "loss_mixed"])
    table["mixed_over_equal"] = probed.groupby("epoch")["loss_mixed"].mean() / \
        probed.groupby("epoch")["loss_equal"].mean()
    return table


def dynamics_table(runs: dict[str, Path]) -> pd.DataFrame:
    """:func:`per_epoch` of each run's ``steps.csv``, stacked with a ``run`` column, in report units: weights and
    spread in percent, the loss ratio in percent, ``loss_adv`` x 1000."""
    parts = [per_epoch(pd.read_csv(folder / "steps.csv")).reset_index().assign(run=name)
             for name, folder in runs.items()]
    table = pd.concat(parts).set_index(["run", "epoch"])
    percent = [c for c in table.columns if c.startswith("w_")] + ["mixed_over_equal"]
    table[percent] *= 100
    table["loss_adv"] *= 1000
    return table.rename(columns={c: f"{c} %" for c in percent} | {"loss_adv": "loss_adv x1e3"})


def dynamics_figure(runs: dict[str, Path], png: Path, window: int = 25) -> Path:
    """One row per trainer row (run names ``<row>-s<seed>``; seeds solid, dashed, dotted): view weights (rolling
    mean over ``window`` steps), spatial spread, and the loss on the mix over the loss on the equal mix (probed
    steps, rolling mean over 5 probes), against the step."""
    from matplotlib.figure import Figure

    from robustpose.report.render import save_png

    rows: dict[str, list[Path]] = {}
    for name, folder in runs.items():
        rows.setdefault(name.rsplit("-s", 1)[0], []).append(folder)
    fig = Figure(figsize=(11, 2.1 * len(rows)))
    axes = fig.subplots(len(rows), 3, squeeze=False, sharex=True)
    colours = ("tab:blue", "tab:orange", "tab:green")
    for r, (row, folders) in enumerate(rows.items()):
        for folder, style in zip(folders, ("-", "--", ":")):
            steps = pd.read_csv(folder / "steps.csv")
            for i, view in enumerate(VIEW_NAMES):
                if f"w{i}" in steps:
                    axes[r, 0].plot(steps.index, steps[f"w{i}"].rolling(window, min_periods=1).mean(), style,
                                    color=colours[i], label=view if style == "-" else None)
            axes[r, 1].plot(steps.index, steps["w_spatial_std"].rolling(window, min_periods=1).mean(), style,
                            color="tab:purple")
            probed = steps.dropna(subset=["loss_equal", "loss_mixed"])
            ratio = (probed["loss_mixed"] / probed["loss_equal"]).rolling(5, min_periods=1).mean()
            axes[r, 2].plot(probed.index, ratio, style, color="tab:red")
        epochs = steps.index[steps["epoch"].diff() > 0]
        for ax in axes[r]:
            for e in epochs:
                ax.axvline(e, color="grey", lw=0.5, alpha=0.5)
        axes[r, 0].set_ylim(0, 1)
        axes[r, 0].set_ylabel(row, fontsize=8)
        axes[r, 2].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[0, 0].set_title("mean weight of each view", fontsize=9)
    axes[0, 1].set_title("weights' std over pixels", fontsize=9)
    axes[0, 2].set_title("pose loss: generator's mix / equal mix", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("training step (grey lines: epochs)", fontsize=8)
    fig.tight_layout()
    save_png(fig, png)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="the trainers_synth.py working folder")
    parser.add_argument("--runs", nargs="+", required=True, help="run folders under <work>/runs")
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--table", type=Path, default=None)
    args = parser.parse_args()
    runs = {name: args.work / "runs" / name for name in args.runs}
    table = markdown_table(dynamics_table(runs).reset_index().set_index("run"))
    print(table)
    if args.table:
        args.table.write_text(table + "\n")
    if args.figure:
        print(f"wrote {dynamics_figure(runs, args.figure)}")


if __name__ == "__main__":
    main()
