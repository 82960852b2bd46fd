"""The files ``eval`` writes (results.csv, summary.json, report.md, two plots) and its rich terminal table."""

from __future__ import annotations

import io
import math
import numbers
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rich.table import Table

from robustpose import __version__
from robustpose.corruptions import CORRUPTIONS, GROUPS, SEVERITIES, corruption_names
from robustpose.datasets.imageio import write_atomic
from robustpose.metrics.robustness import SUMMARY_GROUPS

from .layout import UNKNOWN, RunMeta, RunResult, write_json_atomic

SUMMARY_SCHEMA = "robustpose-summary-v1"
GROUP_COLOURS = {"noise": "#4C72B0", "blur": "#DD8452", "weather": "#55A868", "digital": "#C44E52",
                 "extra": "#8C8C8C"}


def group_of(corruption: str) -> str:
    """The summary group (noise, blur, weather, digital) of a corruption, or ``extra``."""
    return next((g for g in SUMMARY_GROUPS if corruption in GROUPS[g]), "extra")


def severities_run(result: RunResult) -> list[int]:
    """The severities of the benchmark cells present, ascending (what a partial run's means are over)."""
    benchmark = set(corruption_names("benchmark"))
    return sorted({s for c, s in result.cells if c in benchmark})


def groups_run(result: RunResult) -> list[str]:
    """The summary groups with at least one cell present, in SUMMARY_GROUPS order."""
    return [g for g in SUMMARY_GROUPS if any(c in GROUPS[g] for c, _ in result.cells)]


def severity_text(severities: list[int]) -> str:
    """``[1, 2, 3, 4, 5]`` -> ``'severities 1-5'``, ``[3]`` -> ``'severity 3'``, ``[1, 3]`` -> ``'severities 1,3'``."""
    if len(severities) == 1:
        return f"severity {severities[0]}"
    if severities == list(range(severities[0], severities[-1] + 1)):
        return f"severities {severities[0]}-{severities[-1]}"
    return "severities " + ",".join(map(str, severities))


def run_label(meta: RunMeta) -> str:
    """``model (method)`` as run.json records them; a run without run.json says so instead of 'unknown (unknown)'."""
    if meta.model == UNKNOWN and meta.method == UNKNOWN:
        return "unnamed run (no run.json)"
    return meta.model if meta.method == UNKNOWN else f"{meta.model} ({meta.method})"


def _ordered_cells(result: RunResult) -> list[tuple[str, int]]:
    order = list(CORRUPTIONS)
    return sorted(result.cells, key=lambda cs: (order.index(cs[0]), cs[1]))


def tidy_results(result: RunResult) -> pd.DataFrame:
    """One row per (cell, metric): ``corruption, group, severity, metric, value`` (clean = severity 0).

    ``value`` is in percent; NaN where the metric is undefined (e.g. no ground truth of medium size).
    """
    rows = [("clean", "clean", 0, m, v) for m, v in result.clean.items()]
    for c, s in _ordered_cells(result):
        rows += [(c, group_of(c), s, m, v) for m, v in result.cells[c, s].items()]
    return pd.DataFrame(rows, columns=["corruption", "group", "severity", "metric", "value"])


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def summary_dict(result: RunResult) -> dict:
    """The ``summary.json`` content: run metadata, clean metrics, mPC, rPC (%), breakdowns, completeness."""
    s = result.summary
    extras = sorted({c for c, _ in result.cells if c not in corruption_names("benchmark")}, key=list(CORRUPTIONS).index)
    return {
        "schema": SUMMARY_SCHEMA,
        "robustpose_version": __version__,
        "run": asdict(result.meta),
        "dataset": result.dataset,
        "backend": result.backend if result.dataset != "mpii" else None,
        "metric": s.metric,
        "units": "percent",
        "clean": {k: _finite(v) for k, v in result.clean.items()},
        "mPC": _finite(s.mpc),
        "rPC": _finite(s.rpc),
        "per_group": {k: _finite(v) for k, v in s.per_group.items()},
        "per_severity": {str(k): _finite(v) for k, v in s.per_severity.items()},
        "per_corruption": {k: _finite(v) for k, v in s.per_corruption.items()},
        "extra_corruptions": {c: _finite(_mean_or_nan([result.cells[c, v][s.metric] for v in SEVERITIES
                                                       if (c, v) in result.cells])) for c in extras},
        "complete": s.complete,
        "missing": list(s.missing),
    }


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return str(x) if isinstance(x, numbers.Integral) else f"{x:.1f}"  # counts and seeds stay whole


def _cell_matrix(result: RunResult) -> pd.DataFrame:
    """Headline metric, corruptions x severities, plus the per-corruption mean."""
    metric = result.summary.metric
    names = [c for c in CORRUPTIONS if any(cc == c for cc, _ in result.cells)]
    severities = sorted({s for _, s in result.cells}) or list(SEVERITIES)  # only the severities that were run
    frame = pd.DataFrame(
        [[result.cells.get((c, s), {}).get(metric, math.nan) for s in severities] for c in names],
        index=names, columns=[str(s) for s in severities])
    frame["mean"] = frame.mean(axis=1)
    return frame


def rich_table(result: RunResult) -> Table:
    """A terminal table: the headline metric per corruption and severity, then clean, mPC and rPC."""
    s = result.summary
    title = (f"{run_label(result.meta)} on {result.dataset}-C: {s.metric}, percent"
             + ("" if s.complete else f"  [INCOMPLETE: {len(s.missing)} cells missing]"))
    matrix = _cell_matrix(result)
    severities = [int(c) for c in matrix.columns if c != "mean"]
    table = Table(title=title, caption=f"numbered columns: {severity_text(severities)}; rPC = 100 x mPC / clean")
    for col in ("corruption", "group", *map(str, severities), "mean"):
        table.add_column(col, justify="left" if col in ("corruption", "group") else "right", no_wrap=True)
    for name, row in matrix.iterrows():
        table.add_row(name, group_of(name), *[_fmt(v) for v in row])
    table.add_section()
    blank = [""] * len(severities)
    table.add_row("clean", "", *blank, _fmt(s.clean), style="bold")
    table.add_row("mPC", "", *[_fmt(s.per_severity.get(v)) for v in severities], _fmt(s.mpc), style="bold")
    table.add_row("rPC (%)", "", *blank, _fmt(s.rpc), style="bold")
    return table


def markdown_table(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame`` (index first): strings as they are, whole numbers whole, other numbers to one
    decimal, missing values as a dash."""
    head = "| " + " | ".join([frame.index.name or "", *map(str, frame.columns)]) + " |"
    sep = "|" + "---|" * (len(frame.columns) + 1)
    body = ["| " + " | ".join([str(i), *[v if isinstance(v, str) else _fmt(v) for v in row]]) + " |"
            for i, row in zip(frame.index, frame.itertuples(index=False))]  # keeps each column's dtype
    return "\n".join([head, sep, *body])


def report_markdown(result: RunResult) -> str:
    """``report.md``: run, headline numbers, group and severity means, the full cell table, the plots."""
    s, m = result.summary, result.meta
    status = "complete (75 of 75 benchmark cells)" if s.complete else (
        f"**INCOMPLETE**: {len(s.missing)} of 75 benchmark cells missing ({', '.join(s.missing[:8])}"
        f"{', ...' if len(s.missing) > 8 else ''}); mPC is the mean of the cells present")
    run = pd.DataFrame({"value": ["unknown" if v is None else str(v) for v in asdict(m).values()]},
                       index=list(asdict(m)))
    run.index.name = "run"
    ran = groups_run(result)
    groups = pd.DataFrame({s.metric: [s.per_group[g] for g in ran]}, index=ran)
    groups.index.name = "group"
    severities = severities_run(result)
    sev = pd.DataFrame({s.metric: [s.per_severity[v] for v in severities]}, index=[str(v) for v in severities])
    sev.index.name = "severity"
    cells = _cell_matrix(result)
    cells.index.name = "corruption"
    clean = pd.DataFrame({"clean": list(result.clean.values())}, index=list(result.clean))
    clean.index.name = "metric"
    engine = f"COCO engine {result.backend}" if result.dataset != "mpii" else "HRNet PCKh conventions"
    return "\n\n".join([
        f"# Robustness report: {run_label(m)}, {result.dataset}",
        f"Headline metric **{s.metric}** in percent; {engine}. Status: {status}.",
        "| clean | mPC | rPC (%) |\n|---|---|---|\n" f"| {_fmt(s.clean)} | {_fmt(s.mpc)} | {_fmt(s.rpc)} |",
        _mpc_sentence(result),
        "## Run\n\n" + markdown_table(run),
        "## Per group (mean over the group's cells)\n\n" + markdown_table(groups),
        "## Per severity (mean over the benchmark corruptions)\n\n" + markdown_table(sev),
        "## Per corruption and severity\n\n" + markdown_table(cells),
        "## Clean, all metrics\n\n" + markdown_table(clean),
        "## Plots\n\n![per corruption](per_corruption.png)\n\n![per severity](per_severity.png)",
    ]) + "\n"


def _mpc_sentence(result: RunResult) -> str:
    """What mPC is a mean over, for this run: all 75 benchmark cells, or the cells that were run."""
    s = result.summary
    tail = " The 4 extra corruptions, when present, are listed but never enter mPC."
    if s.complete:
        return ("mPC = mean of the metric over the 15 benchmark corruptions x severities 1-5; rPC = 100 x mPC / "
                "clean." + tail)
    benchmark = corruption_names("benchmark")
    ran = sorted({c for c, _ in result.cells if c in benchmark}, key=benchmark.index)
    cells = sum(1 for c, _ in result.cells if c in benchmark)
    return (f"mPC = mean of the metric over the {cells} benchmark cell(s) that were run ({len(ran)} of 15 "
            f"corruptions: {', '.join(ran)}; {severity_text(severities_run(result))}), not the full benchmark; "
            "rPC = 100 x mPC / clean." + tail)


def save_png(fig: Figure, path: Path) -> None:
    """Write a matplotlib figure as a PNG (Agg), atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def plot_per_corruption(result: RunResult, path: Path) -> None:
    """Bar per corruption (mean over its severities, coloured by group) against the clean and mPC lines."""
    s = result.summary
    means = _cell_matrix(result)["mean"]
    fig = Figure(figsize=(11, 4.8))
    ax = fig.add_subplot()
    colours = [GROUP_COLOURS[group_of(c)] for c in means.index]
    ax.bar(range(len(means)), means.values, color=colours)
    ax.axhline(s.clean, color="black", lw=1.5, label=f"clean {s.clean:.1f}")
    ax.axhline(s.mpc, color="black", lw=1.2, ls="--", label=f"mPC {s.mpc:.1f}")
    ax.set_xticks(range(len(means)), [c.replace("_", " ") for c in means.index], rotation=40, ha="right")
    ax.set_ylabel(f"{s.metric} (%), mean over {severity_text(severities_run(result) or list(SEVERITIES))}")
    ax.set_xlabel("corruption")
    finite = [v for v in (s.clean, means.max()) if isinstance(v, float) and math.isfinite(v)]
    ax.set_ylim(0, max([*finite, 1.0]) * 1.25)
    present = [g for g in GROUP_COLOURS if g in {group_of(c) for c in means.index}]
    line_handles, line_labels = ax.get_legend_handles_labels()
    ax.legend(line_handles + [Patch(color=GROUP_COLOURS[g]) for g in present], line_labels + present,
              ncol=len(present) + 2, fontsize=9, loc="upper center")
    ax.set_title(f"{run_label(result.meta)}, {result.dataset}: clean vs each corruption"
                 + ("" if s.complete else " [INCOMPLETE]"))
    ax.grid(axis="y", alpha=0.3)
    save_png(fig, path)


def severity_series(result: RunResult) -> tuple[list[int], dict[str, list[float]]]:
    """The lines of the per-severity plot: x = 0 (clean) and the severities that were run; one line per group run,
    then the benchmark mean. Severities that were not run are left out, so each line connects its points."""
    s = result.summary
    severities = severities_run(result) or list(SEVERITIES)
    series = {g: [s.clean] + [_mean_or_nan([result.cells[c, v][s.metric] for c in GROUPS[g]
                                            if (c, v) in result.cells]) for v in severities]
              for g in groups_run(result)}
    series["benchmark mean"] = [s.clean, *[s.per_severity.get(v, math.nan) for v in severities]]
    return [0, *severities], series


def plot_per_severity(result: RunResult, path: Path) -> None:
    """Headline metric vs severity (0 = clean) for each corruption group and the benchmark mean."""
    s = result.summary
    fig = Figure(figsize=(7, 4.8))
    ax = fig.add_subplot()
    xs, series = severity_series(result)
    for label, ys in series.items():
        if label == "benchmark mean":
            ax.plot(xs, ys, marker="s", color="black", lw=2.5, label=label)
        else:
            ax.plot(xs, ys, marker="o", color=GROUP_COLOURS[label], label=label)
    ax.set_xticks(xs, ["clean", *map(str, xs[1:])])
    ax.set_xlabel("severity")
    ax.set_ylabel(f"{s.metric} (%)")
    ax.set_title(f"{run_label(result.meta)}, {result.dataset}: metric vs severity"
                 + ("" if s.complete else " [INCOMPLETE]"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    save_png(fig, path)


def _mean_or_nan(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def write_report(result: RunResult, out: Path) -> dict[str, Path]:
    """Write results.csv, summary.json, report.md, per_corruption.png and per_severity.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in
             ("results.csv", "summary.json", "report.md", "per_corruption.png", "per_severity.png")}
    write_atomic(paths["results.csv"], tidy_results(result).to_csv(index=False).encode())
    write_json_atomic(paths["summary.json"], summary_dict(result))
    write_atomic(paths["report.md"], report_markdown(result).encode())
    plot_per_corruption(result, paths["per_corruption.png"])
    plot_per_severity(result, paths["per_severity.png"])
    return paths
