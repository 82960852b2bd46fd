"""ASDA part pools: SynthPose's part label rasters (exact, without changing an image byte), the LIP-format builder
(filters, bad input, determinism) and its agreement with the SynthPose export."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from robustpose.cli.main import cli
from robustpose.datasets.parts import (
    LIP_LABELS,
    PART_TYPES,
    PartFilter,
    PoolError,
    build_pool,
    extract_parts,
    lip_sources,
    load_pool,
    synth_sources,
)
from robustpose.datasets.synthpose import (
    LEYE,
    LWRI,
    NOSE,
    RANK,
    REYE,
    RWRI,
    SynthConfig,
    generate_split,
    image_rng,
    render_scene,
)

L = {name: i for i, name in enumerate(LIP_LABELS)}


def _tree_digest(root: Path, pattern: str) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob(pattern)):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_split(root, "train", 6, SynthConfig(), 0, part_labels=True)
    return root


def test_part_labels_change_no_image_byte(synth, tmp_path):
    plain = tmp_path / "plain"
    generate_split(plain, "train", 6, SynthConfig(), 0)
    assert _tree_digest(plain / "images", "*.jpg") == _tree_digest(synth / "images", "*.jpg")
    assert (plain / "annotations/person_keypoints_train.json").read_bytes() == \
        (synth / "annotations/person_keypoints_train.json").read_bytes()
    assert not (plain / "parsing").exists() and len(list((synth / "parsing/train").glob("*.png"))) == 6
    for i in range(6):  # and in memory, before JPEG
        a = render_scene(image_rng(0, "train", i), SynthConfig())
        b = render_scene(image_rng(0, "train", i), SynthConfig(), part_labels=True)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.ids, b.ids) and a.parts is None


def test_part_labels_follow_the_drawing():
    """Labels cover exactly the people's pixels, and each visible joint lies on a part that can hold it (hair and
    the head's skin are drawn over a raised hand: the pixel is theirs then)."""
    allowed = {NOSE: {"face", "hair"}, LEYE: {"face", "hair"}, REYE: {"face", "hair"},
               LWRI: {"left_arm", "upper_clothes", "hair", "face"}, RWRI: {"right_arm", "upper_clothes", "hair", "face"},
               RANK: {"right_leg", "pants", "right_shoe"}}
    seen = set()
    for i in range(12):
        scene = render_scene(image_rng(0, "train", i), SynthConfig(), part_labels=True)
        assert np.array_equal(scene.parts > 0, scene.ids > 0)
        assert set(np.unique(scene.parts)) <= set(range(len(LIP_LABELS)))
        for kp in scene.keypoints:
            for j, names in allowed.items():
                x, y, v = kp[j]
                if v == 2:
                    label = LIP_LABELS[scene.parts[round(y), round(x)]]
                    assert label in names, (i, j, label)
                    seen.add(label)
    assert {"face", "left_arm", "right_arm", "pants"} <= seen  # the test looked at every kind of joint


def test_extract_parts_components_and_filters():
    labels = np.zeros((100, 100), np.uint8)
    labels[10:40, 10:40] = L["hat"]            # 900 px: kept at min_side 20 / reference 100 (400 px)
    labels[60:65, 60:65] = L["hat"]            # 25 px: below the area threshold
    labels[50:90, 10:40] = L["face"]           # apart from the hat, so "head" (hat + face) has two pieces
    image = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    filters = PartFilter(min_side=20, reference_side=100, min_fill=0.1)
    by = {}
    for p in extract_parts(image, labels, filters):
        by.setdefault(p.type, []).append(p)
    assert [p.box for p in by["hat"]] == [(10, 10, 30, 30)] and by["hat"][0].area == 900
    assert [p.box for p in by["face"]] == [(10, 50, 30, 40)]
    assert sorted(p.box for p in by["head"]) == [(10, 10, 30, 30), (10, 50, 30, 40)]
    assert sorted(by) == ["all", "face", "hat", "head", "upper_body_with_head"]
    hat = by["hat"][0].rgba
    assert hat.shape == (30, 30, 4) and (hat[..., 3] == 255).all()
    assert np.array_equal(hat[..., :3], image[10:40, 10:40])
    # the area threshold scales with the image: the same hat in an image twice the size is too small
    big = np.zeros((200, 200), np.uint8)
    big[10:40, 10:40] = L["hat"]
    assert extract_parts(np.zeros((200, 200, 3), np.uint8), big, filters) == []
    # a thin diagonal band: 494 px (above the area threshold) filling 5 % of its box, dropped as scattered
    band = np.abs(np.arange(100)[:, None] - np.arange(100)[None, :]) < 3
    scarf = np.where(band, L["scarf"], 0).astype(np.uint8)
    assert extract_parts(image, scarf, filters) == []
    assert [p.type for p in extract_parts(image, scarf, PartFilter(20, 100, min_fill=0.04))] == \
        ["upper_body", "upper_body_with_head", "all", "scarf"]


def test_the_25_types_and_their_priors():
    assert len(PART_TYPES) == 25
    assert PART_TYPES["all"] == (tuple(range(1, 20)), 0.9)
    assert PART_TYPES["jumpsuits"][1] == 0.7 and PART_TYPES["sunglasses"][1] == 0.1 and PART_TYPES["face"][1] == 0.2
    assert set(PART_TYPES["head"][0]) == {L["hat"], L["hair"], L["sunglasses"], L["face"]}


def test_build_from_lip_format_equals_the_synthpose_export_and_is_deterministic(synth, tmp_path):
    a = build_pool(synth_sources(synth), tmp_path / "synth")
    b = build_pool(lip_sources(synth / "images/train", synth / "parsing/train"), tmp_path / "lip")
    c = build_pool(lip_sources(synth / "images/train", synth / "parsing/train"), tmp_path / "lip2")
    assert a.hash == b.hash == c.hash and a.images == 6 and not a.skipped
    assert sum(a.counts.values()) > 20
    for name in ("pool.json",):
        assert (tmp_path / "lip" / name).read_bytes() == (tmp_path / "lip2" / name).read_bytes()
    assert _tree_digest(tmp_path / "lip", "*.png") == _tree_digest(tmp_path / "synth", "*.png")
    pool = load_pool(tmp_path / "lip")
    assert pool.hash == a.hash and len(pool.records) == sum(a.counts.values())
    record = pool.records[0]
    rgba = pool.load_part(0)
    assert rgba.shape[:2] == (record["box"][3], record["box"][2]) and int((rgba[..., 3] > 0).sum()) == record["area"]


def test_bad_inputs_are_reported_by_name_and_skipped(synth, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    shutil.copytree(synth / "images/train", images)
    shutil.copytree(synth / "parsing/train", masks)
    small = np.asarray(Image.open(masks / "000001.png"))[:-4]
    Image.fromarray(small).save(masks / "000001.png")                       # size differs from its image
    bad = np.asarray(Image.open(masks / "000002.png")).copy()
    bad[0, 0] = 25
    Image.fromarray(bad).save(masks / "000002.png")                         # not a LIP id
    (images / "000003.jpg").write_bytes(b"not a jpeg")                      # unreadable image
    (masks / "000004.png").unlink()                                         # no mask
    result = build_pool(lip_sources(images, masks), tmp_path / "pool")
    skipped = dict(result.skipped)
    assert sorted(skipped) == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]
    assert "000001.png" in skipped["000001.jpg"] and "mask is" in skipped["000001.jpg"]
    assert "[25]" in skipped["000002.jpg"] and "000002.png" in skipped["000002.jpg"]
    assert "000003.jpg" in skipped["000003.jpg"]
    assert "no mask" in skipped["000004.jpg"]
    assert result.images == 2
    sources = {r["source"] for r in json.loads((tmp_path / "pool/pool.json").read_text())["parts"]}
    assert sources == {"000000.jpg", "000005.jpg"}


def test_a_changed_part_file_or_record_is_refused(synth, tmp_path):
    build_pool(synth_sources(synth), tmp_path / "pool")
    pool = load_pool(tmp_path / "pool")
    path = tmp_path / "pool" / pool.records[0]["file"]
    rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    rgba[0, 0, 0] ^= 1
    cv2.imwrite(str(path), rgba)
    with pytest.raises(PoolError, match="differs from the pool's record"):
        pool.load_part(0)
    doc = json.loads((tmp_path / "pool/pool.json").read_text())
    doc["parts"][0]["area"] += 1
    (tmp_path / "pool/pool.json").write_text(json.dumps(doc))
    with pytest.raises(PoolError, match="do not match its hash"):
        load_pool(tmp_path / "pool")


def test_parts_cli(synth, tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["parts", "synth", "--data", str(synth), "--out", str(tmp_path / "a"), "-q"])
    assert out.exit_code == 0, out.output
    out2 = runner.invoke(cli, ["parts", "build", "--images", str(synth / "images/train"), "--masks",
                               str(synth / "parsing/train"), "--out", str(tmp_path / "b"), "-q"])
    assert out2.exit_code == 0, out2.output
    assert json.loads((tmp_path / "a/pool.json").read_text())["hash"] == \
        json.loads((tmp_path / "b/pool.json").read_text())["hash"]
    again = runner.invoke(cli, ["parts", "synth", "--data", str(synth), "--out", str(tmp_path / "a"), "-q"])
    assert again.exit_code == 1 and "exists" in again.output
    val = tmp_path / "val_images"
    val.mkdir()
    refused = runner.invoke(cli, ["parts", "build", "--images", str(val), "--masks", str(val), "--out",
                                  str(tmp_path / "c")])
    assert refused.exit_code == 2 and "training split" in refused.output
    labels = runner.invoke(cli, ["synth", "--out", str(tmp_path / "s"), "--train", "2", "--val", "1",
                                 "--part-labels", "-q"])
    assert labels.exit_code == 0 and len(list((tmp_path / "s/parsing/val").glob("*.png"))) == 1
