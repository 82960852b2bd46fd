"""Constants of heavy modules, read without importing them, so that ``--help`` does not load torch.

The option choices of several commands live in modules that import torch, scipy or matplotlib (the decoder names in
:mod:`robustpose.inference.decode`, AdvMix's mixers, the training presets). Importing them costs seconds, which
``robustpose --help`` must not pay. :func:`module_constant` reads such a constant from the module's source when the
module is not imported yet: the module stays the one place the value is defined, and
``tests/test_cli_startup.py`` checks that every value read this way equals the imported one.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the robustpose package folder


def _module_file(module: str) -> Path:
    """The source file of a ``robustpose.*`` module, found without importing its parent packages."""
    head, _, rest = module.partition(".")
    if head != "robustpose" or not rest:
        raise ValueError(f"module_constant reads robustpose submodules only, not {module!r}")
    base = _PACKAGE_ROOT.joinpath(*rest.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


@cache
def _literal_from_source(module: str, name: str) -> Any:
    tree = ast.parse(_module_file(module).read_text(encoding="utf-8"))
    body = tree.body
    owner, _, name = name.rpartition(".")
    if owner:  # a class attribute, e.g. SynthConfig.max_people (a dataclass field's default)
        body = next((n.body for n in body if isinstance(n, ast.ClassDef) and n.name == owner), [])
    for node in body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return ast.literal_eval(node.value)
    raise LookupError(f"{module} assigns no literal constant {owner + '.' if owner else ''}{name}")


def module_constant(module: str, name: str) -> Any:
    """``module.name`` for a top-level constant assigned a literal (tuple, dict, str, number); ``name`` may be
    ``Class.attribute`` for a class attribute (e.g. a dataclass field's literal default).

    Returns the attribute itself when ``module`` is already imported; otherwise evaluates the literal from the
    module's source (no import). Raises ``LookupError`` when the module assigns no such literal.
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        value: Any = loaded
        for part in name.split("."):
            value = getattr(value, part)
        return value
    return _literal_from_source(module, name)
