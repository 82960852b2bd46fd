"""Ctrl-C as a terminal sends it (SIGINT to the whole process group, workers included) while ``eval --ckpt``'s
DataLoader workers start: one line, exit 130, no traceback from any process, and a rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
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


# ------------------------------------------------------------------ Ctrl-C in the middle of real work, then resume

INTERRUPTED_LINE = "Error: interrupted (Ctrl-C)"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def robustpose(*args: object) -> list[str]:
    return [sys.executable, "-m", "robustpose", *map(str, args)]


def interrupt_when(argv: list[str], ready, timeout: float = 300) -> tuple[int, str, str]:
    """Run ``argv`` in its own process group, send SIGINT to the whole group (what a terminal's Ctrl-C does) as
    soon as ``ready(stderr_lines_so_far, pid)`` is true, and return (exit status, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not ready(lines, proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"finished before the interrupt: {''.join(lines)}"
        assert time.monotonic() < deadline, f"not ready after {timeout} s: {''.join(lines)}"
        os.killpg(proc.pid, signal.SIGINT)
        stdout = proc.stdout.read()
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    return proc.returncode, stdout, "".join(lines)


def assert_interrupted(code: int, stderr: str, *names: str) -> str:
    """Exit 130, no traceback from any process, and the last line is the one Ctrl-C line (naming ``names``)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert [line for line in lines if line.startswith("Error:")] == lines[-1:], stderr
    assert lines[-1].startswith(INTERRUPTED_LINE), stderr
    for name in names:
        assert name in lines[-1], (name, lines[-1])
    return lines[-1]


def run_ok(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in skip}


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory) -> Path:
    """16 training and 6 validation SynthPose images."""
    root = tmp_path_factory.mktemp("synth") / "sp"
    run_ok(robustpose("synth", "--out", root, "--train", 16, "--val", 6, "-q"))
    return root


def _spawned_workers(pid: int) -> list[int]:
    """The children of ``pid`` started by multiprocessing's spawn (not its resource tracker)."""
    def spawned(child: int) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            return False

    return [child for child in _children(pid) if spawned(child)]


def _maps(pid: int, library: str) -> bool:
    """Whether process ``pid`` has ``library`` loaded (a path in its memory maps contains the name)."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _importing(workers: list[int], count: int) -> bool:
    """``count`` workers, each halfway through importing the corruptions (numba's LLVM is loaded, the rest is not
    done): a Ctrl-C now used to print a KeyboardInterrupt traceback per worker."""
    return len(workers) == count and all(_maps(pid, "llvmlite") for pid in workers)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the worker processes")
def test_ctrl_c_in_build_c_with_spawned_workers_is_one_line_and_the_rerun_gives_the_same_files(
        synth_small: Path, tmp_path: Path) -> None:
    base = ["build-c", "--dataset", "coco", "--ann", synth_small / "annotations" / "person_keypoints_val.json",
            "--images", synth_small / "images", "--corruptions", "gaussian_noise,brightness,jpeg_compression",
            "--severities", "1-5", "-q"]
    reference, out = tmp_path / "reference", tmp_path / "C"
    run_ok(robustpose(*base, "--out", reference, "--workers", 1))
    argv = robustpose(*base, "--out", out, "--workers", 2)
    # while the spawned workers import their modules (before any image is done) ...
    code, _, stderr = interrupt_when(argv, lambda lines, pid: _importing(_spawned_workers(pid), 2))
    assert_interrupted(code, stderr, "rerun the same command")
    # ... and once images are being written
    manifest = out / "manifest-1-of-1.jsonl"
    code, _, stderr = interrupt_when(argv, lambda lines, pid: manifest.is_file() and manifest.stat().st_size > 0)
    assert_interrupted(code, stderr)
    for line in manifest.read_text().splitlines():  # the manifest is whole
        json.loads(line)
    run_ok(argv)
    manifests = "manifest-1-of-1.jsonl"
    assert _files(out, (manifests,)) == _files(reference, (manifests,))
    assert sorted(manifest.read_text().splitlines()) == sorted((reference / manifests).read_text().splitlines())
    run_ok(robustpose("verify-c", out, "-q"))


def _train_argv(data: Path, out: Path, *extra: object) -> list[str]:
    return robustpose("train", "standard", "--preset", "cpu-synth", "--data-root", data, "--out", out, "--epochs", 3,
                      "--milestones", 2, "--batch-size", 8, "--threads", 1, "--workers", 2, *extra)


def _same_weights(a: Path, b: Path) -> None:
    from robustpose.models import torch_load

    first, second = torch_load(a), torch_load(b)
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for key in first["state_dict"]:
        assert torch.equal(first["state_dict"][key], second["state_dict"][key]), key
    assert [r["loss"] for r in first["train_state"]["log"]] == [r["loss"] for r in second["train_state"]["log"]]


@pytest.fixture(scope="module")
def standard_reference(synth_small: Path, tmp_path_factory) -> Path:
    """An uninterrupted 3-epoch cpu-synth run with 2 loader workers."""
    out = tmp_path_factory.mktemp("reference") / "standard"
    run_ok(_train_argv(synth_small, out))
    return out


def _after_epoch(n: int):
    return lambda lines, pid: any(line.startswith(f"epoch {n}:") for line in lines)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_ctrl_c_in_train_standard_is_one_line_and_resume_gives_the_same_weights(
        synth_small: Path, standard_reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # in epoch 1, while its loader workers start or load: checkpoint.pth holds epoch 0
    code, _, stderr = interrupt_when(_train_argv(synth_small, out), _after_epoch(0))
    assert_interrupted(code, stderr, str(out / "checkpoint.pth"), "--resume")
    code, _, stderr = interrupt_when(_train_argv(synth_small, out, "--resume"), _after_epoch(1))
    assert_interrupted(code, stderr, "rerun the same command to continue")
    run_ok(_train_argv(synth_small, out, "--resume"))
    _same_weights(out / "checkpoint.pth", standard_reference / "checkpoint.pth")


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_ctrl_c_in_train_advmix_is_one_line_and_resume_gives_the_same_weights(
        synth_small: Path, standard_reference: Path, tmp_path: Path) -> None:
    def argv(out: Path, *extra: object) -> list[str]:
        return robustpose("train", "advmix", "--init", standard_reference / "best.pth", "--preset", "cpu-synth",
                          "--data-root", synth_small, "--out", out, "--epochs", 2, "--milestones", 1,
                          "--batch-size", 8, "--threads", 1, "--workers", 2, "--gen-width", 8, *extra)

    reference, out = tmp_path / "reference", tmp_path / "run"
    run_ok(argv(reference))
    code, _, stderr = interrupt_when(argv(out), _after_epoch(0))
    assert_interrupted(code, stderr, "--resume")
    run_ok(argv(out, "--resume"))
    _same_weights(out / "checkpoint.pth", reference / "checkpoint.pth")
    from robustpose.models import torch_load

    a, b = torch_load(out / "checkpoint.pth"), torch_load(reference / "checkpoint.pth")
    assert _digest(a["train_state"]["method"]) == _digest(b["train_state"]["method"])  # generator and optimisers


def _digest(obj: object) -> str:
    import hashlib
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_ctrl_c_in_demo_is_one_line_and_the_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    argv = robustpose("demo", "--out", out, "--train", 16, "--val", 3, "--epochs", 2, "--severities", 1,
                      "--threads", 1, "--workers", 2)
    code, _, stderr = interrupt_when(argv, _after_epoch(0))  # in the training stage
    assert_interrupted(code, stderr, "stage 2/4", "rerun the same demo command")
    again = run_ok(argv)
    assert "--resume" in again.stdout.split("[2/4]")[1].splitlines()[0], again.stdout
    assert "demo finished" in again.stdout


def _scoring(workers: list[int], count: int) -> bool:
    """``count`` workers, each with the COCO engine loaded (its first cell is being scored)."""
    return len(workers) == count and all(_maps(pid, "hotcoco") for pid in workers)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the worker processes")
def test_ctrl_c_in_eval_preds_with_worker_processes_is_one_line(tmp_path: Path) -> None:
    from robustpose.metrics.synthetic import synthetic_coco_keypoints
    from robustpose.report.synthetic import write_synthetic_run

    gt = synthetic_coco_keypoints(n_images=600, n_people=800, seed=0)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    write_synthetic_run(tmp_path / "preds", gt, n_results=6000, seed=1)
    argv = robustpose("eval", "--preds", tmp_path / "preds", "--dataset", "coco", "--ann", tmp_path / "gt.json",
                      "--out", tmp_path / "report", "--jobs", 2)
    # while the spawned workers start (importing their modules), then while they score
    code, _, stderr = interrupt_when(argv, lambda lines, pid: len(_spawned_workers(pid)) == 2)
    assert_interrupted(code, stderr)
    code, _, stderr = interrupt_when(argv, lambda lines, pid: _scoring(_spawned_workers(pid), 2))
    assert_interrupted(code, stderr)
    assert not (tmp_path / "report" / "summary.json").exists()
    run_ok(argv)
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["complete"]
