"""Leaderboards: runs (``eval`` output folders) side by side, one table per protocol, optionally with the papers.

A protocol is (dataset, boxes, corruption set, seeding, flip test); runs that differ in any of them go to separate
tables. ``robustpose lift eval`` folders (3D lifting, MPJPE in mm, lower is better) form lifting protocol groups of
their own (their dataset and boxes fields cannot match an image run's) and sort by ascending mPC. The published rows (AdvMix, CVPR 2021; bundled ``robustpose/data/published_results.csv``) carry their own
protocol, so they form their own tables, labelled ``published``.
"""

from __future__ import annotations

import io
import json
import math
import textwrap
from importlib import resources
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.datasets.imageio import write_atomic
from robustpose.lift.summary import LIFT_METRIC, LIFT_SUMMARY_SCHEMA, lift_row
from robustpose.metrics.robustness import SUMMARY_GROUPS, summarize_robustness

from .layout import PROTOCOL_FIELDS
from .render import SUMMARY_SCHEMA, save_png

COLUMNS = ["source", "model", "method", "select", "input_size", "metric", "clean", "mPC", "rPC", *SUMMARY_GROUPS,
           "complete"]
# The AdvMix code keeps model_best by the clean validation metric (trainers.md 1.1); the published tables say no more.
PAPER_SELECT = "clean (paper)"

# The AdvMix evaluation protocol (protocols.md section 3) for its COCO-C and MPII-C tables.
PAPER_PROTOCOLS = {
    "COCO-C": {"dataset": "coco", "boxes": "HRNet detections AP_H_56 (clean images)",
               "corruption_set": "imagecorruptions-1.1.2 benchmark, JPEG q75",
               "seeding": "advmix np.random.seed(1) per image", "flip_test": True},
    "MPII-C": {"dataset": "mpii", "boxes": "gt center/scale",
               "corruption_set": "imagecorruptions-1.1.2 benchmark, JPEG q75",
               "seeding": "advmix np.random.seed(1) per image", "flip_test": True},
}
PAPER_CLEAN_METRIC = {"COCO-C": "AP", "MPII-C": "PCKh@0.5_mean"}


def published_results_csv() -> Path:
    """Path of the bundled copy of ``published_results.csv``."""
    return Path(str(resources.files("robustpose") / "data" / "published_results.csv"))


def _split_method(label: str) -> tuple[str, str]:
    """``'HRNet + AdvMix'`` -> (HRNet, AdvMix); ``'SBL (Standard)'`` -> (SBL, Standard)."""
    if " + " in label:
        arch, method = label.split(" + ", 1)
        return arch, method
    arch, _, method = label.partition(" (")
    return arch, method.rstrip(")") or "Standard"


def _model_label(arch: str, backbone: str) -> str:
    """``HRNet`` + ``HRNet-W32`` -> ``HRNet-W32`` (the family once); ``SBL`` + ``ResNet-50`` -> ``SBL ResNet-50``."""
    return backbone if backbone.lower().startswith(arch.lower()) else f"{arch} {backbone}"


def published_rows(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One leaderboard row per published (dataset, method, backbone, input size) with an mPC.

    The first table that reports a configuration wins (Table 1 has the per-corruption columns, hence the group
    means). mPC and rPC are the printed values; group means come from the printed per-corruption means.
    """
    table = pd.read_csv(published_results_csv()) if table is None else table
    keys = ["dataset", "method", "backbone", "input_size"]
    rows = []
    for key, g in table[table["dataset"].isin(list(PAPER_PROTOCOLS))].groupby(keys, sort=False):
        dataset = key[0]
        mpc_rows = g[g["metric"] == "mPC"]
        if mpc_rows.empty:
            continue
        source = mpc_rows["table"].iloc[0]
        g = g[g["table"] == source]
        value = dict(zip(zip(g["metric"], g["corruption"]), g["value"]))
        clean_metric = PAPER_CLEAN_METRIC[dataset]
        per_corr = {(c, s): value[clean_metric, c] for c in corruption_names("benchmark") for s in SEVERITIES
                    if (clean_metric, c) in value}
        groups = (summarize_robustness(value[clean_metric, "clean"], per_corr).per_group
                  if len(per_corr) == 75 else dict.fromkeys(SUMMARY_GROUPS, float("nan")))
        arch, method = _split_method(key[1])
        protocol = dict(PAPER_PROTOCOLS[dataset])
        if arch == "HigherHRNet":  # bottom-up: no person boxes, a protocol of its own
            protocol["boxes"] = "none (bottom-up)"
        rows.append({
            "source": f"published: AdvMix (CVPR 2021) {source.split(' (')[0]}",
            "model": _model_label(arch, key[2]), "method": method, "select": PAPER_SELECT, "input_size": key[3],
            "metric": clean_metric,
            "clean": value[clean_metric, "clean"], "mPC": value["mPC", "benchmark15"],
            "rPC": value["rPC", "benchmark15"], **groups, "complete": True, **protocol,
        })
    return pd.DataFrame(rows, columns=COLUMNS + list(PROTOCOL_FIELDS))


def run_row(run_dir: str | Path) -> dict:
    """The leaderboard row of one ``eval`` output folder (its ``summary.json``)."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"{path} not found: a leaderboard RUN_DIR is an `robustpose eval --out` folder")
    try:
        s = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}); rerun `robustpose eval` into {run_dir}") from err
    if isinstance(s, dict) and s.get("schema") == LIFT_SUMMARY_SCHEMA:
        try:
            return lift_row(s, str(run_dir))
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path} lacks {err} of a {LIFT_SUMMARY_SCHEMA} summary; rerun `robustpose lift eval` "
                             f"into {run_dir}") from err
    if not isinstance(s, dict) or s.get("schema") != SUMMARY_SCHEMA:
        schema = s.get("schema") if isinstance(s, dict) else None
        raise ValueError(f"{path}: schema {schema!r} is not {SUMMARY_SCHEMA!r}; a leaderboard RUN_DIR is an "
                         "`robustpose eval --out` folder")
    try:
        run = s["run"]
        return {
            "source": str(run_dir), "model": run["model"], "method": run["method"],
            "select": run.get("select", "unknown"),  # summaries written before --select existed lack it
            "input_size": run["input_size"],
            "metric": s["metric"], "clean": s["clean"][s["metric"]], "mPC": s["mPC"], "rPC": s["rPC"],
            **{g: s["per_group"].get(g) for g in SUMMARY_GROUPS}, "complete": s["complete"],
            **{k: run[k] for k in PROTOCOL_FIELDS},
        }
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} lacks {err} of a {SUMMARY_SCHEMA} summary; rerun `robustpose eval` into "
                         f"{run_dir}") from err


def flip_test_label(value: object) -> str:
    """``True``/``False`` as on/off; a run without run.json (None or NaN) is 'unknown', never 'nan'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return "on" if value else "off"


def build_leaderboard(run_dirs: list[str | Path], with_paper: bool = False) -> list[tuple[dict, pd.DataFrame]]:
    """Rows grouped by protocol: a list of ``(protocol, table)``, each table sorted by mPC (best first).

    Protocol groups appear in order of their best mPC among runs; lifting groups (lower is better, sorted by
    ascending mPC) follow the image groups, published-only groups come last.
    """
    frame = pd.DataFrame([run_row(d) for d in run_dirs], columns=COLUMNS + list(PROTOCOL_FIELDS))
    if with_paper:
        frame = pd.concat([frame, published_rows()], ignore_index=True) if len(frame) else published_rows()
    frame["flip_test"] = frame["flip_test"].astype(object).where(frame["flip_test"].notna(), None)
    groups = []
    for key, g in frame.groupby(list(PROTOCOL_FIELDS), sort=False, dropna=False):
        protocol = dict(zip(PROTOCOL_FIELDS, key))
        lower = lower_is_better(g)
        groups.append((protocol, g.sort_values("mPC", ascending=lower)[COLUMNS].reset_index(drop=True)))
    groups.sort(key=lambda pg: (pg[1]["source"].str.startswith("published").all(), lower_is_better(pg[1]),
                                pg[1]["mPC"].min() if lower_is_better(pg[1]) else -pg[1]["mPC"].max()))
    return groups


def lower_is_better(table: pd.DataFrame) -> bool:
    """True for a lifting table (its metric is an error, MPJPE in mm)."""
    return bool(len(table)) and table["metric"].iloc[0] == LIFT_METRIC


def protocol_label(protocol: dict) -> str:
    """``dataset = coco; boxes = gt; ...``: the protocol's fields as one line."""
    return "; ".join(f"{k} = {flip_test_label(protocol[k]) if k == 'flip_test' else protocol[k]}"
                     for k in PROTOCOL_FIELDS)


def percent_text(value: float | None) -> str:
    """A leaderboard value for a table: one decimal, ``–`` where it is undefined (rPC of a run scoring 0 clean)."""
    return "–" if value is None or pd.isna(value) else f"{value:.1f}"


def leaderboard_markdown(groups: list[tuple[dict, pd.DataFrame]]) -> str:
    """One Markdown section per protocol (values in percent; rPC = 100 x mPC / clean)."""
    parts = ["# Leaderboard", "Sorted by mPC. Runs with different protocols are never mixed; values in percent, "
             "rPC = 100 x mPC / clean. Group columns are means over the group's corruption cells."]
    for i, (protocol, table) in enumerate(groups, 1):
        shown = table.copy()
        for col in ["clean", "mPC", "rPC", *SUMMARY_GROUPS]:
            shown[col] = shown[col].map(percent_text)
        head = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns)
        body = "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False))
        note = ("\n\nLifting: MPJPE in mm, lower is better, sorted by ascending mPC; rPC = 100 x clean / mPC."
                if lower_is_better(table) else "")
        parts.append(f"## Protocol {i}\n\n{protocol_label(protocol)}{note}\n\n{head}\n{body}")
    return "\n\n".join(parts) + "\n"


def leaderboard_csv(groups: list[tuple[dict, pd.DataFrame]]) -> str:
    """All rows as CSV, with a ``protocol`` number and the protocol fields (rows of one table share them)."""
    frames = [t.assign(protocol=i, **{k: [p[k]] * len(t) for k in PROTOCOL_FIELDS})
              for i, (p, t) in enumerate(groups, 1)]
    buffer = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buffer, index=False)
    return buffer.getvalue()


def plot_leaderboard(groups: list[tuple[dict, pd.DataFrame]]) -> Figure:
    """Horizontal bars of clean and mPC per row, one panel per protocol."""
    heights = [max(len(t), 1) * 0.42 + 1.2 for _, t in groups]
    fig = Figure(figsize=(10, sum(heights)))
    axes = fig.subplots(len(groups), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for i, (ax, (protocol, table)) in enumerate(zip(axes, groups), 1):
        labels = [f"{r.model} {r.method} {r.input_size}" + (" [paper]" if r.source.startswith("published") else "")
                  + ("" if r.complete else " [incomplete]") for r in table.itertuples()]
        ys = range(len(table))[::-1]
        ax.barh([y + 0.2 for y in ys], table["clean"], height=0.4, color="#B0B0B0", label="clean")
        ax.barh([y - 0.2 for y in ys], table["mPC"], height=0.4, color="#4C72B0", label="mPC")
        ax.set_yticks(list(ys), labels, fontsize=8)
        metric = table["metric"].iloc[0]
        ax.set_xlabel(metric if lower_is_better(table) else f"{metric} (%)")
        ax.set_title(textwrap.fill(f"Protocol {i}: {protocol['dataset']}, boxes {protocol['boxes']}, seeding "
                                   f"{protocol['seeding']}, flip test {flip_test_label(protocol['flip_test'])}", 90), fontsize=9)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def write_leaderboard(groups: list[tuple[dict, pd.DataFrame]], out: str | Path) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``leaderboard.md`` and ``leaderboard.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"leaderboard.{k}" for k in ("csv", "md", "png")}
    write_atomic(paths["csv"], leaderboard_csv(groups).encode())
    write_atomic(paths["md"], leaderboard_markdown(groups).encode())
    save_png(plot_leaderboard(groups), paths["png"])
    return paths
