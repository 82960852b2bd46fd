"""Job-array builds: ``build-c --shard K/N`` as separate processes started together into one output root, then
``verify-c`` of the whole; the result equals one unsharded build byte for byte. And the SLURM array recipe of
``docs/build_c.md``, run as written with a stand-in ``SLURM_ARRAY_TASK_ID`` loop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELLS = ["--corruptions", "gaussian_noise,fog,pixelate,jpeg_compression", "--severities", "1,3,5"]


def env() -> dict[str, str]:
    """This checkout first on the path; the venv's ``robustpose`` script on PATH (as on a cluster node)."""
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def robustpose(*args: str) -> list[str]:
    return [sys.executable, "-m", "robustpose", *args]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``args`` to completion, output captured (the test asserts the exit status itself)."""
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=600, **{"env": env(), **kwargs})


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the manifests (named per shard), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("manifest-")}


def manifest_lines(root: Path) -> list[dict]:
    return sorted((json.loads(line) for m in root.glob("manifest-*.jsonl") for line in m.read_text().splitlines()),
                  key=lambda r: r["path"])


def test_shards_started_together_into_one_root_equal_one_build(shared_data, tmp_path):
    coco = shared_data / "coco"
    common = ["build-c", "--dataset", "coco", "--ann", str(coco / "test_coco.json"), "--images", str(coco), *CELLS,
              "--workers", "1", "--quiet"]
    shards = [subprocess.Popen(robustpose(*common, "--out", str(tmp_path / "array"), "--shard", f"{k}/3"),
                               env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for k in (1, 2, 3)]
    for proc in shards:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    single = run(robustpose(*common, "--out", str(tmp_path / "single")))
    assert single.returncode == 0, single.stderr
    verify = run(robustpose("verify-c", str(tmp_path / "array")))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    array, one = tree(tmp_path / "array"), tree(tmp_path / "single")
    assert array.keys() == one.keys() and len(array) == 2 + 4 * 4 * 3  # dataset.json, the annotation copy, cells
    assert all(array[k] == one[k] for k in one)
    assert sorted(p.name for p in (tmp_path / "array").glob("manifest-*")) == [
        f"manifest-{k}-of-3.jsonl" for k in (1, 2, 3)]
    assert manifest_lines(tmp_path / "array") == manifest_lines(tmp_path / "single")


def slurm_recipe() -> str:
    """The ``#!/bin/bash`` block of docs/build_c.md's Sharding section."""
    text = (ROOT / "docs" / "build_c.md").read_text()
    blocks = re.findall(r"```bash\n(#!/bin/bash\n.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "docs/build_c.md should hold exactly one sbatch script"
    return blocks[0]


def test_the_documented_slurm_array_runs_as_written(shared_data, tmp_path):
    coco = shared_data / "coco"
    script = slurm_recipe()
    assert "--shard ${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" in script
    tasks = int(re.search(r"#SBATCH --array=1-(\d+)", script).group(1))
    out = tmp_path / "shared" / "data" / "coco-C"
    (tmp_path / "job.sh").write_text(script.replace("/shared/data/coco-C", str(out)))
    # The paths the script names, relative to the submission folder: two of the sample images.
    gt = json.loads((coco / "test_coco.json").read_text())
    keep = {img["id"] for img in gt["images"][:2]}
    gt = {**gt, "images": [i for i in gt["images"] if i["id"] in keep],
          "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(gt))
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "val2017").symlink_to(coco)
    for task in range(1, tasks + 1):  # what `sbatch` would run, one array task after another
        task_env = {**env(), "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(tasks),
                    "SLURM_CPUS_PER_TASK": "1"}
        proc = run(["bash", "job.sh"], cwd=tmp_path, env=task_env)
        assert proc.returncode == 0, f"task {task}: {proc.stderr}"
    verify = run(robustpose("verify-c", str(out)))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    record = json.loads((out / "dataset.json").read_text())
    assert len(record["corruptions"]) == 15 and record["severities"] == [1, 2, 3, 4, 5]
    cells = [p for p in out.rglob("*.jpg")]
    assert len(cells) == 2 * 15 * 5
    assert len(list(out.glob("manifest-*-of-16.jsonl"))) == 2  # the 14 tasks without an image record nothing
