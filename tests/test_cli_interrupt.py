"""Ctrl-C as a terminal sends it (SIGINT to the whole process group, workers included) while ``eval --ckpt``'s
DataLoader workers start: one line, exit 130, no traceback from any process, and a rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robustpose.models import create_model, default_meta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TINY = {"deconv_channels": (16, 16, 16)}


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the worker processes")
def test_ctrl_c_while_workers_start_is_one_line_and_resumable(tmp_path: Path) -> None:
    torch.manual_seed(0)
    meta = default_meta("simplebaseline_res18", 17, source="robustpose", arch_kwargs=TINY, input_size=(64, 64))
    ckpt = save_checkpoint(tmp_path / "tiny.pth", create_model("simplebaseline_res18", **TINY), meta)
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "robustpose", "eval", "--ckpt", str(ckpt), "--dataset", "coco", "--ann",
            str(DATA / "coco" / "test_coco.json"), "--images", str(DATA / "coco"), "--out", str(out),
            "--corruptions", "gaussian_noise", "--severities", "1-3", "--workers", "2", "--device", "cpu", "--metric-backend", "pycocotools", "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not _children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first DataLoader workers are being started
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, stderr = proc.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 130, stderr
    assert lines == ["Error: interrupted (Ctrl-C); finished work is kept: rerun the same command to resume"], stderr
    for path in out.rglob("*.json"):  # whatever was written is whole
        json.loads(path.read_text())
    again = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (out / "clean.json").is_file() and (out / "summary.json").is_file()
