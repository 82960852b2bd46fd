"""Evaluate a checkpoint on clean and corrupted data: one predictions file per cell, in the layout ``eval`` scores.

``RUN_DIR/clean.json`` and ``RUN_DIR/<corruption>/<severity>.json`` (COCO results format; MPII: the metrics' json of
per-person joints), ``RUN_DIR/run.json`` (protocol, for the report and the leaderboard) and
``RUN_DIR/inference.json`` (what produced the predictions). Each cell is written atomically once finished, so a
rerun skips finished cells and resumes an interrupted evaluation; a rerun with a different checkpoint or protocol
into the same folder is refused instead of mixing runs (the message lists the settings that differ;
``overwrite=True`` replaces the old predictions, and only those files).

Everything that can be checked is checked before the first crop is predicted (:func:`preflight`): the annotation
file's schema, that every image it names exists, that a built -C set holds every needed cell, and that the network
accepts its input size. A failed check raises :class:`EvalInputError` naming the file or option, and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from robustpose.corruptions import FIDELITY_VERSION, GROUPS, SEVERITIES
from robustpose.datasets.imageio import DEFAULT_JPEG_QUALITY, ImageReadError
from robustpose.datasets.keypoints import keypoint_set
from robustpose.datasets.readers import (
    AnnotationError,
    image_names,
    load_json,
    resolve_image,
)
from robustpose.datasets.seeding import SEEDING_SCHEME
from robustpose.metrics import topdown_postprocess
from robustpose.models import LoadedModel
from robustpose.report.layout import UNKNOWN, RunMeta, write_json_atomic, write_run_meta

from .people import People, coco_gt_people, detection_people, mpii_people
from .sources import (
    FolderImages,
    OnTheFlyImages,
    built_c_images,
    cell_image_path,
    read_dataset_json,
)
from .topdown import (
    ImageLoader,
    InferenceConfig,
    Predictions,
    StageTimes,
    coco_people_records,
    heatmaps,
    mpii_records,
    normalise,
    predict,
)

Cell = tuple[str, int] | None  # None = clean
DATASETS = ("coco", "ochuman", "mpii")
PREDICTION_FILES = ("inference.json", "run.json")  # besides the cells; what overwrite=True removes
_SHOWN = 3  # missing files named in a message


class EvalInputError(ValueError):
    """An input of the evaluation is unusable (annotation, images, -C set, input size, run folder); the message
    names the file or option and what to do."""


class InputSizeError(EvalInputError):
    """The network cannot take the input size (``--input-size``) it was asked to run at."""


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
    """The person boxes of ``spec`` (``aspect_ratio`` = network input width / height).

    Raises :class:`~robustpose.datasets.readers.AnnotationError` naming the annotation or detection file when it is
    not valid JSON or lacks a field the dataset needs.
    """
    image_names(spec.dataset, spec.ann, spec.images)  # schema of the image list, with hints (e.g. MPII vs COCO)
    data = load_json(spec.ann)
    what, field_file = f"{spec.dataset} annotation file", spec.ann
    try:
        if spec.dataset == "mpii":
            return mpii_people(data)
        if spec.boxes == "gt":
            return coco_gt_people(data, aspect_ratio)
        detections = load_json(spec.boxes, "detection file", "--boxes")
        what, field_file = "COCO detection results file (a list of image_id, bbox, score)", spec.boxes
        return detection_people(data, detections, aspect_ratio, spec.det_score_threshold)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise AnnotationError(f"{field_file} is not a valid {what} ({detail})") from exc


def _first(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def check_images(spec: EvalSpec, people: People) -> None:
    """Every image the people live in exists under ``spec.images``; else :class:`EvalInputError`."""
    names = list(dict.fromkeys(people.images))
    missing = [n for n in names if not resolve_image(spec.images, n).is_file()]
    if missing:
        raise EvalInputError(f"{len(missing)} of the {len(names)} images named by {spec.ann} are not in "
                             f"{spec.images} ({_first(missing)}); check --images")


def check_data_c(spec: EvalSpec, people: People, cells: list[Cell]) -> None:
    """A built -C set (``spec.data_c``) holds every corrupted cell in ``cells`` with all its images."""
    if spec.data_c is None:
        return
    record = read_dataset_json(spec.data_c)
    wanted = [c for c in cells if c is not None]
    absent = [f"{c}/{s}" for c, s in wanted
              if c not in record["corruptions"] or s not in record["severities"]]
    if absent:
        raise EvalInputError(f"{spec.data_c} lacks {len(absent)} of the {len(wanted)} cells to evaluate "
                             f"({_first(absent)}); it holds {', '.join(record['corruptions'])} at severities "
                             f"{','.join(map(str, record['severities']))}: pass matching --corruptions/--severities "
                             "or build the missing cells with build-c")
    names = list(dict.fromkeys(people.images))
    incomplete = [f"{c}/{s}" for c, s in wanted
                  if not all(cell_image_path(spec.data_c, record, c, s, n).is_file() for n in names)]
    if incomplete:
        raise EvalInputError(f"{spec.data_c} is missing images of {len(incomplete)} cell(s) ({_first(incomplete)}); "
                             "finish it by rerunning its build-c command, then `robustpose verify-c`")


def check_forward(loaded: LoadedModel, config: InferenceConfig) -> None:
    """One blank crop through the network: its heatmaps must have the size the metadata promises.

    Catches an input size the architecture cannot take (HRNet and SimpleBaseline need sides divisible by 32, the
    network's stride) before any image is read.
    """
    import torch

    from .topdown import resolve_device

    meta = loaded.meta
    h, w = meta.input_size
    size = f"{h}x{w}"
    blank = torch.zeros((1, h, w, 3), dtype=torch.uint8, device=resolve_device(config.device))
    try:
        out = heatmaps(loaded.model, normalise(blank, meta), meta, replace(config, flip_test=False))
    except (RuntimeError, ValueError) as exc:
        raise InputSizeError(f"{loaded.path} ({meta.arch}) cannot take {size} inputs: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; use --input-size "
                             "with both sides divisible by 32, e.g. 256x192") from exc
    if tuple(out.shape[2:]) != tuple(meta.heatmap_size):
        raise InputSizeError(f"{loaded.path} ({meta.arch}) gives {out.shape[2]}x{out.shape[3]} heatmaps for "
                             f"{size} inputs, not the {meta.heatmap_size[0]}x{meta.heatmap_size[1]} its metadata "
                             "says: use --input-size with both sides divisible by 32 (e.g. 256x192), or pass "
                             "--heatmap-size")


def preflight(loaded: LoadedModel, spec: EvalSpec, config: InferenceConfig, cells: list[Cell]) -> People:
    """Every check that needs no prediction, in the order a user fixes them; returns the people to predict."""
    wanted = keypoint_set(spec.dataset)
    if loaded.meta.num_joints != wanted.num_joints:
        raise EvalInputError(f"{loaded.path} predicts {loaded.meta.num_joints} joints ({loaded.meta.keypoints}) "
                             f"but {spec.dataset} is scored on {wanted.num_joints} ({wanted.name}); use a matching "
                             "checkpoint")
    people = load_people(spec, loaded.meta.input_size[1] / loaded.meta.input_size[0])
    check_images(spec, people)
    check_data_c(spec, people, cells)
    check_forward(loaded, config)
    return people


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


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def describe_differences(old: dict, new: dict) -> list[str]:
    """``name (was A, now B)`` for each setting that differs between two fingerprints, sorted by name."""
    return [f"{k} (was {_short(old.get(k))}, now {_short(new.get(k))})"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def prediction_files(out: Path) -> list[Path]:
    """The files an earlier evaluation wrote into ``out``: its records and every cell's predictions."""
    files = [out / name for name in PREDICTION_FILES] + [out / "clean.json"]
    files += [p for p in out.glob("*/*.json") if p.parent.name in GROUPS["all"] and p.stem.isdigit()]
    return [p for p in files if p.is_file()]


def check_resume(out: Path, fingerprint: dict, overwrite: bool = False) -> None:
    """Refuse an ``out`` holding another evaluation's predictions, naming the settings that differ.

    With ``overwrite`` the old predictions files are deleted instead (nothing else in ``out`` is touched).
    """
    path = out / "inference.json"
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalInputError(f"{path} is unreadable ({exc}); rerun with --overwrite to replace it") from exc
    diff = describe_differences(old, fingerprint)
    if diff and not overwrite:
        raise EvalInputError(f"{out} holds predictions of a different evaluation; settings that differ: "
                             f"{'; '.join(diff)}; rerun with --overwrite to replace them, or use another --out")
    if diff:
        for file in prediction_files(out):
            file.unlink()


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


def _worker_message(exc: Exception) -> str:
    """The original message of an error re-raised from a DataLoader worker (torch appends the worker's traceback)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):
        return lines[-1].split(": ", 1)[-1]
    return lines[0] if lines else type(exc).__name__


def evaluate_checkpoint(loaded: LoadedModel, spec: EvalSpec, config: InferenceConfig = InferenceConfig(),
                        progress: Callable[[Iterable[Cell], int], Iterable[Cell]] | None = None,
                        on_cell: Callable[[Cell, StageTimes], None] | None = None,
                        shard: tuple[int, int] = (0, 1), overwrite: bool = False) -> EvalReport:
    """Predict every cell of ``spec`` with ``loaded`` and write the predictions files; finished cells are skipped.

    ``progress(cells, total)`` may wrap the loop over cells; ``on_cell(cell, times)`` is called after each
    computed cell (e.g. to show crops/s). ``shard=(rank, world_size)`` takes cells ``rank, rank + world_size, ...``
    (one process per GPU; every cell is its own file, so the shards need no merging). ``overwrite`` replaces the
    predictions of a different evaluation found in ``spec.out`` (else that is an :class:`EvalInputError`).
    Every input is checked (:func:`preflight`) before anything is written. Returns an :class:`EvalReport`.
    """
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard}")
    out = Path(spec.out)
    fingerprint = _fingerprint(loaded, spec, config)
    check_resume(out, fingerprint, overwrite)
    cells = spec.cells()[rank::world]
    todo = [c for c in cells if not cell_file(out, c).is_file()]
    people = preflight(loaded, spec, config, todo)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "inference.json").is_file():
        write_json_atomic(out / "inference.json", fingerprint)
    meta = loaded.meta
    corruption_set, seeding = _protocol(spec)
    write_run_meta(out, RunMeta(
        model=meta.arch, method=meta.training_method, input_size=f"{meta.input_size[0]}x{meta.input_size[1]}",
        dataset=spec.dataset, boxes="gt" if spec.boxes == "gt" else Path(spec.boxes).stem,
        corruption_set=corruption_set, seeding=seeding, flip_test=config.flip_test,
        select=str(meta.training_info.get("select", UNKNOWN)),
    ))
    report = EvalReport()
    for cell in (progress(cells, len(cells)) if progress else cells):
        path = cell_file(out, cell)
        if path.is_file():
            report.skipped.append(cell)
            continue
        try:
            pred = predict(loaded.model, meta, people, image_source(spec, cell), config)
        except ImageReadError as exc:  # a file that exists but does not decode
            raise EvalInputError(f"cell {'clean' if cell is None else f'{cell[0]}/{cell[1]}'}: "
                                 f"{_worker_message(exc)}") from exc
        write_json_atomic(path, cell_records(spec, pred))
        report.computed.append(cell)
        for k, v in asdict(pred.times).items():
            setattr(report.times, k, getattr(report.times, k) + v)
        if on_cell is not None:
            on_cell(cell, pred.times)
    return report
