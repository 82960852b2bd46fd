"""The lifting evaluation's ``summary.json`` schema and its leaderboard row (no torch: the leaderboard reads it).

Lifting rows form their own protocol groups: their ``dataset`` names the lifting data files (with a content hash) and
their ``boxes`` field says the input is 2D keypoints, so they can never share a table with image rows.
"""

from __future__ import annotations

from typing import Any

LIFT_SUMMARY_SCHEMA = "robustpose-lift-summary-v1"
LIFT_METRIC = "MPJPE (mm)"
LIFT_BOXES = "none (2D keypoints in)"
LIFT_CORRUPTION_SET = "robustpose keypoint corruptions v1 (5 x 5)"


def lift_protocol(summary: dict[str, Any]) -> dict[str, Any]:
    """The leaderboard protocol fields of a lifting summary."""
    run = summary["run"]
    return {"dataset": f"lift: {run['dataset']} [{run['corruption_split']}]", "boxes": LIFT_BOXES,
            "corruption_set": LIFT_CORRUPTION_SET, "seeding": f"per sample, seed {run['seed']}", "flip_test": False}


def lift_row(summary: dict[str, Any], source: str) -> dict[str, Any]:
    """A leaderboard row (``robustpose.report.leaderboard.COLUMNS`` + protocol) of a lifting ``summary.json``;
    ``KeyError`` / ``TypeError`` when fields are missing."""
    run = summary["run"]
    return {"source": source, "model": run["arch"], "method": run["method"], "select": run.get("select", "unknown"),
            "input_size": "16 x 2D",
            "metric": LIFT_METRIC, "clean": summary["clean"]["MPJPE"], "mPC": summary["mPC"], "rPC": summary["rPC"],
            "noise": None, "blur": None, "weather": None, "digital": None, "complete": True,
            **lift_protocol(summary)}
