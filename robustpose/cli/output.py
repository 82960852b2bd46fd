"""Console output shared by the commands: messages on stderr that read well in a terminal, a file or a CI log.

In a terminal, progress is a rich bar. Elsewhere (a file, a pipe, CI) there is no bar to redraw, so progress is a
plain line every :data:`LINE_EVERY_S` seconds and one at the end, and lines are never wrapped at 80 columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

LINE_EVERY_S = 15.0  # seconds between progress lines when the output is not a terminal
_LOG_WIDTH = 200  # tables rendered for a file or a log get this many columns instead of rich's 80


def make_console(stderr: bool = True, quiet: bool = False) -> Console:
    """A rich console on stderr (messages) or stdout (tables), without mid-line wrapping when not a terminal."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, quiet=quiet)
    return Console(stderr=stderr, quiet=quiet, soft_wrap=True, width=max(probe.width, _LOG_WIDTH))


def plain(console: Console, text: str) -> None:
    """Print ``text`` as is (no markup, no highlighting): file names may contain ``[`` and ``]``."""
    console.print(text, markup=False, highlight=False)


class RateColumn(ProgressColumn):
    """Completed items per second, e.g. ``1.25 images/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        return Text(f"{task.speed or 0:.2f} {self.unit}/s", style="progress.data.speed")


class LineProgress:
    """Progress as periodic plain lines, ``LABEL: 12/75 (16%), 3.1 UNIT/s, 0:00:04 elapsed``, for non-terminals.

    :meth:`update` prints at most one line per ``every_s`` seconds; :meth:`done` prints the final one.
    """

    def __init__(self, console: Console, label: str, unit: str, total: int | None = None,
                 every_s: float = LINE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.label, self.unit, self.total = console, label, unit, total
        self.every_s, self.clock = every_s, clock
        self.start = self.last = clock()
        self.completed = 0
        self.shown = -1  # the count of the last line printed

    def line(self, note: str = "") -> str:
        if self.total == 0:
            return f"{self.label}: nothing to do (all finished earlier)"
        elapsed = self.clock() - self.start
        count = f"{self.completed}/{self.total}" if self.total else str(self.completed)
        share = f" ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        rate = self.completed / elapsed if elapsed > 0 else 0.0
        minutes, seconds = divmod(int(elapsed), 60)
        tail = f", {note}" if note else ""
        return (f"{self.label}: {count}{share}, {rate:.2f} {self.unit}/s, "
                f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d} elapsed{tail}")

    def update(self, advance: int = 1, note: str = "") -> None:
        self.completed += advance
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last, self.shown = now, self.completed
            plain(self.console, self.line(note))

    def done(self, note: str = "") -> None:
        """The final line, unless the last periodic line already said the same count."""
        if self.completed != self.shown:
            plain(self.console, self.line(note))


def progress_wrapper(console: Console, label: str, unit: str, quiet: bool = False
                     ) -> Callable[[Iterable[Any], int], Iterator[Any]]:
    """A ``progress(items, total)`` wrapper for the library: a rich bar in a terminal, periodic lines elsewhere,
    nothing with ``quiet``."""

    def wrap(items: Iterable[Any], total: int) -> Iterator[Any]:
        if quiet:
            yield from items
            return
        if not console.is_terminal:
            lines = LineProgress(console, label, unit, total)
            for item in items:
                yield item
                lines.update()
            lines.done()
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                   TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(label, total=total)
            for item in items:
                bar.advance(task)
                yield item

    return wrap
