"""Option types shared by several commands."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import click

from .lazy import module_constant

SEVERITIES: tuple[int, ...] = module_constant("robustpose.corruptions.registry", "SEVERITIES")
# The groups are computed in robustpose.corruptions.registry (importing it loads every corruption, half a second);
# tests/test_cli_startup.py checks that this help names each of its GROUPS.
CORRUPTIONS_HELP = ("Corruption or group name (benchmark, noise, blur, weather, digital, extra, all); repeat or "
                    "comma-separate, all are honoured.")


def parse_severities(text: str) -> list[int]:
    """'1-5', '2', '1,3,5' or '1-2,5' -> sorted unique severities in 1..5."""
    values: set[int] = set()
    for part in text.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"severities must look like 1-5 or 1,3,5; got {text!r}") from None
        if first > last or first not in SEVERITIES or last not in SEVERITIES:
            raise ValueError(f"severities must lie in 1..5; got {text!r}")
        values.update(range(first, last + 1))
    return sorted(values)


class SeveritiesType(click.ParamType):
    """A click type for ``--severities 1-5`` style values."""

    name = "SEVERITIES"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_severities(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def corruptions_callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """Expand a ``multiple=True`` option of corruption and group names (commas allowed) into names."""
    if ctx.resilient_parsing:  # shell completion or --help: do not load the corruptions
        return list(value)
    from robustpose.corruptions import resolve_corruptions

    try:
        return resolve_corruptions(list(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def option_group(options: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One decorator applying ``options`` (``click.option(...)`` decorators) in their listed order."""

    def apply(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


class PositiveFloat(click.FloatRange):
    """A finite float above 0 (``click.FloatRange(min=0, min_open=True)`` lets ``nan`` and ``inf`` through)."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number
