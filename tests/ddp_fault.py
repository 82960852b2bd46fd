"""The ``robustpose`` command with one torchrun rank killed by SIGKILL (as the kernel's OOM killer does) just before
its ``STEP``-th training step, counted from 0 over the run; ``tests/test_multiprocess.py`` launches it::

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_fault.py RANK STEP train standard ...
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    kill_rank, kill_step = int(argv[0]), int(argv[1])
    from robustpose.cli.main import cli
    from robustpose.train import engine

    to_device, calls = engine.to_device, {"n": 0}

    def dying_to_device(*args, **kwargs):  # the engine calls it once per step, just before the method's step
        if int(os.environ["RANK"]) == kill_rank and calls["n"] == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        calls["n"] += 1
        return to_device(*args, **kwargs)

    engine.to_device = dying_to_device
    cli(args=argv[2:], prog_name="robustpose")


if __name__ == "__main__":
    main(sys.argv[1:])
