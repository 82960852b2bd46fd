"""The predictions directory that ``robustpose eval`` scores, and its ``run.json`` (see ``docs/metrics.md``).

::

    PREDS/
      run.json                     # RunMeta (optional; fields default to "unknown")
      clean.json                   # predictions on the clean images
      gaussian_noise/1.json ... 5.json
      ...                          # one folder per corruption (the 15 benchmark ones for mPC; extras allowed)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from robustpose.corruptions import CORRUPTIONS, SEVERITIES
from robustpose.datasets.imageio import write_atomic
from robustpose.metrics.robustness import RobustnessSummary

RUN_SCHEMA = "robustpose-run-v1"
DATASETS = ("coco", "ochuman", "mpii")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunMeta:
    """What produced a predictions directory; the leaderboard never mixes runs whose protocol differs.

    Attributes
    ----------
    model : str
        Architecture and weights, e.g. ``pose_hrnet_w32``.
    method : str
        Training method, e.g. ``standard``, ``advmix``.
    input_size : str
        Network input as the papers print it, height x width, e.g. ``256x192``.
    dataset : str
        ``coco``, ``ochuman`` or ``mpii``.
    boxes : str
        Person boxes (protocol): ``gt``, or the detection file, e.g. ``COCO_val2017_detections_AP_H_56_person``.
    corruption_set : str
        Corruption implementation and set, e.g. ``imagecorruptions-1.1.2+robustpose.1 benchmark``.
    seeding : str
        How corrupted images were seeded, e.g. ``sha256-v1 base 0`` or ``advmix-seed1``.
    flip_test : bool or None
        Whether predictions average the flipped image (None = unknown).
    select : str
        How the checkpoint's weights were chosen (``final``, ``clean``, ``holdout-c``: ``robustpose train
        --select``); not a protocol field, but shown beside the method.
    """

    model: str = UNKNOWN
    method: str = UNKNOWN
    input_size: str = UNKNOWN
    dataset: str = UNKNOWN
    boxes: str = UNKNOWN
    corruption_set: str = UNKNOWN
    seeding: str = UNKNOWN
    flip_test: bool | None = None
    select: str = UNKNOWN

    def protocol(self) -> dict:
        """The fields that must agree for two runs to share a leaderboard table."""
        return {k: getattr(self, k) for k in PROTOCOL_FIELDS}


PROTOCOL_FIELDS = ("dataset", "boxes", "corruption_set", "seeding", "flip_test")


def read_run_meta(preds_dir: Path) -> RunMeta:
    """``preds_dir/run.json`` as a :class:`RunMeta` (all fields unknown when the file is absent)."""
    path = Path(preds_dir) / "run.json"
    if not path.is_file():
        return RunMeta()
    data = json.loads(path.read_text())
    if data.get("schema", RUN_SCHEMA) != RUN_SCHEMA:
        raise ValueError(f"{path}: schema {data.get('schema')!r} is not {RUN_SCHEMA!r}")
    known = {f.name for f in fields(RunMeta)}
    unknown = sorted(set(data) - known - {"schema"})
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    return RunMeta(**{k: v for k, v in data.items() if k in known})


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as indented json to ``path`` atomically (temporary file + ``os.replace``)."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def write_run_meta(preds_dir: Path, meta: RunMeta) -> Path:
    """Write ``preds_dir/run.json`` (for producers of predictions, e.g. ``eval --ckpt``)."""
    path = Path(preds_dir) / "run.json"
    write_json_atomic(path, {"schema": RUN_SCHEMA, **asdict(meta)})
    return path


def discover_cells(preds_dir: Path) -> tuple[Path, dict[tuple[str, int], Path]]:
    """The clean file and the ``(corruption, severity) -> file`` map of a predictions directory.

    Raises
    ------
    ValueError
        No ``clean.json``, a folder that is no corruption name, or a file that is no severity 1..5.
    """
    preds_dir = Path(preds_dir)
    if not preds_dir.is_dir():
        raise ValueError(f"predictions directory {preds_dir} does not exist")
    clean = preds_dir / "clean.json"
    if not clean.is_file():
        raise ValueError(f"{clean} is missing: a predictions directory needs clean.json and "
                         "<corruption>/<severity>.json files (see docs/metrics.md)")
    cells: dict[tuple[str, int], Path] = {}
    for sub in sorted(p for p in preds_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name not in CORRUPTIONS:
            raise ValueError(f"{sub}: not a corruption name; expected one of {', '.join(CORRUPTIONS)}")
        for f in sorted(sub.glob("*.json")):
            if f.stem not in {str(s) for s in SEVERITIES}:
                raise ValueError(f"{f}: expected severity files 1.json .. 5.json")
            cells[sub.name, int(f.stem)] = f
    return clean, cells


@dataclass(frozen=True)
class RunResult:
    """Everything ``eval`` reports about one predictions directory.

    Attributes
    ----------
    meta : RunMeta
        From ``run.json`` (dataset filled in from the call).
    dataset, backend : str
        How it was scored.
    clean : dict
        Metric name -> value (percent) on clean data.
    cells : dict
        ``(corruption, severity) -> {metric: value}`` (percent), every cell found, extras included.
    summary : RobustnessSummary
        Of the headline metric (AP, or PCKh@0.5_mean for MPII) over the benchmark cells.
    """

    meta: RunMeta
    dataset: str
    backend: str
    clean: dict[str, float]
    cells: dict[tuple[str, int], dict[str, float]]
    summary: RobustnessSummary
