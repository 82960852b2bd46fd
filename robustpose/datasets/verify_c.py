"""Check a built -C dataset against its ``dataset.json`` and manifests, and optionally regenerate a sample.

Every cell that ``dataset.json`` promises (images x corruptions x severities) must exist and match the sha256 and
size of its manifest line; any other file inside the tree is reported as stray (a file nobody can vouch for must not
pass as part of the benchmark); ``regenerate`` recomputes a random sample from the source images and compares bytes,
which also catches a file whose manifest line was rewritten to match it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustpose.corruptions import corrupt

from .build_c import (
    DATASET_JSON,
    ERRORS_JSONL,
    BuildError,
    Progress,
    cell_path,
    read_manifests,
    seed_for,
)
from .imageio import DEFAULT_JPEG_QUALITY, ImageReadError, encode_image, load_rgb
from .readers import resolve_image


@dataclass
class VerifyReport:
    """Result of :func:`verify_c`; every list holds paths relative to OUT (failed_images: image names)."""

    out: Path
    expected: int = 0
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    regenerated: int = 0
    regenerate_mismatch: list[str] = field(default_factory=list)
    failed_images: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every expected file is present, recorded, unaltered and (if sampled) regenerates identically."""
        return not (self.missing or self.altered or self.unrecorded or self.stray or self.regenerate_mismatch)


def read_dataset_json(out: str | os.PathLike) -> dict:
    """The ``dataset.json`` of the -C dataset at ``out``.

    Raises
    ------
    BuildError
        If ``out`` holds no readable ``dataset.json``.
    """
    path = Path(out) / DATASET_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BuildError(f"{path} not found: {out} is not a -C dataset built by robustpose build-c") from exc
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {path} ({exc}); rebuild it with the same build-c command") from exc
    if not isinstance(record, dict) or "images" not in record:
        raise BuildError(f"{path} is not a robustpose build-c dataset.json")
    return record


def _bookkeeping(rel: str) -> bool:
    """Files build-c itself keeps in OUT besides the images: dataset.json, errors.jsonl, the shard manifests, and
    the hidden ``.NAME.partial`` files of a write that was interrupted (a rerun replaces them)."""
    name = rel.rsplit("/", 1)[-1]
    if "/" not in rel and (rel in (DATASET_JSON, ERRORS_JSONL) or
                           (rel.startswith("manifest-") and rel.endswith(".jsonl"))):
        return True
    return name.startswith(".") and name.endswith(".partial")


def stray_files(out: Path, expected: Iterable[str]) -> list[str]:
    """Files under ``out`` (relative, '/'-separated, sorted) that are neither expected images nor bookkeeping."""
    known = set(expected)
    found = []
    for dirpath, _, filenames in os.walk(out):
        rel_dir = Path(dirpath).relative_to(out).as_posix()
        for filename in filenames:
            rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
            if rel not in known and not _bookkeeping(rel):
                found.append(rel)
    return sorted(found)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _failed_images(errors: Path) -> set[str]:
    """Image names recorded in ``OUT/errors.jsonl`` (none if it does not exist)."""
    if not errors.exists():
        return set()
    names = set()
    for text in errors.read_text(encoding="utf-8").splitlines():
        try:
            names.add(json.loads(text)["image"])
        except (ValueError, KeyError, TypeError):
            continue
    return names


def _regenerate(
    record: dict, images_dir: Path, out: Path, cells: list[tuple[str, str, str, int]]
) -> Iterable[tuple[str, bool]]:
    """Recompute ``cells`` (path, image name, corruption, severity), decoding each source image once.

    Yields (path, whether the recomputed bytes equal the file's).
    """
    by_source: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for path, name, corruption, severity in cells:
        by_source[name].append((path, corruption, severity))
    base_seed = record["seeding"].get("base_seed", 0)
    for name, todo in by_source.items():
        try:
            image = load_rgb(resolve_image(images_dir, name))
        except ImageReadError:
            for path, _, _ in todo:
                yield path, False
            continue
        for path, corruption, severity in todo:
            seed = seed_for(record["layout"], base_seed, corruption, severity, name)
            corrupted = corrupt(image, corruption, severity, seed)
            data = encode_image(corrupted, record["format"], record["quality"] or DEFAULT_JPEG_QUALITY)
            yield path, data == (out / path).read_bytes()


def verify_c(
    out: str | os.PathLike,
    regenerate: int = 0,
    images_dir: str | os.PathLike | None = None,
    rng: np.random.Generator | int | None = 0,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check every file of the -C dataset at ``out``; with ``regenerate=K``, also recompute K random files.

    Parameters
    ----------
    out : path
        The -C dataset root (holding ``dataset.json``).
    regenerate : int
        How many files to recompute and compare byte for byte (0: none).
    images_dir : path, optional
        The source image folder; required when ``regenerate > 0``.
    rng : Generator or int
        Picks the files to regenerate.
    progress : callable, optional
        ``progress(paths, total)`` wraps the iterable of expected files being checked.

    Raises
    ------
    BuildError
        If ``out`` is not a -C dataset, or ``regenerate > 0`` without ``images_dir``.
    """
    out = Path(out)
    record = read_dataset_json(out)
    if regenerate > 0 and images_dir is None:
        raise BuildError("--regenerate needs the source images: pass --images DIR")
    manifest = read_manifests(out)
    report = VerifyReport(out=out)
    expected = {
        cell_path(record["layout"], c, s, name, record["format"]): (name, c, s)
        for c in record["corruptions"] for s in record["severities"] for name in record["images"]
    }
    report.expected = len(expected)
    sound = []
    for path in progress(expected, len(expected)) if progress is not None else expected:
        target = out / path
        line = manifest.get(path)
        if not target.is_file():
            report.missing.append(path)
        elif line is None:
            report.unrecorded.append(path)
        else:
            report.checked += 1
            if target.stat().st_size != line["bytes"] or _sha256(target) != line["sha256"]:
                report.altered.append(path)
            else:
                sound.append(path)
    annotation = (record.get("annotation") or {}).get("file")  # build-c's copy of the annotation file
    report.stray = stray_files(out, [*expected, *([annotation] if annotation else [])])
    incomplete = {expected[path][0] for path in report.missing}
    report.failed_images = sorted(incomplete & _failed_images(out / ERRORS_JSONL))
    if regenerate > 0 and sound:
        generator = np.random.default_rng(rng)
        sample = sorted(generator.choice(len(sound), size=min(regenerate, len(sound)), replace=False))
        cells = [(sound[i], *expected[sound[i]]) for i in sample]
        for path, same in _regenerate(record, Path(images_dir), out, cells):
            report.regenerated += 1
            if not same:
                report.regenerate_mismatch.append(path)
    return report
