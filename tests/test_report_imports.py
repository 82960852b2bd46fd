"""The report package's modules import each other one way only (no cycle, not even through a lazy import)."""

import ast
from pathlib import Path

import robustpose.report

PACKAGE = Path(robustpose.report.__file__).parent


def test_report_imports_form_no_cycle():
    graph = {f.stem: {n.module.split(".")[0] for n in ast.walk(ast.parse(f.read_text()))
                      if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
             for f in PACKAGE.glob("*.py")}
    assert graph["evaluate"] >= {"render"} and graph["html"] >= {"leaderboard"}  # the graph is really read

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    cycles = sorted(m for m in graph if reaches(m, m))
    assert cycles == []
