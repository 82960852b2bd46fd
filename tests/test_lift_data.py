"""The npz layout readers on fixture files written here with plain numpy (VideoPose3D's layout: 32-joint 3D in
world coordinates, 17-joint 2D per camera), cameras, bad input as one-line errors naming the file, and the
`lift synth` splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from robustpose.cli.main import cli
from robustpose.lift.data import (
    LiftDataError,
    normalize_screen,
    pair_sets,
    pixels,
    read_2d_npz,
    read_3d_npz,
    resolve_data,
)
from robustpose.lift.skeleton import bone_lengths, project
from robustpose.lift.synth import BONE_LENGTHS, LiftSynthConfig, write_synth

KEEP32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 15, 17, 18, 19, 25, 26, 27]  # VideoPose3D's 17 minus the nose


def _camera(angle_deg: float) -> dict:
    quat_xyzw = Rotation.from_euler("y", angle_deg, degrees=True).as_quat()
    return {"orientation": np.r_[quat_xyzw[3], quat_xyzw[:3]], "translation": np.array([0.5, -0.2, -5.0]),
            "intrinsic": np.array([1000.0, 1000.0, 500.0, 500.0, 0, 0, 0, 0, 0]), "res_w": 1000, "res_h": 1000}


def _write(tmp: Path, frames3d: int = 5, frames2d: int = 5, joints3d: int = 32, joints2d: int = 17,
           nan: bool = False) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    world = rng.normal(size=(frames3d, joints3d, 3))
    if nan:
        world[2, 6, 1] = np.nan  # mocap joint 6 is joint 4 (LHip) of the 16
    cams = {"S1": [_camera(0.0), _camera(30.0)]}
    kps = [rng.normal(size=(frames2d, joints2d, 2)) * 100 + 500 for _ in cams["S1"]]
    np.savez(tmp / "data_3d_h36m.npz", positions_3d=np.array({"S1": {"Walk": world}}, dtype=object),
             cameras=np.array(cams, dtype=object))
    np.savez(tmp / "data_2d_h36m_cpn.npz", positions_2d=np.array({"S1": {"Walk": kps}}, dtype=object),
             metadata=np.array({"layout_name": "h36m", "num_joints": joints2d}, dtype=object))
    return tmp / "data_3d_h36m.npz", tmp / "data_2d_h36m_cpn.npz"


def test_readers_cut_to_16_joints(tmp_path) -> None:
    p3, p2 = _write(tmp_path)
    raw3 = np.load(p3, allow_pickle=True)["positions_3d"].item()["S1"]["Walk"]
    raw2 = np.load(p2, allow_pickle=True)["positions_2d"].item()["S1"]["Walk"]
    pos3, cams = read_3d_npz(p3)
    np.testing.assert_array_equal(pos3["S1"]["Walk"], raw3[:, KEEP32])
    pos2, meta = read_2d_npz(p2)
    np.testing.assert_array_equal(pos2["S1"]["Walk"][1], raw2[1][:, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14,
                                                                       15, 16]])
    assert meta["num_joints"] == 17 and len(cams["S1"]) == 2


def test_pairs_are_in_camera_coordinates(tmp_path) -> None:
    p3, p2 = _write(tmp_path)
    pairs = pair_sets(p3, p2, ["S1"])
    world = read_3d_npz(p3)[0]["S1"]["Walk"]
    cam = _camera(30.0)
    r = Rotation.from_quat(np.r_[cam["orientation"][1:], cam["orientation"][0]]).as_matrix()
    expected = (r.T @ (world - cam["translation"]).reshape(-1, 3).T).T.reshape(world.shape)
    np.testing.assert_allclose(pairs.pose3d[5:], expected, rtol=1e-5, atol=1e-5)
    assert len(pairs) == 10 and pairs.intrinsics[0, 0] == pytest.approx(2.0)  # f / w * 2
    uv = read_2d_npz(p2)[0]["S1"]["Walk"][0]
    np.testing.assert_allclose(pixels(pairs.pose2d[:5], 1000, 1000), uv, rtol=1e-5)
    np.testing.assert_allclose(normalize_screen(np.array([[1000.0, 500.0]]), 1000, 1000), [[1.0, 0.0]])


def test_longer_mocap_is_cut_to_the_2d_length(tmp_path) -> None:
    p3, p2 = _write(tmp_path, frames3d=7, frames2d=5)
    assert len(pair_sets(p3, p2, ["S1"])) == 10


@pytest.mark.parametrize("kwargs, message", [
    ({"frames3d": 4, "frames2d": 5},
     "has 5 frames, the 3D file data_3d_h36m.npz has 4; the 2D and 3D files do not match"),
    ({"joints3d": 20}, "has 20 joints; expected 16"),
    ({"joints2d": 18}, "has 18 joints; expected 16"),
    ({"nan": True}, "holds NaN or infinite values (first at frame 2, joint 4 of the 16)"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, kwargs, message) -> None:
    p3, p2 = _write(tmp_path, **kwargs)
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["S1"], "val": ["S1x"], "test": ["S1"]}))
    with pytest.raises(LiftDataError) as err:
        pair_sets(p3, p2, ["S1"])
    assert message in str(err.value) and str(tmp_path) in str(err.value)
    runner = CliRunner()
    done = runner.invoke(cli, ["lift", "train", "standard", "--data", str(p3), "--data-2d", str(p2), "--splits",
                               str(tmp_path / "splits.json"), "--out", str(tmp_path / "run")])
    assert done.exit_code == 1
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("Error: ")


def test_other_bad_files(tmp_path) -> None:
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(LiftDataError, match="x.npz is not a readable .npz"):
        read_3d_npz(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", something=np.zeros(3))
    with pytest.raises(LiftDataError, match="y.npz has no 'positions_3d' array"):
        read_3d_npz(tmp_path / "y.npz")
    p3, p2 = _write(tmp_path)
    with pytest.raises(LiftDataError, match="has no subject 'S9'"):
        pair_sets(p3, p2, ["S9"])


def test_untrusted_pickles_are_refused(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    np.savez(tmp_path / "e.npz", positions_3d=np.array({"S1": {"a": Evil()}}, dtype=object))
    with pytest.raises(LiftDataError, match="refused global builtins.print"):
        read_3d_npz(tmp_path / "e.npz")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synth(out, LiftSynthConfig(train_subjects=2, train_frames=60, test_subjects=2, test_frames=60))
    return out


def test_synth_pairs_are_exact_projections(synth) -> None:
    data = resolve_data(synth)
    assert data.test_splits == ["test", "test-pose", "test-view", "test-body"]
    subjects = [s for v in data.splits.values() for s in v]
    assert len(subjects) == len(set(subjects))
    for split in data.splits:
        pairs = data.load(split)
        proj = project(torch.as_tensor(pairs.pose3d, dtype=torch.float64),
                       torch.as_tensor(pairs.intrinsics, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(proj, pairs.pose2d, atol=1e-4)
        assert (pairs.pose3d[..., 2] > 2).all() and (np.abs(pairs.pose2d) <= 1.1).all()


def _elevation(pairs) -> np.ndarray:
    """Angle (degrees) between the camera's viewing axis and the body's up axis (hip -> thorax) minus 90."""
    up = pairs.pose3d[:, 8] - pairs.pose3d[:, 0]
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    return np.degrees(np.arcsin(np.clip(-up[:, 2], -1, 1)))  # camera z is the viewing axis


def test_synth_shifts(synth) -> None:
    data = resolve_data(synth)
    train, body, view, pose = (data.load(s) for s in ("train", "test-body", "test-view", "test-pose"))
    train_len, body_len = bone_lengths(torch.as_tensor(train.pose3d)), bone_lengths(torch.as_tensor(body.pose3d))
    thigh = np.asarray(BONE_LENGTHS)[1]
    assert train_len[:, 1].min() > 0.8 * thigh and train_len[:, 1].max() < 1.25 * thigh
    ratio = (body_len[:, 1] / body_len[:, 10]).numpy()  # leg / upper-arm proportion changes in test-body
    base = (train_len[:, 1] / train_len[:, 10]).numpy()
    assert np.abs(ratio - base.mean()).mean() > 3 * np.abs(base - base.mean()).mean()
    assert np.median(np.abs(_elevation(view))) > np.median(np.abs(_elevation(train))) + 15
    knee = np.degrees(np.arccos(np.clip(np.sum(
        (pose.pose3d[:, 1] - pose.pose3d[:, 2]) * (pose.pose3d[:, 3] - pose.pose3d[:, 2]), -1)
        / bone_lengths(torch.as_tensor(pose.pose3d))[:, 1:3].prod(1).numpy(), -1, 1)))
    knee_train = np.degrees(np.arccos(np.clip(np.sum(
        (train.pose3d[:, 1] - train.pose3d[:, 2]) * (train.pose3d[:, 3] - train.pose3d[:, 2]), -1)
        / bone_lengths(torch.as_tensor(train.pose3d))[:, 1:3].prod(1).numpy(), -1, 1)))
    assert knee_train.min() >= 180 - 70 - 1e-3 and knee.max() <= 180 - 75 + 1e-3  # disjoint knee flexion ranges


def test_synth_is_seeded(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_synth(a, LiftSynthConfig(train_subjects=1, train_frames=5, test_subjects=1, test_frames=5))
    write_synth(b, LiftSynthConfig(train_subjects=1, train_frames=5, test_subjects=1, test_frames=5))
    assert (a / "data_3d_synth.npz").read_bytes() == (b / "data_3d_synth.npz").read_bytes()
    runner = CliRunner()
    done = runner.invoke(cli, ["lift", "synth", "--out", str(a)])
    assert done.exit_code == 1 and "--overwrite" in done.output


def test_eval_refuses_what_is_not_a_lifting_checkpoint(synth, tmp_path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "image.pth")
    runner = CliRunner()
    done = runner.invoke(cli, ["lift", "eval", "--ckpt", str(tmp_path / "image.pth"), "--data", str(synth),
                               "--out", str(tmp_path / "ev")])
    lines = done.output.strip().splitlines()
    assert done.exit_code == 1 and len(lines) == 1
    assert "image.pth is not a robustpose lifting checkpoint" in lines[0]
    assert not (tmp_path / "ev").exists()
