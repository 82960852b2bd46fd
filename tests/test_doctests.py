"""Docstring examples run under pytest (``--doctest-modules``, ``testpaths`` in pyproject.toml), and importing
every module of the package, as doctest collection does, has no side effects."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import sys
from pathlib import Path

import pytest

import robustpose
from robustpose.datasets import seeding

ROOT = Path(__file__).resolve().parents[1]


def test_pytest_collects_the_package_doctests():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in config["addopts"]
    assert "robustpose" in config["testpaths"] and "tests" in config["testpaths"]


def test_seeding_example_is_a_doctest_that_passes():
    result = doctest.testmod(seeding, verbose=False)
    assert result.attempted >= 1 and result.failed == 0


def test_every_module_imports_quietly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [m.name for m in pkgutil.walk_packages(robustpose.__path__, "robustpose.")
             if not m.name.endswith("__main__")]
    assert len(names) > 50
    argv = list(sys.argv)
    for name in names:
        importlib.import_module(name)
    assert sys.argv == argv
    assert os.listdir(tmp_path) == []  # nothing written where the tests run
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
