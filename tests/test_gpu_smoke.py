"""``benchmarks/gpu_smoke.sh`` in its CPU mode: every trainer runs and reports, so the script cannot rot."""

import os
import re
import subprocess
import sys
from pathlib import Path

from robustpose.train import METHODS

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_smoke_runs_every_trainer_and_eval(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_smoke.sh"), "--steps", "2", "--work", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = dict(re.findall(r"^\| (\S+) \| (\d+) \| [\d.]+ \| \d+ \|$", out.stdout, flags=re.MULTILINE))
    assert set(rows) == set(METHODS), f"every trainer needs a benchmarks/gpu_smoke.py SMOKE entry: {out.stdout}"
    assert all(int(n) >= 1 for n in rows.values())
    assert re.search(r"^eval --ckpt: 4 images x 2 cells .* in [\d.]+ s", out.stdout, flags=re.MULTILINE)
    assert (tmp_path / "eval" / "clean.json").exists()
