"""``--help`` starts fast: no command imports torch, hotcoco, scipy, matplotlib, pandas, numpy or OpenCV for it;
the constants read from source instead of imported (robustpose/cli/lazy.py) equal the imported ones.

The timing itself is ``benchmarks/cli_startup.py`` (wall time depends on the machine's load; imports do not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _benchmark_commands() -> tuple[list[str], ...]:
    """The commands ``benchmarks/cli_startup.py`` times (the benchmark and this test cover the same ones)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_startup", ROOT / "benchmarks" / "cli_startup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.COMMANDS


COMMANDS = _benchmark_commands()
HEAVY = ("torch", "hotcoco", "scipy", "matplotlib", "pandas", "numpy", "cv2", "numba", "pycocotools")


def test_help_of_every_command_imports_nothing_heavy() -> None:
    code = f"""
import json, sys
from robustpose.cli.main import cli
loaded = {{}}
for command in {[list(c) for c in COMMANDS]!r}:
    assert cli.main([*command, "--help"], prog_name="robustpose", standalone_mode=False) == 0
    loaded[" ".join(command)] = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))
print(json.dumps(loaded))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {" ".join(c): [] for c in COMMANDS}


@pytest.mark.parametrize("module, name", [
    ("robustpose.inference.decode", "DECODERS"),
    ("robustpose.train.config", "PRESETS"),
    ("robustpose.train.config", "DATASETS"),
    ("robustpose.train.advmix.mixers", "MIXERS"),
    ("robustpose.train.advmix.method", "KD_INPUTS"),
    ("robustpose.train.advmix.method", "LOSSES"),
    ("robustpose.lift.models", "LIFTER_NAMES"),
    ("robustpose.lift.poseaug", "FEEDBACKS"),
    ("robustpose.lift.poseaug", "RT_TRANSLATIONS"),
    ("robustpose.metrics.coco", "BACKENDS"),
    ("robustpose.metrics.coco", "DEFAULT_BACKEND"),
    ("robustpose.report.layout", "DATASETS"),
    ("robustpose.datasets.build_c", "LAYOUTS"),
    ("robustpose.datasets.imageio", "FORMATS"),
    ("robustpose.datasets.imageio", "DEFAULT_JPEG_QUALITY"),
    ("robustpose.corruptions.registry", "SEVERITIES"),
    ("robustpose.datasets.synthpose", "SynthConfig.max_people"),
])
def test_constants_read_from_source_equal_the_imported_ones(module: str, name: str) -> None:
    import importlib

    from robustpose.cli.lazy import _literal_from_source

    value = importlib.import_module(module)
    for part in name.split("."):
        value = getattr(value, part)
    assert _literal_from_source(module, name) == value


def test_module_constant_refuses_what_is_not_a_literal() -> None:
    from robustpose.cli.lazy import _literal_from_source

    with pytest.raises(ValueError):  # GROUPS is computed from the registry: ast.literal_eval refuses it
        _literal_from_source("robustpose.corruptions.registry", "GROUPS")
    with pytest.raises(LookupError, match="NO_SUCH_NAME"):
        _literal_from_source("robustpose.corruptions.registry", "NO_SUCH_NAME")


def test_corruption_option_help_names_every_group() -> None:
    from robustpose.cli.options import CORRUPTIONS_HELP
    from robustpose.corruptions import GROUPS

    for group in GROUPS:
        assert group in CORRUPTIONS_HELP


def test_benchmark_lists_every_command() -> None:
    from robustpose.cli.main import cli

    names = {c[0] for c in COMMANDS if c}
    assert names == set(cli.commands)
    assert {c[1] for c in COMMANDS if c[:1] == ["train"] and len(c) > 1} == set(cli.commands["train"].commands)
