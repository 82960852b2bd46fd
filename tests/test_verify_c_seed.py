"""``verify-c --regenerate`` on a -C set built with a base seed other than 0.

A build with ``--seed 7`` must regenerate byte for byte (the recorded base seed is used, not the default 0), its
manifest seeds must be the documented ``sha256-v1`` seeds of base 7 (re-derived here with ``hashlib``), and a
dataset.json whose recorded base seed was changed must make regeneration fail.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from robustpose.datasets.build_c import BuildConfig, build_c
from robustpose.datasets.verify_c import verify_c

CORRUPTIONS = ("gaussian_noise", "shot_noise")


def spec_seed(base: int, corruption: str, severity: int, name: str) -> int:
    key = "\0".join(["robustpose-c/sha256-v1", str(base), corruption, str(severity), name]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


@pytest.fixture(scope="module")
def built_seed7(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("seed7") / "coco-C"
    config = BuildConfig(out=out, images_dir=shared_data / "coco", dataset="coco",
                         ann_file=shared_data / "coco/test_coco.json", corruptions=CORRUPTIONS, severities=(2,),
                         base_seed=7)
    assert build_c(config).ok
    return out


def _records(out):
    return [json.loads(line) for m in sorted(out.glob("manifest-*.jsonl")) for line in m.read_text().splitlines()]


def test_build_records_the_base_seed_and_the_documented_seeds(built_seed7):
    record = json.loads((built_seed7 / "dataset.json").read_text())
    assert record["seeding"]["base_seed"] == 7 and record["seeding"]["scheme"] == "sha256-v1"
    records = _records(built_seed7)
    assert len(records) == 2 * 4
    for r in records:
        corruption, severity, name = r["path"].split("/", 2)
        assert r["seed"] == spec_seed(7, corruption, int(severity), name), r["path"]
        assert r["seed"] != spec_seed(0, corruption, int(severity), name)


def test_regenerate_uses_the_recorded_base_seed(built_seed7, shared_data):
    report = verify_c(built_seed7, regenerate=8, images_dir=shared_data / "coco")
    assert report.regenerated == 8 and report.regenerate_mismatch == [] and report.ok


def test_regenerate_fails_when_the_recorded_base_seed_is_not_the_one_used(built_seed7, shared_data, tmp_path):
    import shutil

    copy = tmp_path / "coco-C"
    shutil.copytree(built_seed7, copy)
    record = json.loads((copy / "dataset.json").read_text())
    record["seeding"]["base_seed"] = 0
    (copy / "dataset.json").write_text(json.dumps(record))
    report = verify_c(copy, regenerate=8, images_dir=shared_data / "coco")
    assert report.regenerated == 8 and len(report.regenerate_mismatch) == 8 and not report.ok
