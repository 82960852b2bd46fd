"""Training with DataLoader worker processes in a process that has used OpenCV's thread pool before.

A forked loader worker inherits a copy of the parent's OpenCV pool; rebuilding that pool in the worker
(``cv2.setNumThreads(1)``) waited forever on a condition variable of a parent thread that does not exist in the
worker, so the first epoch never started (seen under pytest-xdist, where earlier tests had warped images in the
same process; a Python user who augments or looks at images with OpenCV before calling ``train`` meets the same).
The run is a subprocess with a timeout, so a hang fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CODE = """
import sys, time
import cv2, numpy as np, torch
from robustpose.train import StandardMethod, resolve_config, train

torch.set_num_threads(1)
image = np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)
for _ in range(20):  # OpenCV's pool threads now exist and wait for work
    cv2.warpAffine(image, np.float32([[0.9, 0.1, 3], [-0.1, 0.9, 5]]), (900, 900))
time.sleep(0.5)
data, out = sys.argv[1], sys.argv[2]
config = resolve_config({"data": {"dataset": "coco", "train_ann": data + "/test_coco.json", "train_images": data,
                                  "val_ann": data + "/test_coco.json", "val_images": data, "input_size": [64, 64],
                                  "heatmap_size": [16, 16], "sigma": 1.0, "workers": 1},
                         "model": {"arch": "simplebaseline_res18",
                                   "kwargs": {"stem_width": 8, "deconv_channels": [16, 16, 16]}},
                         "epochs": 2, "batch_size": 4, "threads": 1, "device": "cpu", "out": out})
result = train(config, StandardMethod)
print("trained", len(result.log))
"""


def test_loader_workers_start_after_the_parent_used_opencv_threads(shared_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", CODE, str(shared_data / "coco"), str(tmp_path / "run")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)  # 16 s on the shared 2-core machine
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the hung worker too, not only its parent
        proc.communicate()
        pytest.fail("training with loader workers hung after the parent had used OpenCV's thread pool")
    assert proc.returncode == 0, stderr
    assert stdout.split()[-2:] == ["trained", "2"]
