"""``robustpose verify-c``: missing, altered and unrecorded files, and byte-for-byte regeneration."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from click.testing import CliRunner

from robustpose.cli.main import cli
from robustpose.datasets.build_c import BuildConfig, build_c


@pytest.fixture
def built(shared_data, tmp_path):
    """A small COCO-C (2 corruptions x 2 severities x 4 images) in a fresh folder."""
    out = tmp_path / "coco-C"
    config = BuildConfig(out=out, images_dir=shared_data / "coco", dataset="coco",
                         ann_file=shared_data / "coco/test_coco.json", corruptions=("shot_noise", "frost"),
                         severities=(1, 5))
    assert build_c(config).ok
    return out


def _verify(*args: str):
    return CliRunner().invoke(cli, ["verify-c", "--quiet", *args])


def test_intact_build_verifies_and_regenerates(built, shared_data):
    result = _verify(str(built), "--regenerate", "5", "--images", str(shared_data / "coco"))
    assert result.exit_code == 0, result.output
    assert ("OK: 16 expected, 16 checked, 0 missing, 0 altered, 0 unrecorded, 0 stray, 5 regenerated (0 differ)"
            in " ".join(result.output.split()))


def test_deleted_and_modified_files_are_named(built):
    deleted, modified = "frost/5/000000040083.jpg", "shot_noise/1/000000197388.jpg"
    (built / deleted).unlink()
    data = bytearray((built / modified).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (built / modified).write_bytes(bytes(data))
    result = _verify(str(built))
    assert result.exit_code == 1
    assert f"missing: {deleted}" in result.output and f"altered: {modified}" in result.output
    assert "1 missing, 1 altered" in " ".join(result.output.split())


def test_file_outside_every_manifest_is_reported(built):
    manifest = built / "manifest-1-of-1.jsonl"
    lines = manifest.read_text().splitlines()
    dropped = json.loads(lines[3])["path"]
    manifest.write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    result = _verify(str(built))
    assert result.exit_code == 1 and f"not in any manifest: {dropped}" in result.output


@pytest.mark.parametrize("stray", ["frost/1/copy of 000000000785.jpg", "notes.txt", "frost/9/x.jpg"])
def test_a_file_the_set_has_no_record_of_is_reported(built, stray):
    (built / stray).parent.mkdir(parents=True, exist_ok=True)
    (built / stray).write_bytes(b"not part of the benchmark")
    result = _verify(str(built))
    assert result.exit_code == 1, result.output
    assert f"stray (not part of the set; move it out): {stray}" in result.output
    assert "0 unrecorded, 1 stray" in " ".join(result.output.split())
    assert (built / stray).is_file()  # reported, never deleted


def test_regenerate_catches_a_file_whose_manifest_was_rewritten(built, shared_data):
    victim = "frost/1/000000000785.jpg"
    shutil.copyfile(built / "frost/5/000000000785.jpg", built / victim)
    data = (built / victim).read_bytes()
    manifest = built / "manifest-1-of-1.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record in records:
        if record["path"] == victim:
            record.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert _verify(str(built)).exit_code == 0
    result = _verify(str(built), "--regenerate", "16", "--images", str(shared_data / "coco"))
    assert result.exit_code == 1 and f"regenerated differently: {victim}" in result.output


def test_not_a_c_dataset_and_regenerate_without_images(built, tmp_path):
    result = _verify(str(tmp_path))
    assert result.exit_code == 1 and "dataset.json not found" in result.output
    result = _verify(str(built), "--regenerate", "2")
    assert result.exit_code == 1 and "pass --images DIR" in result.output
