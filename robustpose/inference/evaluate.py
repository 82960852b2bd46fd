"""Evaluate a checkpoint on clean and corrupted data: one predictions file per cell, in the layout ``eval`` scores.

``RUN_DIR/clean.json`` and ``RUN_DIR/<corruption>/<severity>.json`` (COCO results format; MPII: the metrics' json of
per-person joints), ``RUN_DIR/run.json`` (protocol, for the report and the leaderboard) and
``RUN_DIR/inference.json`` (what produced the predictions). Each cell is written atomically once finished, so a
rerun skips finished cells and resumes an interrupted evaluation; a rerun with a different checkpoint or protocol
into the same folder is refused instead of mixing runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from robustpose.corruptions import FIDELITY_VERSION, GROUPS, SEVERITIES
from robustpose.datasets.imageio import DEFAULT_JPEG_QUALITY
from robustpose.datasets.keypoints import keypoint_set
from robustpose.datasets.seeding import SEEDING_SCHEME
from robustpose.metrics import topdown_postprocess
from robustpose.models import LoadedModel
from robustpose.report.layout import RunMeta, write_json_atomic, write_run_meta

from .people import People, coco_gt_people, detection_people, mpii_people
from .sources import FolderImages, OnTheFlyImages, built_c_images, read_dataset_json
from .topdown import (
    ImageLoader,
    InferenceConfig,
    Predictions,
    StageTimes,
    coco_people_records,
    mpii_records,
    predict,
)

Cell = tuple[str, int] | None  # None = clean
DATASETS = ("coco", "ochuman", "mpii")


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate on (everything but the model and how to run it).

    Attributes:
        dataset: ``coco``, ``ochuman`` or ``mpii``.
        ann: annotation file (COCO-format json; MPII: HRNet-style json).
        images: folder of the clean images the annotation names.
        out: run folder receiving the predictions.
        boxes: ``gt`` or a COCO detection json (COCO/OCHuman only; MPII always uses its annotated centre/scale).
        det_score_threshold: detections below it are dropped (HRNet ``IMAGE_THRE``; 0 keeps all).
        corruptions, severities: the corrupted cells besides clean.
        data_c: a built -C set to read corrupted images from; ``None`` corrupts on the fly.
        base_seed, image_format, quality: on-the-fly seeding and encoding (build-c's defaults: 0, JPEG, 75).
        nms: OKS-NMS at 0.9 after rescoring (COCO/OCHuman).
    """

    dataset: str
    ann: Path
    images: Path
    out: Path
    boxes: str = "gt"
    det_score_threshold: float = 0.0
    corruptions: tuple[str, ...] = GROUPS["benchmark"]
    severities: tuple[int, ...] = SEVERITIES
    data_c: Path | None = None
    base_seed: int = 0
    image_format: str | None = "jpg"
    quality: int = DEFAULT_JPEG_QUALITY
    nms: bool = True

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.dataset == "mpii" and self.boxes != "gt":
            raise ValueError("MPII is evaluated on its annotated centre/scale: --boxes must be gt")
        bad = [s for s in self.severities if s not in SEVERITIES]
        if bad:
            raise ValueError(f"severities must lie in 1..5, got {bad}")

    def cells(self) -> list[Cell]:
        """Clean first, then every (corruption, severity)."""
        return [None, *((c, s) for c in self.corruptions for s in self.severities)]


def cell_file(out: Path, cell: Cell) -> Path:
    """``out/clean.json`` or ``out/<corruption>/<severity>.json``."""
    return Path(out) / ("clean.json" if cell is None else f"{cell[0]}/{cell[1]}.json")


def load_people(spec: EvalSpec, aspect_ratio: float) -> People:
    """The person boxes of ``spec`` (``aspect_ratio`` = network input width / height)."""
    data = json.loads(Path(spec.ann).read_text())
    if spec.dataset == "mpii":
        return mpii_people(data)
    if spec.boxes == "gt":
        return coco_gt_people(data, aspect_ratio)
    detections = json.loads(Path(spec.boxes).read_text())
    return detection_people(data, detections, aspect_ratio, spec.det_score_threshold)


def _protocol(spec: EvalSpec) -> tuple[str, str]:
    """(corruption_set, seeding) strings of ``run.json``; equal for on-the-fly and a built set made alike."""
    group = next((g for g, names in GROUPS.items() if set(names) == set(spec.corruptions)), None)
    names = group or ",".join(spec.corruptions)
    if spec.data_c is not None:
        record = read_dataset_json(spec.data_c)
        seeding = record["seeding"]
        seed = ("advmix-seed1" if record["layout"] == "advmix"
                else f"{seeding['scheme']} base {seeding['base_seed']}")
        return f"{record['fidelity_version']} {names}, {_encoding(record['format'], record['quality'])}", seed
    return (f"{FIDELITY_VERSION} {names}, {_encoding(spec.image_format, spec.quality)}",
            f"{SEEDING_SCHEME} base {spec.base_seed}")


def _encoding(fmt: str | None, quality: int | None) -> str:
    return {"jpg": f"JPEG q{quality}", "png": "PNG", None: "not encoded"}[fmt]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprint(loaded: LoadedModel, spec: EvalSpec, config: InferenceConfig) -> dict:
    corruption_set, seeding = _protocol(spec)
    return json.loads(json.dumps({  # as it reads back from inference.json
        "checkpoint": str(loaded.path), "checkpoint_sha256": _sha256(loaded.path), "meta": loaded.meta.to_dict(),
        "dataset": spec.dataset, "ann_sha256": _sha256(Path(spec.ann)),
        "boxes": spec.boxes if spec.boxes == "gt" else _sha256(Path(spec.boxes)),
        "det_score_threshold": spec.det_score_threshold, "nms": spec.nms,
        "corruption_set": corruption_set, "seeding": seeding,
        "flip_test": config.flip_test, "shift_heatmap": config.shift_heatmap, "amp": config.amp,
        "decode": config.decoder(loaded.meta),
    }))


def _check_resume(out: Path, fingerprint: dict) -> None:
    path = out / "inference.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        if diff:
            raise ValueError(f"{out} holds predictions of a different evaluation (differs in: {', '.join(diff)}); "
                             "use a new --out folder, or delete it to start over")
    else:
        write_json_atomic(path, fingerprint)


def image_source(spec: EvalSpec, cell: Cell) -> ImageLoader:
    """The image loader of one cell: clean, a built -C set, or on-the-fly corruption."""
    if cell is None:
        return FolderImages(Path(spec.images))
    corruption, severity = cell
    if spec.data_c is not None:
        return built_c_images(Path(spec.data_c), corruption, severity)
    return OnTheFlyImages(Path(spec.images), corruption, severity, spec.base_seed, spec.image_format, spec.quality)


def cell_records(spec: EvalSpec, pred: Predictions) -> list[dict]:
    """Predictions of one cell in the file format ``eval`` scores (COCO: rescored and OKS-NMS'd results)."""
    if spec.dataset == "mpii":
        return mpii_records(pred)
    return topdown_postprocess(coco_people_records(pred), nms_threshold=0.9 if spec.nms else None)


@dataclass
class EvalReport:
    """What :func:`evaluate_checkpoint` did: cells computed now, cells found finished, time per stage."""

    computed: list[Cell] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)


def evaluate_checkpoint(loaded: LoadedModel, spec: EvalSpec, config: InferenceConfig = InferenceConfig(),
                        progress: Callable[[Iterable[Cell], int], Iterable[Cell]] | None = None,
                        on_cell: Callable[[Cell, StageTimes], None] | None = None,
                        shard: tuple[int, int] = (0, 1)) -> EvalReport:
    """Predict every cell of ``spec`` with ``loaded`` and write the predictions files; finished cells are skipped.

    ``progress(cells, total)`` may wrap the loop over cells; ``on_cell(cell, times)`` is called after each
    computed cell (e.g. to show crops/s). ``shard=(rank, world_size)`` takes cells ``rank, rank + world_size, ...``
    (one process per GPU; every cell is its own file, so the shards need no merging). Returns an :class:`EvalReport`.
    """
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard}")
    wanted = keypoint_set(spec.dataset)
    if loaded.meta.num_joints != wanted.num_joints:
        raise ValueError(f"{loaded.path} predicts {loaded.meta.num_joints} joints ({loaded.meta.keypoints}) but "
                         f"{spec.dataset} is scored on {wanted.num_joints} ({wanted.name}); use a matching checkpoint")
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, _fingerprint(loaded, spec, config))
    meta = loaded.meta
    corruption_set, seeding = _protocol(spec)
    write_run_meta(out, RunMeta(
        model=meta.arch, method=meta.training_method, input_size=f"{meta.input_size[0]}x{meta.input_size[1]}",
        dataset=spec.dataset, boxes="gt" if spec.boxes == "gt" else Path(spec.boxes).stem,
        corruption_set=corruption_set, seeding=seeding, flip_test=config.flip_test,
    ))
    people = load_people(spec, meta.input_size[1] / meta.input_size[0])
    report = EvalReport()
    cells = spec.cells()[rank::world]
    for cell in (progress(cells, len(cells)) if progress else cells):
        path = cell_file(out, cell)
        if path.is_file():
            report.skipped.append(cell)
            continue
        pred = predict(loaded.model, meta, people, image_source(spec, cell), config)
        write_json_atomic(path, cell_records(spec, pred))
        report.computed.append(cell)
        for k, v in asdict(pred.times).items():
            setattr(report.times, k, getattr(report.times, k) + v)
        if on_cell is not None:
            on_cell(cell, pred.times)
    return report
