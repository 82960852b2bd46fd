"""``robustpose lift eval``: a lifter on every test split (MPJPE, PA-MPJPE, PCK@150 mm, AUC, per joint) and on the
keypoint-corruption cells of one split (mPC / rPC of MPJPE and PA-MPJPE).

Errors are reported in millimetres on root-relative poses (Human3.6M protocol #1; PA-MPJPE is protocol #2).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustpose.datasets.imageio import write_atomic

from .corruptions import CORRUPTIONS, PARAMS, SEVERITIES, corrupt_keypoints
from .data import LiftData, LiftSet
from .engine import predict
from .metrics import error_robustness, per_joint, pose_metrics
from .skeleton import JOINTS
from .summary import LIFT_SUMMARY_SCHEMA

Progress = Callable[[Iterable[Any], int], Iterator[Any]]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_scores(lifter: nn.Module, data: LiftSet, device: torch.device | str, pose2d: np.ndarray | None = None
                 ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(MPJPE, PA-MPJPE, PCK, AUC in mm / %; per-joint MPJPE and PA-MPJPE in mm) of ``data`` (optionally with other
    2D inputs)."""
    gt = 1000.0 * (data.pose3d - data.pose3d[:, :1])
    pred = 1000.0 * predict(lifter, data.pose2d if pose2d is None else pose2d, device)
    return pose_metrics(pred, gt), per_joint(pred, gt)


def evaluate_lifter(lifter: nn.Module, data: LiftData, *, device: torch.device | str = "cpu",
                    corruption_split: str = "test", seed: int = 0, corruptions: Sequence[str] = CORRUPTIONS,
                    severities: Sequence[int] = SEVERITIES, run: dict[str, Any] | None = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    """The evaluation summary (``summary.json``'s content). ``run`` adds fields (checkpoint, method, arch)."""
    if corruption_split not in data.test_splits:
        raise ValueError(f"--corruption-split {corruption_split!r} is not a test split of {data.path_3d}; the test "
                         f"splits are {', '.join(data.test_splits)}")
    sets = {name: data.load(name) for name in data.test_splits}
    splits: dict[str, Any] = {}
    for name, split in sets.items():
        scores, joints = split_scores(lifter, split, device)
        splits[name] = {**scores, "n": len(split),
                        "per_joint": {k: dict(zip(JOINTS, map(float, v))) for k, v in joints.items()}}
    target = sets[corruption_split]
    cells_run = [(c, s) for c in corruptions for s in severities]
    wrap = progress or (lambda items, total: iter(items))
    cells: dict[str, dict[str, float]] = {}
    for c, s in wrap(cells_run, len(cells_run)):
        noisy = corrupt_keypoints(target.pose2d, c, s, seed=seed).astype(np.float32)
        scores, _ = split_scores(lifter, target, device, noisy)
        cells[f"{c}/{s}"] = {"MPJPE": scores["MPJPE"], "PA-MPJPE": scores["PA-MPJPE"]}
    clean = splits[corruption_split]
    rob = {m: error_robustness(clean[m], {(k.split("/")[0], int(k.split("/")[1])): v[m] for k, v in cells.items()},
                               m) for m in ("MPJPE", "PA-MPJPE")}
    return {
        "schema": LIFT_SUMMARY_SCHEMA,
        "run": {"dataset": f"{data.path_3d.name} + {data.path_2d.name} ({_sha(data.path_3d)[:8]}"
                           f"{_sha(data.path_2d)[:8]})",
                "data_3d": str(data.path_3d), "data_2d": str(data.path_2d), "splits": data.splits,
                "corruption_split": corruption_split, "seed": int(seed), "corruptions": {c: PARAMS[c] for c in
                                                                                         corruptions},
                **(run or {})},
        "metric": "MPJPE", "unit": "mm", "splits": splits,
        "clean": {"MPJPE": clean["MPJPE"], "PA-MPJPE": clean["PA-MPJPE"]},
        "cells": cells,
        "mPC": rob["MPJPE"].mpc, "rPC": rob["MPJPE"].rpc, "mPC_PA": rob["PA-MPJPE"].mpc, "rPC_PA": rob["PA-MPJPE"].rpc,
        "per_corruption": rob["MPJPE"].per_corruption, "per_severity": {str(k): v for k, v in
                                                                        rob["MPJPE"].per_severity.items()},
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    """The report: per-split scores, the corruption grid and the per-joint errors."""
    run = summary["run"]
    lines = [f"# Lifting evaluation: {run.get('method', '?')} ({run.get('arch', '?')})", "",
             (f"Data: {run['dataset']}. Errors in mm on root-relative poses; PCK at 150 mm, AUC over 0-150 mm. "
              "rPC = 100 x clean / mPC (100: corruptions cost nothing)."), "",
             "| split | n | MPJPE | PA-MPJPE | PCK | AUC |", "|---|---|---|---|---|---|"]
    for name, s in summary["splits"].items():
        lines.append(f"| {name} | {s['n']} | {s['MPJPE']:.1f} | {s['PA-MPJPE']:.1f} | {s['PCK']:.1f} | {s['AUC']:.1f} |")
    sev = sorted({int(k.split("/")[1]) for k in summary["cells"]})
    lines += ["", (f"Keypoint corruptions on `{run['corruption_split']}`: MPJPE (mm) per severity; "
                   f"mPC {summary['mPC']:.1f}, rPC {summary['rPC']:.1f} % (PA-MPJPE: mPC {summary['mPC_PA']:.1f}, "
                   f"rPC {summary['rPC_PA']:.1f} %)"), "",
              "| corruption | " + " | ".join(map(str, sev)) + " | mean |", "|---|" + "---|" * (len(sev) + 1)]
    for c, mean in summary["per_corruption"].items():
        lines.append(f"| {c} | " + " | ".join(f"{summary['cells'][f'{c}/{s}']['MPJPE']:.1f}" for s in sev)
                     + f" | {mean:.1f} |")
    names = list(summary["splits"])
    lines += ["", "Per joint MPJPE (mm):", "", "| joint | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for j in JOINTS:
        lines.append(f"| {j} | " + " | ".join(f"{summary['splits'][n]['per_joint']['MPJPE'][j]:.1f}" for n in names)
                     + " |")
    return "\n".join(lines) + "\n"


def write_summary(summary: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """``summary.json`` and ``report.md`` in ``out`` (atomic)."""
    out = Path(out)
    paths = {"json": out / "summary.json", "md": out / "report.md"}
    write_atomic(paths["json"], json.dumps(summary, indent=1).encode())
    write_atomic(paths["md"], summary_markdown(summary).encode())
    return paths
