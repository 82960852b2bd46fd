"""2D/3D pose pairs for lifting: the ``data_3d_*.npz`` / ``data_2d_*_<source>.npz`` layout of VideoPose3D and
PoseAug, cameras, splits, and the flat arrays the lifters train on.

File layout (what :func:`write_h36m_npz` writes and the readers accept):

* ``data_3d_<name>.npz``: ``positions_3d`` = ``{subject: {action: (T, J, 3) float}}``, world coordinates in metres,
  J = 16 (this skeleton), 17 (VideoPose3D's cut) or 32 (Human3.6M mocap); and, in files robustpose writes,
  ``cameras`` = ``{subject: [camera, ...]}`` with each camera ``{"orientation": (4,) quaternion w, x, y, z
  (camera -> world), "translation": (3,) camera centre in world metres, "intrinsic": (9,) fx, fy, cx, cy, k1, k2,
  k3, p1, p2 in pixels, "res_w": int, "res_h": int}``. Human3.6M's own ``data_3d_h36m.npz`` has no cameras (the
  official code hard-codes them): pass them as a JSON file of the same ``{subject: [camera, ...]}`` shape.
* ``data_2d_<name>_<source>.npz``: ``positions_2d`` = ``{subject: {action: [(T, J, 2) pixels per camera]}}`` and
  ``metadata`` (``layout_name``, ``num_joints``, ``keypoints_symmetry``); J = 16 or 17.
* ``splits.json``: ``{split: [subject, ...]}`` with at least ``train`` and ``val``; every other split is a test
  split (``robustpose lift synth`` writes ``test``, ``test-pose``, ``test-view`` and ``test-body``).

A camera sees ``X_cam = R(q)^T (X_world - t)``. 2D inputs and intrinsics are normalised by the image width as the
official code does: ``u' = 2 u / w - 1``, ``v' = 2 v / w - h / w``.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustpose.datasets.imageio import write_atomic

from .skeleton import H36M17_TO_16, H36M32_TO_16, JOINTS, LEFT, NUM_JOINTS, RIGHT

JOINT_MAPS = {16: tuple(range(16)), 17: H36M17_TO_16, 32: H36M32_TO_16}
SPLITS_FILE = "splits.json"


class LiftDataError(ValueError):
    """A lifting data file that cannot be used; the message names the file and the fix."""


@dataclass
class LiftSet:
    """Flat 2D/3D pairs of one split.

    Attributes
    ----------
    pose3d : (N, 16, 3) float32
        Camera coordinates, metres (absolute: the root keeps its distance to the camera).
    pose2d : (N, 16, 2) float32
        Keypoints normalised by the image width (see the module docstring).
    intrinsics : (N, 9) float32
        ``fx, fy, cx, cy, k1, k2, k3, p1, p2`` normalised the same way (focal lengths and centres).
    res : (N, 2) float32
        Image width and height in pixels.
    subject : (N,) str
        Subject of each pair.
    """

    pose3d: np.ndarray
    pose2d: np.ndarray
    intrinsics: np.ndarray
    res: np.ndarray
    subject: np.ndarray

    def __len__(self) -> int:
        return len(self.pose3d)

    def subset(self, index: np.ndarray) -> LiftSet:
        return LiftSet(self.pose3d[index], self.pose2d[index], self.intrinsics[index], self.res[index],
                       self.subject[index])


def normalize_screen(uv: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Pixels ``(..., 2)`` -> width-normalised coordinates; ``w``, ``h`` broadcast against ``uv[..., 0]``."""
    w, h = np.asarray(w, np.float64), np.asarray(h, np.float64)
    return np.stack([uv[..., 0] / w * 2 - 1, uv[..., 1] / w * 2 - h / w], axis=-1)


def pixels(uv_norm: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize_screen`."""
    w, h = np.asarray(w, np.float64), np.asarray(h, np.float64)
    return np.stack([(uv_norm[..., 0] + 1) * w / 2, (uv_norm[..., 1] + h / w) * w / 2], axis=-1)


def normalize_intrinsics(intrinsic: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixel intrinsics (9,) -> width-normalised ones (focal lengths x 2/w, centre as a point; distortion as is)."""
    out = np.asarray(intrinsic, np.float64).copy()
    out[:2] = out[:2] / w * 2
    out[2:4] = normalize_screen(out[2:4], w, h)
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``w, x, y, z`` -> rotation matrix (3, 3)."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> unit quaternion ``w, x, y, z`` (w >= 0)."""
    w = np.sqrt(max(0.0, 1 + np.trace(r))) / 2
    x = np.copysign(np.sqrt(max(0.0, 1 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    return np.array([w, x, y, z])


def world_to_camera(x: np.ndarray, camera: dict[str, Any]) -> np.ndarray:
    """World joints ``(..., 3)`` -> the camera's coordinates, ``R^T (x - t)``."""
    r = quat_to_matrix(camera["orientation"])
    return (np.asarray(x, np.float64) - np.asarray(camera["translation"], np.float64)) @ r


_SAFE_GLOBALS = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")}
_SAFE_GLOBALS |= {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
                  ("numpy._core.numeric", "_frombuffer"), ("collections", "OrderedDict")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only (the layout's pickled containers), never arbitrary objects."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _read_npy(raw: bytes) -> np.ndarray:
    """An ``.npy`` member's array; object arrays go through :class:`_ArrayUnpickler`."""
    fmt = np.lib.format
    fp = io.BytesIO(raw)
    version = fmt.read_magic(fp)
    _, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fp)
    if dtype.hasobject:
        return _ArrayUnpickler(fp).load()
    return fmt.read_array(io.BytesIO(raw), allow_pickle=False)


def _load_npz_dict(path: Path, key: str) -> tuple[Any, dict[str, Any]]:
    """``(path[key], {other pickled 0-d members})`` of an ``.npz`` whose members are pickled dicts, read without
    trusting the pickles (only containers and arrays are rebuilt)."""
    if not path.is_file():
        raise LiftDataError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as z:
            members = {n[:-4]: n for n in z.namelist() if n.endswith(".npy")}
            if key not in members:
                kind = "3d" if key == "positions_3d" else "2d"
                raise LiftDataError(f"{path} has no {key!r} array (it has {sorted(members)}); is it a "
                                    f"data_{kind}_*.npz file?")
            arrays = {k: _read_npy(z.read(n)) for k, n in members.items()}
    except LiftDataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as err:
        raise LiftDataError(f"{path} is not a readable .npz file of this layout ({err})") from err
    unwrap = {k: v.item() if isinstance(v, np.ndarray) and v.dtype == object and v.shape == () else v
              for k, v in arrays.items()}
    value = unwrap.pop(key)
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise LiftDataError(f"{path}: {key!r} is not a {{subject: {{action: array}}}} dict")
    return value, unwrap


def _to16(array: np.ndarray, path: Path, where: str, dims: int) -> np.ndarray:
    """A ``(T, J, dims)`` array with J in 16/17/32, cut to the 16 joints; bad shapes or NaNs name the file."""
    a = np.asarray(array, np.float64)
    if a.ndim != 3 or a.shape[2] != dims:
        raise LiftDataError(f"{path}: {where} has shape {a.shape}, expected (frames, joints, {dims})")
    if a.shape[1] not in JOINT_MAPS:
        raise LiftDataError(f"{path}: {where} has {a.shape[1]} joints; expected 16 (this skeleton), 17 "
                            "(VideoPose3D's Human3.6M cut) or 32 (Human3.6M motion capture)")
    a = a[:, list(JOINT_MAPS[a.shape[1]])]
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise LiftDataError(f"{path}: {where} holds NaN or infinite values (first at frame {bad[0]}, joint "
                            f"{bad[1]} of the 16); remove or fill those frames")
    return a


def read_3d_npz(path: str | Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, list[dict[str, Any]]]]:
    """``(positions {subject: {action: (T, 16, 3) world metres}}, cameras {subject: [camera]} or {})``."""
    path = Path(path)
    positions, other = _load_npz_dict(path, "positions_3d")
    out = {str(s): {str(a): _to16(v, path, f"positions_3d[{s!r}][{a!r}]", 3) for a, v in acts.items()}
           for s, acts in positions.items()}
    return out, other.get("cameras", {})


def read_2d_npz(path: str | Path) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict[str, Any]]:
    """``(positions {subject: {action: [(T, 16, 2) pixels per camera]}}, metadata)``."""
    path = Path(path)
    positions, other = _load_npz_dict(path, "positions_2d")
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for s, acts in positions.items():
        out[str(s)] = {}
        for a, cams in acts.items():
            if not isinstance(cams, (list, tuple)):
                raise LiftDataError(f"{path}: positions_2d[{s!r}][{a!r}] is not a list of per-camera arrays")
            out[str(s)][str(a)] = [_to16(v, path, f"positions_2d[{s!r}][{a!r}][{c}]", 2) for c, v in
                                   enumerate(cams)]
    return out, other.get("metadata", {})


def read_cameras_json(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Cameras ``{subject: [camera]}`` from a JSON file (for Human3.6M's own 3D file, which has none)."""
    path = Path(path)
    try:
        cams = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LiftDataError(f"{path} is not a readable JSON cameras file ({err})") from err
    if not isinstance(cams, dict):
        raise LiftDataError(f"{path}: expected {{subject: [camera, ...]}}")
    return cams


def _check_camera(camera: Any, path: Path, where: str) -> None:
    keys = ("orientation", "translation", "intrinsic", "res_w", "res_h")
    if not isinstance(camera, dict) or any(k not in camera for k in keys):
        raise LiftDataError(f"{path}: camera {where} needs {', '.join(keys)}")
    if np.shape(camera["intrinsic"]) != (9,) or np.shape(camera["orientation"]) != (4,):
        raise LiftDataError(f"{path}: camera {where} needs a 9-value intrinsic and a 4-value orientation")


def pair_sets(path_3d: str | Path, path_2d: str | Path, subjects: list[str],
              cameras: dict[str, list[dict[str, Any]]] | None = None, cameras_path: str | Path | None = None
              ) -> LiftSet:
    """The flat :class:`LiftSet` of ``subjects``: every (action, camera, frame), 3D in that camera's coordinates.

    3D sequences longer than their 2D ones are cut to the 2D length (as VideoPose3D does for Human3.6M's motion
    capture); a 2D sequence longer than its 3D one, a missing subject/action or a camera count that differs from the
    cameras' is a :class:`LiftDataError` naming the file.
    """
    path_3d, path_2d = Path(path_3d), Path(path_2d)
    pos3d, own_cams = read_3d_npz(path_3d)
    pos2d, _ = read_2d_npz(path_2d)
    cams = cameras if cameras is not None else own_cams
    cam_file = Path(cameras_path) if cameras_path is not None else path_3d
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pose3d", "pose2d", "intrinsics", "res", "subject")}
    for s in subjects:
        for path, data in ((path_3d, pos3d), (path_2d, pos2d)):
            if s not in data:
                raise LiftDataError(f"{path} has no subject {s!r} (it has {sorted(data)}); check the split")
        if s not in cams:
            raise LiftDataError(f"{cam_file} has no cameras for subject {s!r}; Human3.6M's own 3D file has "
                                "none: pass them with --cameras FILE.json")
        for action, seq3d in pos3d[s].items():
            if action not in pos2d[s]:
                raise LiftDataError(f"{path_2d} has no action {action!r} of subject {s!r} that {path_3d.name} has")
            views = pos2d[s][action]
            if len(views) != len(cams[s]):
                raise LiftDataError(f"{path_2d}: {s}/{action} has {len(views)} camera(s), the cameras of {s} are "
                                    f"{len(cams[s])}")
            for c, (seq2d, camera) in enumerate(zip(views, cams[s])):
                _check_camera(camera, cam_file, f"{s}[{c}]")
                if len(seq2d) > len(seq3d):
                    raise LiftDataError(f"{path_2d}: {s}/{action} camera {c} has {len(seq2d)} frames, the 3D file "
                                        f"{path_3d.name} has {len(seq3d)}; the 2D and 3D files do not match")
                n = len(seq2d)
                w, h = float(camera["res_w"]), float(camera["res_h"])
                parts["pose3d"].append(world_to_camera(seq3d[:n], camera))
                parts["pose2d"].append(normalize_screen(seq2d, w, h))
                parts["intrinsics"].append(np.tile(normalize_intrinsics(camera["intrinsic"], w, h), (n, 1)))
                parts["res"].append(np.tile([w, h], (n, 1)))
                parts["subject"].append(np.full(n, s))
    if not parts["pose3d"]:
        raise LiftDataError(f"{path_3d}: no frames for subjects {subjects}")
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return LiftSet(cat["pose3d"].astype(np.float32), cat["pose2d"].astype(np.float32),
                   cat["intrinsics"].astype(np.float32), cat["res"].astype(np.float32), cat["subject"])


def _npz_bytes(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.array(v, dtype=object) for k, v in arrays.items()})
    return buf.getvalue()


def write_h36m_npz(path_3d: str | Path, path_2d: str | Path, positions_3d: dict[str, dict[str, np.ndarray]],
                   positions_2d: dict[str, dict[str, list[np.ndarray]]],
                   cameras: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Write the two files of the layout (atomically), with 16-joint metadata and optional cameras."""
    three: dict[str, Any] = {"positions_3d": positions_3d}
    if cameras is not None:
        three["cameras"] = cameras
    write_atomic(path_3d, _npz_bytes(**three))
    meta = {"layout_name": "h36m16", "num_joints": NUM_JOINTS, "keypoints_symmetry": [list(LEFT), list(RIGHT)],
            "joints": list(JOINTS)}
    write_atomic(path_2d, _npz_bytes(positions_2d=positions_2d, metadata=meta))


@dataclass(frozen=True)
class LiftData:
    """Where a lifting data set lives: the 3D and 2D files, the splits and optional cameras."""

    path_3d: Path
    path_2d: Path
    splits: dict[str, list[str]]
    cameras_path: Path | None = None

    @property
    def test_splits(self) -> list[str]:
        return [s for s in self.splits if s not in ("train", "val")]

    def load(self, split: str) -> LiftSet:
        cams = read_cameras_json(self.cameras_path) if self.cameras_path else None
        return pair_sets(self.path_3d, self.path_2d, self.splits[split], cams, self.cameras_path)


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise LiftDataError(f"{folder}: expected one {pattern} file, found {len(found)}; name the files with "
                            "--data FILE_3D --data-2d FILE_2D --splits FILE")
    return found[0]


def resolve_data(data: str | Path, data_2d: str | Path | None = None, splits: str | Path | None = None,
                 cameras: str | Path | None = None) -> LiftData:
    """A ``robustpose lift synth`` folder (``data_3d_*.npz``, ``data_2d_*_gt.npz``, ``splits.json``) or the
    3D file with ``data_2d`` and ``splits`` given."""
    data = Path(data)
    folder = data if data.is_dir() else data.parent
    path_3d = _one(data, "data_3d_*.npz") if data.is_dir() else data
    path_2d = Path(data_2d) if data_2d else _one(folder, "data_2d_*_gt.npz")
    split_path = Path(splits) if splits else folder / SPLITS_FILE
    if not split_path.is_file():
        raise LiftDataError(f"{split_path}: no splits file; pass --splits FILE.json ({{\"train\": [subjects], "
                            "\"val\": [...], \"test\": [...]}})")
    try:
        split_map = json.loads(split_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LiftDataError(f"{split_path} is not readable JSON ({err})") from err
    if not isinstance(split_map, dict) or not {"train", "val"} <= set(split_map) or not all(
            isinstance(v, list) and v for v in split_map.values()):
        raise LiftDataError(f"{split_path}: expected {{split: [subject, ...]}} with non-empty 'train' and 'val'")
    overlap = set(split_map["val"]) & set(split_map["train"])
    if overlap:
        raise LiftDataError(f"{split_path}: subjects {sorted(overlap)} are in both 'train' and 'val'")
    return LiftData(path_3d, path_2d, {k: [str(s) for s in v] for k, v in split_map.items()},
                    Path(cameras) if cameras else None)
