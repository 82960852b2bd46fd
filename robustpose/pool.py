"""Process pools that a terminal's Ctrl-C stops with one line: spawned workers that never print a traceback.

A terminal's Ctrl-C goes to the whole process group. The parent stops the pool and reports the interrupt; the
workers must stay silent, including a worker that is still importing its modules when the signal arrives.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any


def deaf_to_ctrl_c() -> None:
    """A worker initializer's first step: ignore SIGINT, then unblock it.

    The process starts with SIGINT blocked (:class:`QuietSpawnContext`); ignoring it discards one that arrived while
    the worker started, so only the parent, which stops the pool, sees Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class _QuietSpawnProcess(SpawnProcess):
    """A spawned process that starts with SIGINT blocked (the signal mask survives fork and exec).

    A worker still importing its modules would otherwise die with a ``KeyboardInterrupt`` traceback of its own
    before its initializer could make it ignore the signal. The parent's own Ctrl-C is only held back while it
    forks, then delivered.
    """

    def start(self) -> None:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


class QuietSpawnContext(SpawnContext):
    """``spawn`` whose processes start with SIGINT blocked; pair it with an initializer that calls
    :func:`deaf_to_ctrl_c`."""

    Process = _QuietSpawnProcess


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold Ctrl-C back until the block is done, then deliver it (main thread only; elsewhere a no-op).

    Around ``executor.submit``: an interrupt between a worker's start and the pool's record of it would leave a
    worker the pool does not wait for; it outlives its parent and dies with a traceback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


def imap_unordered(fn: Callable[[Any], Any], tasks: Iterable[Any], workers: int,
                   initializer: Callable[[], None] = deaf_to_ctrl_c) -> Iterator[Any]:
    """``fn(task)`` for every task, in ``workers`` spawned processes, yielded in completion order.

    At most ``2 * workers`` tasks are in flight. A task's exception is raised here as it arrives; then, or when the
    caller stops iterating (Ctrl-C included), the tasks not started are dropped and the workers are joined.
    ``fn`` and ``initializer`` must be picklable (module-level); ``initializer`` must call :func:`deaf_to_ctrl_c`.
    """
    executor = ProcessPoolExecutor(workers, mp_context=QuietSpawnContext(), initializer=initializer)
    pending: set = set()
    queue = iter(tasks)

    def submit(task: Any) -> None:
        with ctrl_c_deferred():
            pending.add(executor.submit(fn, task))

    try:
        for task in queue:
            submit(task)
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                next_task = next(queue, None)
                if next_task is not None:
                    submit(next_task)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
