"""``robustpose build-c``: layout, reproducibility across workers and shards, resume after a kill, AdvMix mode."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from robustpose.cli.main import cli
from robustpose.corruptions import GROUPS, corrupt
from robustpose.datasets.build_c import BuildConfig, BuildError, build_c, read_manifests
from robustpose.datasets.imageio import encode_image, load_rgb
from robustpose.datasets.readers import coco_image_names, mpii_image_names
from robustpose.datasets.seeding import cell_seed
from robustpose.datasets.verify_c import verify_c

DATASETS = {  # name: (annotation file, reader)
    "coco": ("coco/test_coco.json", coco_image_names),
    "mpii": ("mpii/test_mpii.json", mpii_image_names),
    "ochuman": ("ochuman/test_ochuman.json", coco_image_names),
}

def config_for(shared_data: Path, dataset: str, out: Path, **kwargs) -> BuildConfig:
    ann = shared_data / DATASETS[dataset][0]
    return BuildConfig(out=out, images_dir=ann.parent, dataset=dataset, ann_file=ann, **kwargs)


def image_files(root: Path) -> dict[str, Path]:
    """Every corrupted image under ``root`` (relative path -> file), without dataset.json, manifests and the hidden
    ``.NAME.partial`` files a killed writer leaves (pathlib's glob matches dot-files)."""
    return {p.relative_to(root).as_posix(): p for p in root.glob("*/*/*")
            if p.is_file() and not p.name.endswith(".partial")}


@pytest.fixture(scope="module")
def full_builds(shared_data, tmp_path_factory):
    """The full 15 x 5 grid of each sample dataset, built with 2 worker processes."""
    builds = {}
    for dataset in DATASETS:
        out = tmp_path_factory.mktemp(f"{dataset}-C")
        summary = build_c(config_for(shared_data, dataset, out, workers=2))
        builds[dataset] = (out, summary)
    return builds


@pytest.mark.parametrize("dataset", DATASETS)
def test_full_grid_layout_and_file_count(full_builds, shared_data, dataset):
    out, summary = full_builds[dataset]
    ann_name, reader = DATASETS[dataset]
    names = reader(shared_data / ann_name)
    assert summary.ok and summary.images == summary.images_done == len(names)
    expected = {f"{c}/{s}/{n}" for c in GROUPS["benchmark"] for s in range(1, 6) for n in names}
    files = image_files(out)
    assert set(files) == expected and len(files) == 75 * len(names)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted([*GROUPS["benchmark"], "annotations"])
    for path in list(files.values())[:: len(names) * 7]:
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == Image.open(shared_data / dataset / path.name).size
    record = json.loads((out / "dataset.json").read_text())
    ann = shared_data / ann_name
    assert (out / record["annotation"]["file"]).read_bytes() == ann.read_bytes()
    assert record["seeding"] == {"scheme": "sha256-v1", "base_seed": 0}
    assert record["corruptions"] == list(GROUPS["benchmark"]) and record["severities"] == [1, 2, 3, 4, 5]
    assert (record["format"], record["quality"], record["images"]) == ("jpg", 75, names)
    manifest = read_manifests(out)
    assert set(manifest) == expected
    assert verify_c(out).ok


@pytest.mark.parametrize("dataset", DATASETS)
def test_cells_are_the_seeded_corruption_of_the_decoded_image(full_builds, shared_data, dataset):
    out, _ = full_builds[dataset]
    name = DATASETS[dataset][1](shared_data / DATASETS[dataset][0])[-1]
    image = load_rgb(shared_data / dataset / name)
    for corruption, severity in (("gaussian_noise", 2), ("frost", 5)):
        expected = encode_image(corrupt(image, corruption, severity, cell_seed(0, corruption, severity, name)), "jpg")
        assert (out / f"{corruption}/{severity}/{name}").read_bytes() == expected


def test_identical_images_get_their_own_noise(tmp_path):
    """AdvMix's constant seed gave every same-sized image the same noise field; per-name seeds do not."""
    image = np.full((40, 48, 3), 128, np.uint8)
    for name in ("a.png", "b.png"):
        Image.fromarray(image).save(tmp_path / name)
    config = BuildConfig(out=tmp_path / "out", images_dir=tmp_path, corruptions=("gaussian_noise",), severities=(3,))
    assert build_c(config).ok
    a, b = ((tmp_path / "out/gaussian_noise/3" / name).read_bytes() for name in ("a.jpg", "b.jpg"))
    assert a != b


@pytest.mark.parametrize("dataset", DATASETS)
def test_one_worker_two_shards_merged_is_byte_identical(full_builds, shared_data, tmp_path, dataset):
    merged = tmp_path / "merged"
    for k in (1, 2):
        part = tmp_path / f"shard{k}"
        summary = build_c(config_for(shared_data, dataset, part, workers=1, shard=(k, 2)))
        assert summary.ok and summary.images_done > 0
        shutil.copytree(part, merged, dirs_exist_ok=True)
    full, _ = full_builds[dataset]
    ours = image_files(merged)
    assert ours and set(ours) == set(image_files(full))  # the whole 15 x 5 grid
    assert all(filecmp.cmp(ours[p], full / p, shallow=False) for p in ours)
    shard1 = {r["source"] for r in read_manifests(tmp_path / "shard1").values()}
    shard2 = {r["source"] for r in read_manifests(tmp_path / "shard2").values()}
    assert shard1 and shard2 and not shard1 & shard2
    assert verify_c(merged).ok


def test_killed_build_resumes_to_identical_files(full_builds, shared_data, tmp_path):
    out = tmp_path / "coco-C"
    ann = shared_data / "coco/test_coco.json"
    args = ["build-c", "--dataset", "coco", "--ann", str(ann), "--images", str(ann.parent), "--out", str(out),
            "--corruptions", "noise,blur", "--workers", "2", "--quiet"]
    code = "import sys; from robustpose.cli.main import cli; cli(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest-1-of-1.jsonl"
    deadline = time.monotonic() + 240
    while not (manifest.exists() and manifest.stat().st_size > 0) and time.monotonic() < deadline:
        assert proc.poll() is None, "build ended before it could be killed"
        time.sleep(0.05)
    assert proc.poll() is None, "build ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process tree, as a scheduler kills a job
    proc.wait()
    total = 4 * 7 * 5
    assert 0 < len(read_manifests(out)) < total
    for path in image_files(out).values():  # nothing half-written under a final name
        with Image.open(path) as im:
            im.load()

    config = config_for(shared_data, "coco", out, corruptions=GROUPS["noise"] + GROUPS["blur"], workers=1)
    summary = build_c(config)
    assert summary.ok and summary.files_already_complete > 0 and summary.files_written > 0
    assert summary.files_already_complete + summary.files_written == total
    assert not list(out.rglob("*.partial"))
    files = image_files(out)
    assert len(files) == total
    full, _ = full_builds["coco"]
    assert all(filecmp.cmp(path, full / rel, shallow=False) for rel, path in files.items())
    assert verify_c(out).ok


def test_resume_redoes_only_missing_and_incomplete_files(shared_data, tmp_path):
    config = config_for(shared_data, "coco", tmp_path, corruptions=("gaussian_noise", "pixelate"), severities=(1, 4))
    first = build_c(config)
    assert first.files_written == 16
    before = {p: f.read_bytes() for p, f in image_files(tmp_path).items()}
    deleted, truncated = sorted(before)[0], sorted(before)[5]
    (tmp_path / deleted).unlink()
    (tmp_path / truncated).write_bytes(before[truncated][:100])
    with (tmp_path / "manifest-1-of-1.jsonl").open("a") as f:
        f.write('{"path": "pixelate/1/000000000785.jp')  # torn line of a killed build
    again = build_c(config)
    assert (again.files_written, again.files_already_complete, again.images_already_complete) == (2, 14, 2)
    assert {p: f.read_bytes() for p, f in image_files(tmp_path).items()} == before
    assert verify_c(tmp_path).ok
    assert build_c(config).files_written == 0


def test_other_settings_in_the_same_out_are_refused(shared_data, tmp_path):
    build_c(config_for(shared_data, "coco", tmp_path, corruptions=("contrast",), severities=(1,)))
    with pytest.raises(BuildError, match="other settings.*seeding"):
        build_c(config_for(shared_data, "coco", tmp_path, corruptions=("contrast",), severities=(1,), base_seed=7))


def test_cli_honours_every_corruption_and_severity_and_png(shared_data, tmp_path):
    ann = shared_data / "coco/test_coco.json"
    result = CliRunner().invoke(cli, [
        "build-c", "--dataset", "coco", "--ann", str(ann), "--images", str(ann.parent), "--out", str(tmp_path),
        "--corruptions", "noise", "--corruptions", "contrast,frost", "--corruptions", "saturate",
        "--severities", "1,3", "--format", "png", "--workers", "1", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    names = [*GROUPS["noise"], "contrast", "frost", "saturate"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted([*names, "annotations"])
    files = image_files(tmp_path)
    assert len(files) == len(names) * 2 * 4 and {p.split("/")[1] for p in files} == {"1", "3"}
    assert all(p.endswith(".png") for p in files)
    name = "000000040083.jpg"
    sample = files[f"frost/3/{name[:-4]}.png"]
    expected = corrupt(load_rgb(ann.parent / name), "frost", 3, cell_seed(0, "frost", 3, name))
    assert np.array_equal(np.asarray(Image.open(sample)), expected)
    assert re.search(rf"files written\W+{len(files)}\b", result.output)


def test_advmix_layout_matches_reference_byte_for_byte(shared_data, tmp_path, reference):
    src = tmp_path / "images"
    src.mkdir()
    for dataset, name, box in (("coco", "000000000785.jpg", (200, 60, 328, 156)),
                               ("mpii", "004645041.jpg", (600, 200, 680, 264))):
        with Image.open(shared_data / dataset / name) as im:
            im.crop(box).save(src / name, quality=95)
    out = tmp_path / "coco-C"
    result = CliRunner().invoke(cli, ["build-c", "--dataset", "folder", "--images", str(src), "--out", str(out),
                                      "--layout", "advmix", "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    names = reference.get_corruption_names("all")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(names)
    compared = 0
    for path in sorted(src.iterdir()):  # AdvMix's tools/make_datasets.py, cell by cell
        image = np.asarray(Image.open(path))
        for corruption in names:
            for severity in range(5):
                np.random.seed(1)
                corrupted = reference.corrupt(image, corruption_name=corruption, severity=severity + 1)
                ref_path = tmp_path / "ref" / corruption / str(severity) / path.name
                ref_path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(corrupted).save(ref_path)
                ours = out / corruption / str(severity) / path.name
                assert ours.is_file()
                if corruption != "impulse_noise":  # its reference ignores np.random.seed (skimage >= 0.19)
                    assert ours.read_bytes() == ref_path.read_bytes(), f"{corruption} {severity} {path.name}"
                    compared += 1
    assert compared == 2 * 18 * 5
    assert json.loads((out / "dataset.json").read_text())["seeding"] == {"scheme": "advmix-constant-1", "seed": 1}


def test_advmix_layout_refuses_conflicting_options(tmp_path):
    result = CliRunner().invoke(cli, ["build-c", "--dataset", "folder", "--images", str(tmp_path), "--out",
                                      str(tmp_path / "o"), "--layout", "advmix", "--format", "png"])
    assert result.exit_code == 2 and "--format" in result.output


def test_progress_wrapper_sees_every_image(shared_data, tmp_path):
    seen = []

    def progress(items, total):
        seen.append(total)
        for item in items:
            seen.append(item.name)
            yield item

    config = config_for(shared_data, "mpii", tmp_path, corruptions=("contrast",), severities=(2,), workers=2)
    assert build_c(config, progress=progress).ok
    assert seen[0] == 5 and sorted(seen[1:]) == sorted(mpii_image_names(shared_data / "mpii/test_mpii.json"))


def test_only_annotated_images_unless_all_images(shared_data, tmp_path):
    images = tmp_path / "images"
    (images / "extra").mkdir(parents=True)
    for name in ("000000040083.jpg", "000000000785.jpg"):
        shutil.copyfile(shared_data / "coco" / name, images / name)
    shutil.copyfile(shared_data / "coco/000000040083.jpg", images / "extra/unannotated.jpg")
    ann = json.loads((shared_data / "coco/test_coco.json").read_text())
    ann["images"] = [i for i in ann["images"] if i["file_name"] == "000000040083.jpg"]
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    for all_images, expected in ((False, ["000000040083.jpg"]),
                                 (True, ["000000000785.jpg", "000000040083.jpg", "extra/unannotated.jpg"])):
        out = tmp_path / f"out{all_images}"
        config = BuildConfig(out=out, images_dir=images, dataset="coco", ann_file=tmp_path / "ann.json",
                             all_images=all_images, corruptions=("pixelate",), severities=(5,))
        assert build_c(config).ok
        assert sorted(p.relative_to(out / "pixelate/5").as_posix() for p in (out / "pixelate/5").rglob("*.jpg")) \
            == expected
        assert json.loads((out / "dataset.json").read_text())["images"] == expected
