"""Start-up time of ``robustpose --help`` and of every subcommand's ``--help``, against an eager-import baseline.

Each measurement is a fresh ``python -m robustpose ... --help`` process (the median wall time of ``--repeats``
runs), which is what a user waits for. The baseline is today's start-up as it was before the command modules
imported their heavy dependencies lazily (issue 16): the same ``--help``, run after importing everything the old
``robustpose.cli.main`` imported at start-up (torch, the models, the trainer and AdvMix, the corruptions with
scipy and numba, the metrics with hotcoco, the report code with pandas and matplotlib). Both are timed in the same
run, on the same machine, so the ratio holds even on a busy one; the absolute times do not.

Usage::

    python benchmarks/cli_startup.py               # 5 runs each
    python benchmarks/cli_startup.py --repeats 3 --limit 1.0   # exit 1 if any --help takes over 1 s
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = ([], ["corrupt"], ["build-c"], ["verify-c"], ["synth"], ["eval"], ["leaderboard"], ["train"],
            ["train", "standard"], ["train", "advmix"], ["train", "peng-agent"], ["train", "peng"], ["train", "asda"],
            ["parts"], ["parts", "build"], ["parts", "synth"], ["demo"], ["lift"], ["lift", "synth"],
            ["lift", "train", "standard"], ["lift", "train", "poseaug"], ["lift", "eval"])

# What robustpose.cli.main imported at start-up before issue 16 (each command module imported its library eagerly).
EAGER_IMPORTS = ("torch", "robustpose.models", "robustpose.inference", "robustpose.inference.evaluate",
                 "robustpose.train", "robustpose.train.advmix", "robustpose.corruptions", "robustpose.metrics",
                 "robustpose.report", "robustpose.report.render", "robustpose.report.leaderboard",
                 "robustpose.report.grid", "robustpose.datasets.build_c", "robustpose.datasets.verify_c")


def _time(argv: list[str], repeats: int) -> float:
    """Median wall time in seconds of running ``argv`` ``repeats`` times (output discarded, exit 0 required)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def help_argv(command: list[str]) -> list[str]:
    return [sys.executable, "-m", "robustpose", *command, "--help"]


def eager_argv(command: list[str]) -> list[str]:
    """The same ``--help`` after the eager imports (the baseline)."""
    code = (f"import {', '.join(EAGER_IMPORTS)}; from robustpose.cli.main import cli; "
            f"cli({[*command, '--help']!r}, prog_name='robustpose')")
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (the median is shown)")
    parser.add_argument("--limit", type=float, default=None, help="exit 1 when any --help is slower (seconds)")
    args = parser.parse_args()
    baseline = _time(eager_argv([]), args.repeats)
    print(f"baseline: `robustpose --help` after the eager imports of the old start-up: {baseline:.3f} s "
          f"(median of {args.repeats})")
    print(f"{'command':<36}{'--help (s)':>12}{'baseline / now':>16}")
    worst = 0.0
    for command in COMMANDS:
        seconds = _time(help_argv(command), args.repeats)
        worst = max(worst, seconds)
        label = "robustpose " + " ".join([*command, "--help"])
        print(f"{label:<36}{seconds:>12.3f}{baseline / seconds:>15.1f}x")
    if args.limit is not None and worst > args.limit:
        print(f"slowest --help took {worst:.3f} s, over the limit of {args.limit} s")
        sys.exit(1)


if __name__ == "__main__":
    main()
