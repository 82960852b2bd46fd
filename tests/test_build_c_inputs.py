"""``robustpose build-c`` on bad input: odd images, unsafe names, bad annotation files, unwritable or full disks."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from robustpose.cli.main import cli
from robustpose.corruptions import corrupt
from robustpose.datasets import build_c as build_c_module
from robustpose.datasets.build_c import BuildConfig, build_c
from robustpose.datasets.imageio import encode_image
from robustpose.datasets.seeding import cell_seed

CELLS = (("contrast", 2), ("gaussian_noise", 4))


def _photo(size=(48, 40)) -> Image.Image:
    rng = np.random.RandomState(0)
    return Image.fromarray(rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def odd_images(tmp_path) -> Path:
    """A folder of images the build converts (grey, CMYK, RGBA, palette) and ones it cannot use."""
    src = tmp_path / "images"
    src.mkdir()
    photo = _photo()
    photo.save(src / "rgb.jpg")
    photo.convert("L").save(src / "grey.jpg")
    photo.convert("CMYK").save(src / "cmyk.jpg")
    photo.convert("RGBA").save(src / "rgba.png")
    photo.convert("P").save(src / "palette.png")
    Image.fromarray((np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30)).save(src / "deep16.png")
    whole = (src / "rgb.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (src / "garbage.jpg").write_bytes(b"this is not an image\n" * 10)
    return src


CONVERTED = ("cmyk.jpg", "grey.jpg", "palette.png", "rgb.jpg", "rgba.png")
FAILED = {"deep16.png": "high-bit-depth", "garbage.jpg": "cannot decode", "truncated.jpg": "truncated"}


def _run(args: list[str]):
    return CliRunner().invoke(cli, ["build-c", "--workers", "1", "--quiet", *args])


def test_odd_images_are_converted_like_pil_and_bad_ones_recorded(odd_images, tmp_path):
    out = tmp_path / "out"
    result = _run(["--dataset", "folder", "--images", str(odd_images), "--out", str(out),
                   "--corruptions", "contrast,gaussian_noise", "--severities", "2,4"])
    assert result.exit_code == 1
    for name, reason in FAILED.items():
        assert f"failed: {name}: " in result.output and reason in result.output
    assert "3 image(s) failed" in result.output and "errors.jsonl" in result.output
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["image"]: e["reason"] for e in errors}.keys() == FAILED.keys()
    assert all(FAILED[e["image"]] in e["reason"] and e["shard"] == "1/1" for e in errors)
    for name in CONVERTED:
        with Image.open(odd_images / name) as im:
            rgb = np.asarray(im.convert("RGB"))  # how the reference reads every benchmark image
        out_name = name if name.endswith(".jpg") else name[:-4] + ".jpg"
        for corruption, severity in CELLS:
            expected = encode_image(corrupt(rgb, corruption, severity, cell_seed(0, corruption, severity, name)), "jpg")
            assert (out / corruption / str(severity) / out_name).read_bytes() == expected
    for name in FAILED:
        assert not list(out.glob(f"*/*/{Path(name).stem}.*"))


def test_fail_fast_stops_at_the_first_failure(odd_images, tmp_path):
    out = tmp_path / "out"
    config = BuildConfig(out=out, images_dir=odd_images, corruptions=("contrast",), severities=(1,), fail_fast=True)
    summary = build_c(config)
    # images are taken in sorted order: cmyk.jpg, deep16.png (fails), garbage.jpg, ...
    assert summary.stopped_early and not summary.ok
    assert summary.failures == [("deep16.png", summary.failures[0][1])] and summary.images_done == 1
    assert sorted(p.name for p in (out / "contrast/1").iterdir()) == ["cmyk.jpg"]
    result = _run(["--dataset", "folder", "--images", str(odd_images), "--out", str(tmp_path / "o2"),
                   "--corruptions", "contrast", "--severities", "1", "--fail-fast"])
    assert result.exit_code == 1 and "--fail-fast" in result.output and "deep16.png" in result.output


def test_missing_source_image_is_recorded(shared_data, tmp_path):
    ann = json.loads((shared_data / "coco/test_coco.json").read_text())
    ann["images"].append({"id": 1, "file_name": "not_there.jpg", "width": 64, "height": 64})
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    out = tmp_path / "out"
    result = _run(["--dataset", "coco", "--ann", str(tmp_path / "ann.json"), "--images", str(shared_data / "coco"),
                   "--out", str(out), "--corruptions", "pixelate", "--severities", "1"])
    assert result.exit_code == 1 and "failed: not_there.jpg: file not found" in result.output
    assert len(list((out / "pixelate/1").iterdir())) == 4


@pytest.mark.parametrize("file_name", ["../escape.jpg", "a/../../escape.jpg", "/etc/passwd", "C:\\x.jpg", ""])
def test_unsafe_file_names_are_refused(tmp_path, file_name):
    (tmp_path / "ann.json").write_text(json.dumps({"images": [{"id": 1, "file_name": file_name}]}))
    result = _run(["--dataset", "coco", "--ann", str(tmp_path / "ann.json"), "--images", str(tmp_path),
                   "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "images[0].file_name" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_symlink_escaping_the_image_folder_is_refused(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _photo().save(tmp_path / "outside.jpg")
    (images / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    (tmp_path / "ann.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "link.jpg"}]}))
    result = _run(["--dataset", "coco", "--ann", str(tmp_path / "ann.json"), "--images", str(images),
                   "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "outside the image folder" in result.output


@pytest.mark.parametrize("dataset, content, message", [
    ("coco", None, "not found; check the --ann path"),
    ("coco", "{not json", "is not valid JSON"),
    ("coco", [{"image": "a.jpg"}], "not a COCO-format annotation file: no 'images' list (it looks like an MPII"),
    ("coco", {"images": [{"id": 1}]}, "images[0] has no 'file_name'"),
    ("mpii", {"images": []}, "not an HRNet-style MPII annotation file: expected a list of persons (it looks like a COCO"),
    ("mpii", [{"joints": []}], "person 0 has no 'image'"),
])
def test_bad_annotation_files_give_one_line_errors(tmp_path, dataset, content, message):
    ann = tmp_path / "ann.json"
    if content is not None:
        ann.write_text(content if isinstance(content, str) else json.dumps(content))
    result = _run(["--dataset", dataset, "--ann", str(ann), "--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_unwritable_out_gives_one_line_error(shared_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = ["--dataset", "coco", "--ann", str(shared_data / "coco/test_coco.json"),
            "--images", str(shared_data / "coco"), "--corruptions", "contrast", "--severities", "1"]
    result = _run([*base, "--out", str(blocker)])
    assert result.exit_code == 1 and "exists and is not a folder" in result.output
    result = _run([*base, "--out", str(blocker / "sub")])
    assert result.exit_code == 1 and "cannot write" in result.output and "choose a writable --out" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_full_disk_gives_one_line_error_and_resumes(shared_data, tmp_path, monkeypatch):
    real_write = build_c_module.write_atomic
    calls = []

    def write_until_full(path, data, shared=False):
        calls.append(path)
        if len(calls) > 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data, shared)

    monkeypatch.setattr(build_c_module, "write_atomic", write_until_full)
    args = ["--dataset", "coco", "--ann", str(shared_data / "coco/test_coco.json"), "--images",
            str(shared_data / "coco"), "--out", str(tmp_path), "--corruptions", "contrast", "--severities", "1-3"]
    result = _run(args)
    assert result.exit_code == 1 and "disk full writing" in result.output and "rerun the same command" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    monkeypatch.setattr(build_c_module, "write_atomic", real_write)
    result = _run(args)
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("contrast/*/*.jpg"))) == 12
