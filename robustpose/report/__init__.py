"""Robustness reports: score a predictions directory (:func:`evaluate_run`), render it, and build leaderboards.

See ``docs/report.md`` and ``docs/metrics.md``.
"""

from .evaluate import evaluate_run
from .layout import RunMeta, RunResult, discover_cells, read_run_meta, write_run_meta

__all__ = ["RunMeta", "RunResult", "discover_cells", "evaluate_run", "read_run_meta", "write_run_meta"]
