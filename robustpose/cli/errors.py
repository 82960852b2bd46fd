"""How every ``robustpose`` command fails: one line on stderr, a documented exit status, no traceback.

=====  ==========================================================================================================
exit   meaning
=====  ==========================================================================================================
0      done
1      bad data or state: a file that is missing, unreadable or of the wrong format, a run folder that holds
       another run, a failed check (the line names the file and what to do)
2      bad usage: a missing, malformed or contradictory option (the line names the option)
130    interrupted (Ctrl-C): finished work is kept, the same command resumes it
=====  ==========================================================================================================

Commands raise ``click.UsageError`` (exit 2) and ``click.ClickException`` (exit 1) for the mistakes they expect;
:class:`RobustposeGroup` turns anything else into one line too, and ``robustpose --debug CMD ...`` shows the
traceback instead. Ctrl-C prints one line; worker processes forked by a command ignore it and are stopped by their
parent, so no worker prints a ``KeyboardInterrupt`` traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


class Interrupted(click.ClickException):
    """Ctrl-C: one line, exit status 130."""

    exit_code = INTERRUPTED


def one_line(text: str) -> str:
    """``text`` with its line breaks folded into spaces (an error is one line in a terminal, a file or a CI log)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe_exception(exc: BaseException) -> str:
    """A one-line message for an exception no command turned into a ClickException."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, ValueError) and str(exc).strip():  # the library's errors for bad input name the input
        return one_line(str(exc))
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller --batch-size or fewer --workers"
    detail = one_line(str(exc)) or "no message"
    return f"unexpected {type(exc).__name__}: {detail} (rerun with `robustpose --debug ...` for the traceback)"


def usage_line(err: click.UsageError) -> str:
    """``Error: <what is wrong>; see 'robustpose CMD --help'`` for a usage error."""
    hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
    return f"Error: {one_line(err.format_message())}{hint}"


# Where an interrupt must wait. Python swallows an exception raised in these functions ("Exception ignored in
# ..."), so the interrupt would be lost: os.fork runs logging's _releaseLock in the parent after every fork, i.e. each
# time workers start.
_SWALLOWING = frozenset({"_releaseLock", "_acquireLock", "__del__", "_after_at_fork_child_reinit_locks"})
# And code that an exception leaves half-built: a DataLoader iterator interrupted while it starts its workers
# has no _workers_status, and its __del__ then prints a traceback of its own.
_STARTING_WORKERS = frozenset({"_MultiProcessingDataLoaderIter.__init__"})


def _must_wait(frame: Any) -> bool:
    """Whether raising KeyboardInterrupt in ``frame`` (or a caller) would be lost or leave a broken object."""
    while frame is not None:
        code = frame.f_code
        if code.co_name in _SWALLOWING or getattr(code, "co_qualname", "") in _STARTING_WORKERS:
            return True
        frame = frame.f_back
    return False


def _sigint_in_main_process_only(main_pid: int) -> Callable[[int, Any], None]:
    """A SIGINT handler raising KeyboardInterrupt in the process that installed it and doing nothing in the
    worker processes it forks (they inherit it): the parent then stops them, and no worker prints a traceback.

    A signal that lands where Python would swallow the exception (an at-fork hook, a ``__del__``) or while a
    DataLoader starts its workers (see :func:`_must_wait`) is delivered again 10 ms later instead (``_thread.interrupt_main`` from a timer thread), so Ctrl-C is never lost.
    """
    import _thread

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:
            return
        if _must_wait(frame):
            retry = threading.Timer(0.01, _thread.interrupt_main, args=(signum,))
            retry.daemon = True
            retry.start()
            return
        raise KeyboardInterrupt

    return handler


@contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Install :func:`_sigint_in_main_process_only` for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _sigint_in_main_process_only(os.getpid()))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _debug_requested(args: Sequence[str]) -> bool:
    """Whether ``--debug`` comes before the subcommand (the group's own option)."""
    for arg in args:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):
            return False
    return False


class RobustposeGroup(click.Group):
    """The ``robustpose`` group: runs a command and reports any failure as one line (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            raise Interrupted("interrupted (Ctrl-C); finished work is kept: rerun the same command to resume") \
                from None
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(describe_exception(exc)) from exc

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:  # called from another command (demo): the outer call reports
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        args = list(sys.argv[1:] if args is None else args)
        try:
            with workers_ignore_ctrl_c():
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            click.echo(usage_line(err), err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"Error: {one_line(err.format_message())}", err=True)
            sys.exit(err.exit_code)
        except (click.Abort, KeyboardInterrupt):  # Ctrl-C while click parsed the arguments
            if _debug_requested(args):
                raise
            click.echo("Error: interrupted (Ctrl-C)", err=True)
            sys.exit(INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)
