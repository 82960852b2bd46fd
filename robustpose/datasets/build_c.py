"""Build a -C benchmark (COCO-C, MPII-C, OCHuman-C, or any image folder) on disk: reproducible and resumable.

Layout (see ``docs/build_c.md``)::

    OUT/dataset.json                         everything needed to rebuild and to evaluate
    OUT/annotations/<annotation file>        a copy of the source annotation file
    OUT/<corruption>/<severity>/<file name>  one image per cell
    OUT/manifest-<K>-of-<N>.jsonl            per shard: path, source, seed, bytes, sha256 of every finished file
    OUT/errors.jsonl                         images that could not be corrupted, with the reason

A work unit is one source image: it is decoded once and all its cells are produced from it. Each cell is seeded
from (base seed, corruption, severity, image name) alone (:func:`~robustpose.datasets.seeding.cell_seed`), so the
bytes do not depend on worker count, shard or order. Files are written under a temporary name and renamed; a
manifest line is appended when an image's files are all written, and a rerun of the same build redoes exactly the
cells whose file is missing or does not match its manifest line.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import PIL

from robustpose import __version__
from robustpose.corruptions import CORRUPTIONS, FIDELITY_VERSION, GROUPS, SEVERITIES, corrupt
from robustpose.pool import deaf_to_ctrl_c, imap_unordered

from .imageio import DEFAULT_JPEG_QUALITY, FORMATS, ImageReadError, encode_image, load_rgb, write_atomic
from .readers import AnnotationError, folder_image_names, image_names, resolve_image
from .seeding import SEEDING_SCHEME, cell_seed

LAYOUTS = ("robustpose", "advmix")
ADVMIX_SEED = 1  # AdvMix's make_datasets.py runs np.random.seed(1) before every corrupt() call
ADVMIX_SEEDING = "advmix-constant-1"
DATASET_JSON = "dataset.json"
ERRORS_JSONL = "errors.jsonl"
DATASET_JSON_VERSION = 1
# Fields of dataset.json that may differ between two runs writing into the same OUT.
_NOT_SETTINGS = ("robustpose_version",)

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


class BuildError(RuntimeError):
    """The build cannot start or go on (bad settings, unwritable OUT, full disk); the message says what to do."""


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one -C build (one shard of it).

    Parameters
    ----------
    out : Path
        Output root, e.g. ``data/coco-C``.
    images_dir : Path
        Folder the annotation's image names are relative to.
    dataset : {'coco', 'ochuman', 'mpii', 'folder'}
        Annotation format; ``folder`` takes every image file under ``images_dir``.
    ann_file : Path or None
        The annotation file (required unless ``dataset='folder'``).
    all_images : bool
        Corrupt every image file under ``images_dir`` instead of only the annotated ones.
    corruptions : tuple of str
        Corruption names, in any order (stored in the reference order).
    severities : tuple of int
        Severities in 1..5.
    fmt : {'jpg', 'png'}
        Output encoding.
    quality : int
        JPEG quality, 1..95 (Pillow; 75 = Pillow's default, as the published AdvMix benchmark images).
    base_seed : int
        Base seed in [0, 2**32) of the per-cell seeds (ignored by ``layout='advmix'``).
    layout : {'robustpose', 'advmix'}
        ``advmix`` reproduces AdvMix's ``make_datasets.py``: severity folders 0..4, ``np.random.seed(1)`` before
        every call, all 19 corruptions, JPEG q75.
    workers : int
        Processes; 1 runs in the calling process.
    shard : (int, int)
        ``(K, N)``: build the K-th (1-based) of N disjoint parts (images ``K-1, K-1+N, ...`` of the list).
    fail_fast : bool
        Stop at the first image that fails instead of recording it and going on.
    """

    out: Path
    images_dir: Path
    dataset: str = "folder"
    ann_file: Path | None = None
    all_images: bool = False
    corruptions: tuple[str, ...] = GROUPS["benchmark"]
    severities: tuple[int, ...] = SEVERITIES
    fmt: str = "jpg"
    quality: int = DEFAULT_JPEG_QUALITY
    base_seed: int = 0
    layout: str = "robustpose"
    workers: int = 1
    shard: tuple[int, int] = (1, 1)
    fail_fast: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "images_dir", Path(self.images_dir))
        if self.ann_file is not None:
            object.__setattr__(self, "ann_file", Path(self.ann_file))
        unknown = [c for c in self.corruptions if c not in CORRUPTIONS]
        if unknown or not self.corruptions:
            raise ValueError(f"corruptions must be names from {', '.join(CORRUPTIONS)}; got {list(self.corruptions)}")
        object.__setattr__(self, "corruptions", tuple(c for c in CORRUPTIONS if c in self.corruptions))
        if not self.severities or any(s not in SEVERITIES for s in self.severities):
            raise ValueError(f"severities must be in 1..5, got {list(self.severities)}")
        object.__setattr__(self, "severities", tuple(sorted(set(self.severities))))
        if self.fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {self.fmt!r}")
        if not 1 <= self.quality <= 95:
            raise ValueError(f"quality must be in 1..95 (Pillow's JPEG range), got {self.quality}")
        if not 0 <= self.base_seed < 2**32:
            raise ValueError(f"base_seed must be in [0, 2**32), got {self.base_seed}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.layout == "advmix" and (
            self.corruptions != tuple(CORRUPTIONS) or self.severities != SEVERITIES
            or self.fmt != "jpg" or self.quality != DEFAULT_JPEG_QUALITY
        ):
            raise ValueError("layout 'advmix' means all 19 corruptions, severities 1-5 and JPEG quality 75")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        k, n = self.shard
        if not 1 <= k <= n:
            raise ValueError(f"shard must be K/N with 1 <= K <= N, got {k}/{n}")
        if self.dataset == "folder" and self.ann_file is not None:
            raise ValueError("dataset 'folder' takes no annotation file; drop --ann or name the dataset")


@dataclass
class BuildSummary:
    """What one :func:`build_c` run did (for its shard)."""

    out: Path
    shard: tuple[int, int]
    images: int = 0
    images_done: int = 0
    images_already_complete: int = 0
    files_written: int = 0
    files_already_complete: int = 0
    bytes_written: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every image of the shard has all its files."""
        return not self.failures and not self.stopped_early

    @property
    def images_per_second(self) -> float:
        """Images corrupted (all their cells) per wall-clock second in this run."""
        return self.images_done / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------- layout: names, folders, seeds


def severity_folder(layout: str, severity: int) -> str:
    """Folder name of ``severity``: ``'1'..'5'``, or ``'0'..'4'`` for ``layout='advmix'``."""
    return str(severity - 1) if layout == "advmix" else str(severity)


def output_name(name: str, fmt: str) -> str:
    """File name of image ``name`` in a -C cell: the same, with the suffix changed if it does not match ``fmt``.

    >>> output_name("a/000001.jpg", "jpg"), output_name("a/000001.jpg", "png")
    ('a/000001.jpg', 'a/000001.png')
    """
    path = PurePosixPath(name)
    keep = (".jpg", ".jpeg") if fmt == "jpg" else (".png",)
    return name if path.suffix.lower() in keep else str(path.with_suffix(f".{fmt}"))


def cell_path(layout: str, corruption: str, severity: int, name: str, fmt: str) -> str:
    """'/'-separated path, relative to OUT, of image ``name`` corrupted by ``corruption`` at ``severity``."""
    return f"{corruption}/{severity_folder(layout, severity)}/{output_name(name, fmt)}"


def seed_for(layout: str, base_seed: int, corruption: str, severity: int, name: str) -> int:
    """Seed of one cell: :func:`cell_seed` of ``base_seed``, or AdvMix's constant 1 for ``layout='advmix'``."""
    if layout == "advmix":
        return ADVMIX_SEED
    return cell_seed(base_seed, corruption, severity, name)


def manifest_name(shard: tuple[int, int]) -> str:
    """File name of shard ``(K, N)``'s manifest, e.g. ``manifest-1-of-2.jsonl``."""
    return f"manifest-{shard[0]}-of-{shard[1]}.jsonl"


def read_manifests(out: Path) -> dict[str, dict]:
    """Every manifest record under ``out`` (all shards), by path. A torn last line (a killed build) is skipped."""
    records: dict[str, dict] = {}
    for manifest in sorted(out.glob("manifest-*-of-*.jsonl")):
        with manifest.open("rb") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(record, dict) and "path" in record:
                    records[record["path"]] = record
    return records


def _append_lines(path: Path, records: list[dict]) -> None:
    """Append JSON lines in one write, after closing a torn last line if a killed run left one."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    with path.open("ab+") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                text = "\n" + text
        f.write(text.encode("utf-8"))
        f.flush()


# ---------------------------------------------------------------- dataset.json


def dataset_record(config: BuildConfig, names: list[str], annotation: dict | None) -> dict:
    """The content of ``OUT/dataset.json`` (no timestamps or paths, so every shard writes the same)."""
    if config.layout == "advmix":
        seeding = {"scheme": ADVMIX_SEEDING, "seed": ADVMIX_SEED}
    else:
        seeding = {"scheme": SEEDING_SCHEME, "base_seed": config.base_seed}
    return {
        "dataset_json_version": DATASET_JSON_VERSION,
        "robustpose_version": __version__,
        "fidelity_version": FIDELITY_VERSION,
        "layout": config.layout,
        "seeding": seeding,
        "corruptions": list(config.corruptions),
        "severities": list(config.severities),
        "severity_folders": {str(s): severity_folder(config.layout, s) for s in config.severities},
        "format": config.fmt,
        "quality": config.quality if config.fmt == "jpg" else None,
        "encoder": f"Pillow {PIL.__version__}",
        "dataset": config.dataset,
        "all_images": config.all_images,
        "annotation": annotation,
        "images": names,
    }


def _annotation_record(config: BuildConfig, data: bytes | None) -> dict | None:
    """The ``annotation`` field of dataset.json for the annotation file's bytes ``data``."""
    if config.ann_file is None or data is None:
        return None
    return {"file": f"annotations/{config.ann_file.name}", "source_name": config.ann_file.name,
            "sha256": hashlib.sha256(data).hexdigest()}


def _write_dataset_json(out: Path, record: dict) -> None:
    path = out / DATASET_JSON
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BuildError(f"{path} is unreadable ({exc}); delete it or use another --out") from exc
        differ = sorted(k for k in set(old) | set(record) if k not in _NOT_SETTINGS and old.get(k) != record.get(k))
        if differ:
            raise BuildError(
                f"{out} already holds a build with other settings (differs in: {', '.join(differ)}); "
                "use another --out, or delete it to rebuild"
            )
        return
    write_atomic(path, (json.dumps(record, indent=1) + "\n").encode("utf-8"), shared=True)


def _io_error(exc: OSError, what: str) -> BuildError:
    where = exc.filename or what
    if exc.errno == errno.ENOSPC:
        return BuildError(f"disk full writing {where}: free space or choose another --out, then rerun the same "
                          "command to resume")
    return BuildError(f"cannot write {where}: {exc.strerror or exc}; choose a writable --out")


# ---------------------------------------------------------------- the work unit: one image, all its cells


@dataclass(frozen=True)
class _Cell:
    corruption: str
    severity: int
    path: str
    seed: int


@dataclass(frozen=True)
class _Task:
    name: str
    source: str
    out: str
    cells: tuple[_Cell, ...]
    fmt: str
    quality: int


@dataclass
class _Result:
    name: str
    records: list[dict]
    error: str | None = None


def _build_image(task: _Task) -> _Result:
    """Decode ``task.source`` once, write all of ``task.cells``; a bad image becomes ``_Result.error``.

    ``OSError`` while writing (disk full, permissions) propagates: it stops the build.
    """
    try:
        image = load_rgb(task.source)
    except ImageReadError as exc:
        return _Result(task.name, [], str(exc))
    records = []
    for cell in task.cells:
        try:
            data = encode_image(corrupt(image, cell.corruption, cell.severity, cell.seed), task.fmt, task.quality)
        except (ValueError, ArithmeticError, MemoryError) as exc:
            return _Result(task.name, records, f"{cell.corruption} severity {cell.severity}: {exc}")
        write_atomic(Path(task.out) / cell.path, data)
        records.append({"path": cell.path, "source": task.name, "seed": cell.seed, "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    return _Result(task.name, records)


def _init_worker() -> None:
    """One thread per worker process (the pool provides the parallelism), deaf to Ctrl-C."""
    import cv2

    deaf_to_ctrl_c()
    cv2.setNumThreads(1)


def _run_serial(tasks: list[_Task]) -> Iterator[_Result]:
    for task in tasks:
        yield _build_image(task)


# ---------------------------------------------------------------- planning and the build


def list_images(config: BuildConfig) -> list[str]:
    """The build's image names (all shards): the annotated ones, or every image file with ``all_images``."""
    if config.all_images or config.dataset == "folder":
        if config.ann_file is not None:
            image_names(config.dataset, config.ann_file, config.images_dir)  # still check the annotation file
        names = folder_image_names(config.images_dir)
    else:
        names = image_names(config.dataset, config.ann_file, config.images_dir)
    if not names:
        raise AnnotationError(f"no images to corrupt: {config.ann_file or config.images_dir} lists none")
    clashes: dict[str, str] = {}
    for name in names:
        other = clashes.setdefault(output_name(name, config.fmt).lower(), name)
        if other != name:
            raise AnnotationError(f"images {other!r} and {name!r} would both be written as "
                                  f"{output_name(name, config.fmt)!r} (names are compared ignoring case); "
                                  "rename one of them")
    return names


def _plan(config: BuildConfig, names: list[str], summary: BuildSummary) -> list[_Task]:
    """Tasks for this shard's images, each with only the cells whose file is missing or unrecorded."""
    done = read_manifests(config.out)
    tasks = []
    k, n = config.shard
    for name in names[k - 1 :: n]:
        cells = []
        for corruption in config.corruptions:
            for severity in config.severities:
                path = cell_path(config.layout, corruption, severity, name, config.fmt)
                record = done.get(path)
                target = config.out / path
                if record is not None and target.is_file() and target.stat().st_size == record.get("bytes"):
                    summary.files_already_complete += 1
                else:
                    seed = seed_for(config.layout, config.base_seed, corruption, severity, name)
                    cells.append(_Cell(corruption, severity, path, seed))
        if cells:
            source = str(resolve_image(config.images_dir, name))
            tasks.append(_Task(name, source, str(config.out), tuple(cells), config.fmt, config.quality))
        else:
            summary.images_already_complete += 1
    return tasks


def build_c(config: BuildConfig, progress: Progress | None = None) -> BuildSummary:
    """Build (or resume) shard ``config.shard`` of a -C dataset under ``config.out``.

    Parameters
    ----------
    config : BuildConfig
    progress : callable, optional
        ``progress(results, total)`` wraps the iterable of finished images (``total`` of them in this run) and
        yields them on, e.g. to drive a progress bar; the default does nothing.

    Returns
    -------
    BuildSummary
        Counts, bytes, time and the images that failed (also appended to ``OUT/errors.jsonl``).

    Raises
    ------
    AnnotationError
        Missing or wrong-format annotation file, unsafe or clashing image names.
    BuildError
        OUT unwritable or holding a build with other settings, or the disk filled up.
    """
    start = time.perf_counter()
    names = list_images(config)
    summary = BuildSummary(out=config.out, shard=config.shard)
    summary.images = len(names[config.shard[0] - 1 :: config.shard[1]])
    try:
        if config.out.exists() and not config.out.is_dir():
            raise BuildError(f"--out {config.out} exists and is not a folder; choose another --out")
        config.out.mkdir(parents=True, exist_ok=True)
        ann_data = config.ann_file.read_bytes() if config.ann_file is not None else None
        annotation = _annotation_record(config, ann_data)
        _write_dataset_json(config.out, dataset_record(config, names, annotation))
        if annotation is not None:
            write_atomic(config.out / annotation["file"], ann_data, shared=True)
    except OSError as exc:
        raise _io_error(exc, str(config.out)) from exc
    tasks = _plan(config, names, summary)
    manifest = config.out / manifest_name(config.shard)
    workers = min(config.workers, len(tasks))
    results = _run_serial(tasks) if workers <= 1 else imap_unordered(_build_image, tasks, workers, _init_worker)
    wrapped = progress(results, len(tasks)) if progress is not None else results
    try:
        for result in wrapped:
            if result.records:
                _append_lines(manifest, result.records)
                summary.files_written += len(result.records)
                summary.bytes_written += sum(r["bytes"] for r in result.records)
            if result.error is None:
                summary.images_done += 1
                continue
            summary.failures.append((result.name, result.error))
            _append_lines(config.out / ERRORS_JSONL, [{"image": result.name, "reason": result.error,
                                                        "shard": f"{config.shard[0]}/{config.shard[1]}"}])
            if config.fail_fast:
                summary.stopped_early = True
                break
    except BrokenProcessPool as exc:
        raise BuildError("a worker process died (out of memory?); rerun the same command with fewer --workers "
                         "to resume") from exc
    except OSError as exc:
        raise _io_error(exc, str(config.out)) from exc
    finally:
        close = getattr(wrapped, "close", None)
        if close is not None:
            close()  # stops the pool of an abandoned generator
        results.close()
    summary.seconds = time.perf_counter() - start
    return summary
