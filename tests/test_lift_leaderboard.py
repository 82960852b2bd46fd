"""Lifting rows on the leaderboard: their own protocol groups (never mixed with image rows, nor with other lifting
data), sorted by ascending mPC (an error), and `lift eval` summaries that agree with the metrics recomputed here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustpose.lift.corruptions import corrupt_keypoints
from robustpose.lift.data import resolve_data
from robustpose.lift.evaluate import evaluate_lifter, write_summary
from robustpose.lift.models import create_lifter
from robustpose.lift.synth import LiftSynthConfig, write_synth
from robustpose.report.leaderboard import build_leaderboard, leaderboard_markdown, run_row


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    torch.set_num_threads(1)
    dirs = []
    for seed, data_seed in ((0, 0), (1, 0), (2, 1)):
        data = root / f"data{data_seed}"
        if not data.exists():
            write_synth(data, LiftSynthConfig(train_subjects=1, train_frames=5, test_subjects=1, test_frames=10,
                                              seed=data_seed))
        torch.manual_seed(seed)
        lifter = create_lifter("martinez", width=16).eval()
        summary = evaluate_lifter(lifter, resolve_data(data), severities=(1, 5),
                                  run={"method": f"m{seed}", "arch": "martinez"})
        write_summary(summary, root / f"eval{seed}")
        dirs.append(root / f"eval{seed}")
    return root, dirs


def test_summary_agrees_with_metrics_recomputed_here(evals) -> None:
    root, dirs = evals
    s = json.loads((dirs[0] / "summary.json").read_text())
    torch.manual_seed(0)
    lifter = create_lifter("martinez", width=16).eval()
    test = resolve_data(root / "data0").load("test")
    gt = 1000 * (test.pose3d - test.pose3d[:, :1])
    with torch.no_grad():
        pred = 1000 * lifter(torch.as_tensor(test.pose2d)).numpy()
    assert s["splits"]["test"]["MPJPE"] == pytest.approx(np.linalg.norm(pred - gt, axis=-1).mean(), rel=1e-5)
    noisy = corrupt_keypoints(test.pose2d, "swap", 5).astype(np.float32)
    with torch.no_grad():
        pred_c = 1000 * lifter(torch.as_tensor(noisy)).numpy()
    assert s["cells"]["swap/5"]["MPJPE"] == pytest.approx(np.linalg.norm(pred_c - gt, axis=-1).mean(), rel=1e-5)
    assert s["mPC"] == pytest.approx(np.mean([c["MPJPE"] for c in s["cells"].values()]))
    assert s["rPC"] == pytest.approx(100 * s["clean"]["MPJPE"] / s["mPC"])
    assert len(s["cells"]) == 10 and set(s["splits"]) == {"test", "test-pose", "test-view", "test-body"}


def test_lifting_groups_never_mix(evals) -> None:
    _, dirs = evals
    groups = build_leaderboard(dirs, with_paper=True)
    lift = [(p, t) for p, t in groups if p["dataset"].startswith("lift: ")]
    assert len(lift) == 2  # two data files: two protocols
    for protocol, table in groups:
        is_lift = protocol["dataset"].startswith("lift: ")
        assert set(table["metric"]) == ({"MPJPE (mm)"} if is_lift else set(table["metric"]) - {"MPJPE (mm)"})
        assert (protocol["boxes"] == "none (2D keypoints in)") == is_lift  # no image protocol has these boxes
    two = next(t for _, t in lift if len(t) == 2)
    assert list(two["mPC"]) == sorted(two["mPC"])  # lower is better
    rows = {run_row(d)["method"]: run_row(d) for d in dirs}
    assert rows["m0"]["dataset"] != rows["m2"]["dataset"]
    positions = [i for i, (p, _) in enumerate(groups) if p["dataset"].startswith("lift: ")]
    published = [i for i, (_, t) in enumerate(groups) if t["source"].str.startswith("published").all()]
    assert max(positions) < min(published)
    md = leaderboard_markdown(groups)
    assert md.count("lower is better") == 2
