"""Mutation testing of one core module at a time with mutmut 3 (``docs/testing.md``).

Usage (from the repository root; the sample data must sit in ``../shared`` as for the test suite)::

    pip install "mutmut>=3.8,<4"                     # or: pip install -e ".[dev]"
    python tools/mutation.py --list                  # the modules and the tests that guard each
    python tools/mutation.py robustpose/datasets/seeding.py
    python tools/mutation.py seeding decode          # several, one after another (short names work)
    python tools/mutation.py coco --survivors        # also print the diff of every surviving mutant

Each module runs in its own scratch folder (``.mutation/<module>/``, ignored by git): a copy of ``robustpose/``,
``tests/`` and a ``pyproject.toml`` whose ``[tool.mutmut]`` mutates that one module and runs only the tests listed
for it in :data:`MODULES`. mutmut runs there with ``--jobs`` workers (default 1: the machines are shared) and
forkserver isolation (the tests import torch, which is not fork-safe after its thread pools start). The scratch
folder is kept, so ``cd .mutation/<name> && mutmut show <mutant>`` works afterwards; ``--fresh`` rebuilds it.

The summary (killed / survived / timeout / other per module) is printed and appended as JSON lines to
``.mutation/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".mutation"

# module -> the test files that are meant to catch its mutants (kept short: every mutant runs them)
MODULES: dict[str, list[str]] = {
    "robustpose/datasets/seeding.py": ["tests/test_seeding.py"],
    "robustpose/metrics/coco.py": ["tests/test_metrics_coco.py", "tests/test_metrics_ochuman.py",
                                   "tests/test_metrics_coco_pinned.py", "tests/test_metrics_coco_files.py"],
    "robustpose/metrics/robustness.py": ["tests/test_robustness.py", "tests/test_robustness_pinned.py"],
    "robustpose/metrics/mpii.py": ["tests/test_metrics_mpii.py", "tests/test_metrics_mpii_pinned.py"],
    "robustpose/metrics/postprocess.py": ["tests/test_oks_nms.py"],
    "robustpose/inference/decode.py": ["tests/test_inference_units.py", "tests/test_dark_decoder.py",
                                       "tests/test_decode_pinned.py", "tests/test_flip_tables.py"],
    "robustpose/inference/transforms.py": ["tests/test_inference_units.py"],
    "robustpose/datasets/keypoints.py": ["tests/test_flip_tables.py"],
    "robustpose/models/checkpoint.py": ["tests/test_checkpoint.py", "tests/test_checkpoint_pth.py"],
    "robustpose/augment/gridmask.py": ["tests/test_advmix_augment.py", "tests/test_augment_tables.py"],
    "robustpose/augment/autoaugment.py": ["tests/test_advmix_augment.py", "tests/test_augment_tables.py"],
    "robustpose/augment/ops.py": ["tests/test_advmix_augment.py", "tests/test_augment_tables.py"],
    "robustpose/corruptions/noise.py": ["tests/test_corruptions_fidelity.py", "tests/test_corruptions_input.py"],
    "robustpose/train/advmix/method.py": ["tests/test_advmix_method.py", "tests/test_advmix_step.py",
                                          "tests/test_advmix_method_pinned.py", "tests/test_advmix_equivalence.py"],
}


def resolve(name: str) -> str:
    """A module path from a full path or a unique suffix / stem (``coco``, ``advmix/method``)."""
    if name in MODULES:
        return name
    hits = [m for m in MODULES if m.endswith((f"/{name}", f"/{name}.py")) or Path(m).stem == name]
    if len(hits) != 1:
        raise SystemExit(f"{name!r} names {len(hits)} modules; choose one of:\n  " + "\n  ".join(MODULES))
    return hits[0]


def shared_dir() -> Path:
    """The ``shared`` folder the tests read (``../shared`` beside the checkout)."""
    return ROOT.parent / "shared"


def prepare(module: str, fresh: bool) -> Path:
    """The scratch folder for ``module``, with its mutmut configuration."""
    work = SCRATCH / module.replace("/", "__").removesuffix(".py")
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for sub in ("robustpose", "tests"):
        if (work / sub).exists():
            shutil.rmtree(work / sub)
        shutil.copytree(ROOT / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # mutmut runs the tests from <work>/mutants/tests: conftest looks for the data two levels up, in <work>/shared
    link = work / "shared"
    if not link.exists():
        link.symlink_to(shared_dir())
    tests = json.dumps(MODULES[module])
    (work / "pyproject.toml").write_text(f"""[tool.mutmut]
source_paths = ["robustpose"]
only_mutate = ["{module}"]
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-x"]
pytest_add_cli_args_test_selection = {tests}
process_isolation = "forkserver"
use_git_change_detection = false
timeout_multiplier = 10.0
timeout_constant = 5.0

[tool.pytest.ini_options]
markers = ["slow: long-running test"]
""")
    return work


def count(results: str) -> dict[str, int]:
    """Counts per status from ``mutmut results --all true`` (lines ``name: status``)."""
    out: dict[str, int] = {}
    for line in results.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m and "__mutmut_" in m.group(1):
            out[m.group(2).strip()] = out.get(m.group(2).strip(), 0) + 1
    return out


def run(module: str, fresh: bool, survivors: bool, limit: int, jobs: int = 1) -> dict:
    work = prepare(module, fresh)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # mutmut puts <work>/mutants first; an outside checkout must not shadow it
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    mutmut = [sys.executable, "-m", "mutmut"]
    start = time.monotonic()
    try:
        with open(work / "mutmut-run.log", "w") as log:  # mutmut draws a progress line per mutant: keep it out
            subprocess.run([*mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env, check=False, timeout=limit,
                           stdout=log, stderr=subprocess.STDOUT)
    except subprocess.TimeoutExpired:
        print(f"{module}: stopped after {limit} s; the counts below are partial", file=sys.stderr)
    elapsed = time.monotonic() - start
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                             text=True, check=False).stdout
    counts = count(listing)
    total = sum(counts.values())
    killed = counts.get("killed", 0)
    summary = {"module": module, "total": total, "killed": killed, "counts": counts,
               "seconds": round(elapsed), "tests": MODULES[module],
               "survived": [line.split(":")[0].strip() for line in listing.splitlines()
                            if line.strip().endswith(": survived")]}
    print(f"{module}: {killed} / {total} killed  {counts}  ({elapsed:.0f} s)")
    if survivors:
        for name in summary["survived"]:
            print(subprocess.run([*mutmut, "show", name], cwd=work, env=env, capture_output=True, text=True,
                                 check=False).stdout)
    with open(SCRATCH / "results.jsonl", "a") as fh:
        fh.write(json.dumps(summary) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths or short names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--fresh", action="store_true", help="rebuild the scratch folder (forget old results)")
    parser.add_argument("--survivors", action="store_true", help="print the diff of each surviving mutant")
    parser.add_argument("--limit", type=int, default=3600, help="seconds per module before giving up")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (mutmut --max-children)")
    args = parser.parse_args(argv)
    if args.list or not args.modules:
        for module, tests in MODULES.items():
            print(f"{module}: {' '.join(tests)}")
        return 0
    if not (shared_dir() / "data").is_dir():
        print(f"note: {shared_dir() / 'data'} not found; tests that need the sample data will skip", file=sys.stderr)
    for name in args.modules:
        run(resolve(name), args.fresh, args.survivors, args.limit, args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
