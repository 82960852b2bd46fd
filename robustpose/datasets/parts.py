"""Body-part pools for ASDA (Bin et al., ECCV 2020): cut from LIP-format human parsing data, stored as RGBA images.

The official ASDA code released neither its part pool nor any code that cuts, merges or filters parts; this module
is robustpose's own extractor (``docs/asda.md``). A pool is a folder::

    POOL/pool.json              {"format", "types": {name: {"labels", "size_prior"}}, "filters", "parts": [...]}
    POOL/<type>/<000000>.png    one RGBA part: its box of the source image, alpha 255 on the part, RGB 0 elsewhere

Each record of ``parts`` is ``{"type", "file", "source", "box": [x, y, w, h], "area", "sha256"}`` (``sha256`` of
the PNG's bytes). The **pool hash** (:func:`pool_hash`) is the SHA-256 of the canonical JSON of the types, filters
and records, so it covers every part's pixels; every checkpoint trained with a pool records it
(``training_info["pools"]["parts"]``).

Parts of one image (:func:`extract_parts`): for each of the 25 part types of the official code, the pixels whose
LIP label is in the type's label set, split into 8-connected components; a component is kept when its area is at
least ``(min_side * longest image side / reference_side) ** 2`` pixels (the paper's 35^2, scaled to the image) and
it fills at least ``min_fill`` of its bounding box (the paper drops "scattered" segments: thin, frayed fragments).
Which LIP labels make each composite type is robustpose's choice (:data:`PART_TYPES`), documented in docs/asda.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .imageio import ImageReadError, encode_image, load_rgb, write_atomic

POOL_FORMAT = "robustpose-parts-1"
POOL_FILE = "pool.json"

# The 20 LIP parsing labels (0-19), in LIP's order.
LIP_LABELS = ("background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat", "socks", "pants",
              "jumpsuits", "scarf", "skirt", "face", "left_arm", "right_arm", "left_leg", "right_leg", "left_shoe",
              "right_shoe")
_L = {name: i for i, name in enumerate(LIP_LABELS)}
_HEAD = ("hat", "hair", "sunglasses", "face")
_UPPER = ("glove", "upper_clothes", "coat", "scarf", "left_arm", "right_arm")
_LOWER = ("socks", "pants", "skirt", "left_leg", "right_leg", "left_shoe", "right_shoe")


def _ids(*names: str) -> tuple[int, ...]:
    return tuple(sorted(_L[n] for n in names))


# The official code's 25 part types: name -> (LIP labels whose union makes it, size prior as a fraction of the body
# box diagonal). The priors are the code's; the label sets of the composites are robustpose's choice. "Left" is the
# person's left, as in LIP.
PART_TYPES: dict[str, tuple[tuple[int, ...], float]] = {
    # composites
    "left_arm": (_ids("left_arm"), 0.3),
    "right_arm": (_ids("right_arm"), 0.3),
    "left_leg": (_ids("left_leg"), 0.3),
    "right_leg": (_ids("right_leg"), 0.3),
    "upper_body": (_ids(*_UPPER), 0.4),
    "upper_body_with_head": (_ids(*_UPPER, *_HEAD), 0.5),
    "lower_body": (_ids(*_LOWER), 0.5),
    "left_leg_with_shoe": (_ids("left_leg", "left_shoe"), 0.4),
    "right_leg_with_shoe": (_ids("right_leg", "right_shoe"), 0.4),
    "all": (tuple(range(1, len(LIP_LABELS))), 0.9),
    # head
    "hat": (_ids("hat"), 0.2),
    "hair": (_ids("hair"), 0.2),
    "sunglasses": (_ids("sunglasses"), 0.1),
    "face": (_ids("face"), 0.2),
    "head": (_ids(*_HEAD), 0.2),
    # clothes
    "upper_clothes": (_ids("upper_clothes"), 0.3),
    "dress": (_ids("dress"), 0.3),
    "coat": (_ids("coat"), 0.3),
    "socks": (_ids("socks"), 0.1),
    "pants": (_ids("pants"), 0.4),
    "jumpsuits": (_ids("jumpsuits"), 0.7),
    "scarf": (_ids("scarf"), 0.1),
    "skirt": (_ids("skirt"), 0.1),
    "left_shoe": (_ids("left_shoe"), 0.1),
    "right_shoe": (_ids("right_shoe"), 0.1),
}
TYPE_NAMES: tuple[str, ...] = tuple(PART_TYPES)


class PoolError(ValueError):
    """A part pool folder that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class PartFilter:
    """The filters of :func:`extract_parts`.

    Attributes:
        min_side: a part's area must be at least ``(min_side * longest side / reference_side) ** 2`` pixels.
        reference_side: the image side at which ``min_side ** 2`` applies unscaled (LIP's images are about 400).
        min_fill: least share of its bounding box a part must fill (lower: a scattered, frayed segment).
    """

    min_side: float = 35.0
    reference_side: float = 400.0
    min_fill: float = 0.1

    def min_area(self, shape: tuple[int, int]) -> float:
        """The least part area in pixels for an image of ``shape`` ``(H, W)``."""
        return (self.min_side * max(shape) / self.reference_side) ** 2


@dataclass(frozen=True)
class Part:
    """One part cut from an image: ``rgba`` ``(h, w, 4)`` uint8 (alpha 255 on the part, RGB 0 off it) and its
    ``box`` ``(x, y, w, h)`` in the source image, ``area`` its pixel count."""

    type: str
    box: tuple[int, int, int, int]
    area: int
    rgba: np.ndarray


def extract_parts(image: np.ndarray, labels: np.ndarray, filters: PartFilter = PartFilter()) -> list[Part]:
    """The parts of one image, type by type in :data:`TYPE_NAMES` order, components in OpenCV's scan order.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
    labels : (H, W) uint8, LIP ids 0-19
    filters : the area and scatter filters

    Raises ``ValueError`` when the shapes differ; labels above 19 belong to no type (the loaders refuse them).
    """
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels {labels.shape} and image {image.shape[:2]} differ in size")
    min_area = filters.min_area(labels.shape)
    out = []
    for name, (ids, _) in PART_TYPES.items():
        member = np.isin(labels, ids).astype(np.uint8)
        if not member.any():
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats(member, connectivity=8)
        for c in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[c])
            if area < min_area or area < filters.min_fill * w * h:
                continue
            mask = comp[y:y + h, x:x + w] == c
            rgba = np.zeros((h, w, 4), np.uint8)
            rgba[mask, :3] = image[y:y + h, x:x + w][mask]
            rgba[mask, 3] = 255
            out.append(Part(name, (x, y, w, h), area, rgba))
    return out


def read_labels(path: str | Path) -> np.ndarray:
    """A LIP parsing PNG as ``(H, W)`` uint8 label ids (grey or palette PNGs, as LIP ships them, read raw).

    Raises :class:`~robustpose.datasets.imageio.ImageReadError` for a missing, unreadable or multi-channel file.
    """
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise ImageReadError(f"a parsing mask must be 8-bit grey or palette (label ids), not mode {im.mode}")
            return np.asarray(im).copy()
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError("file not found") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot decode mask: {exc}") from exc


def pool_hash(doc: dict) -> str:
    """SHA-256 of the canonical JSON of a pool's ``types``, ``filters`` and ``parts`` (see the module docstring)."""
    body = {k: doc[k] for k in ("format", "types", "filters", "parts")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


class PoolWriter:
    """Writes parts into a pool folder as they come, then ``pool.json`` (atomically) by :meth:`close`."""

    def __init__(self, out: str | Path, filters: PartFilter) -> None:
        self.out, self.filters = Path(out), filters
        if (self.out / POOL_FILE).exists():
            raise FileExistsError(f"{self.out / POOL_FILE} exists: choose another --out (pools are not overwritten)")
        self.records: list[dict] = []
        self.counts = dict.fromkeys(TYPE_NAMES, 0)

    def add(self, source: str, parts: Iterable[Part]) -> None:
        for part in parts:
            data = encode_image(part.rgba, "png")
            file = f"{part.type}/{self.counts[part.type]:06d}.png"
            self.counts[part.type] += 1
            write_atomic(self.out / file, data)
            self.records.append({"type": part.type, "file": file, "source": source, "box": list(part.box),
                                 "area": part.area, "sha256": hashlib.sha256(data).hexdigest()})

    def close(self) -> str:
        """Write ``pool.json``; returns the pool hash."""
        doc = {"format": POOL_FORMAT,
               "types": {n: {"labels": list(ids), "size_prior": prior} for n, (ids, prior) in PART_TYPES.items()},
               "filters": asdict(self.filters), "parts": self.records}
        doc["hash"] = pool_hash(doc)
        write_atomic(self.out / POOL_FILE, json.dumps(doc, indent=1).encode("utf-8"))
        return doc["hash"]


@dataclass(frozen=True)
class BuildResult:
    """What a pool build did: the pool hash, images used, part counts by type, and the skipped inputs with why."""

    hash: str
    images: int
    counts: dict[str, int]
    skipped: list[tuple[str, str]]


# One input of a build: its name (recorded as the parts' ``source``) and a loader returning ``(image, labels)``
# (RGB uint8 (H, W, 3), LIP ids uint8 (H, W)) or raising ``ValueError`` naming the bad file.
Source = tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]]]
_NOT_TRAIN = re.compile(r"(^|[_\-. ])(val|valid|validation|test|testing)([_\-. ]|$)", re.IGNORECASE)


def check_train_folder(path: str | Path) -> None:
    """Raise ``ValueError`` when ``path``'s name says it holds a validation or test split (``val_images``,
    ``testing_images``...): a pool is cut from training images only, so no evaluated image feeds the augmentation."""
    if _NOT_TRAIN.search(Path(path).name):
        raise ValueError(f"{path} looks like a validation or test folder; cut parts from the training split only "
                         "(LIP: TrainVal_images/train_images and TrainVal_parsing_annotations/train_segmentations)")


def _load_pair(image_path: Path, mask_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if mask_path is None:
        raise ValueError(f"{image_path}: no mask of the same name (<stem>.png) in the masks folder")
    try:
        image = load_rgb(image_path)
    except ImageReadError as exc:
        raise ValueError(f"{image_path}: {exc}") from None
    try:
        labels = read_labels(mask_path)
    except ImageReadError as exc:
        raise ValueError(f"{mask_path}: {exc}") from None
    if labels.shape != image.shape[:2]:
        raise ValueError(f"{mask_path}: mask is {labels.shape[1]}x{labels.shape[0]}, its image {image_path.name} "
                         f"{image.shape[1]}x{image.shape[0]}")
    bad = np.setdiff1d(np.unique(labels), np.arange(len(LIP_LABELS)))
    if bad.size:
        raise ValueError(f"{mask_path}: label values {bad.tolist()} are not LIP ids (0-{len(LIP_LABELS) - 1})")
    return image, labels


def lip_sources(images: str | Path, masks: str | Path) -> Iterator[Source]:
    """The LIP-format inputs: every ``*.jpg`` / ``*.png`` of ``images`` (sorted by name) with the mask of the same
    stem in ``masks`` (``<stem>.png``, label ids 0-19)."""
    images, masks = Path(images), Path(masks)
    for path in sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        mask = masks / f"{path.stem}.png"
        yield path.name, partial(_load_pair, path, mask if mask.is_file() else None)


def synth_sources(root: str | Path) -> Iterator[Source]:
    """SynthPose's training images with their exact part labels, re-rendered from the seed and settings its
    annotation file records (no label files needed); the pixels are those of the image files. Raises
    ``ValueError`` when a file is not the image its seed renders (another version or seed)."""
    from .synthpose import JPEG_QUALITY, SynthConfig, image_rng, render_scene

    root = Path(root)
    ann = root / "annotations" / "person_keypoints_train.json"
    try:
        doc = json.loads(ann.read_text(encoding="utf-8"))
        info = doc["info"]
        config, seed = SynthConfig(**info["config"]), int(info["seed"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{ann}: not a SynthPose training annotation file ({exc}); render one with "
                         "`robustpose synth`") from None

    def load(index: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
        scene = render_scene(image_rng(seed, "train", index), config, part_labels=True)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: {exc.strerror}") from None
        if data != encode_image(scene.image, "jpg", JPEG_QUALITY):
            raise ValueError(f"{path} is not the image seed {seed} renders here (another robustpose version?); "
                             "render the data again")
        return load_rgb(path), scene.parts

    for index, image in enumerate(doc["images"]):
        path = root / "images" / image["file_name"]
        yield Path(image["file_name"]).name, partial(load, index, path)


def build_pool(sources: Iterable[Source], out: str | Path, filters: PartFilter = PartFilter(),
               on_skip: Callable[[str, str], None] | None = None,
               progress: Callable[[], None] | None = None) -> BuildResult:
    """Cut the parts of every source (:func:`lip_sources`, :func:`synth_sources`) into the pool ``out``.

    A source whose files are missing or unreadable, whose mask has another size than its image, or whose mask holds
    a value that is no LIP id is skipped and reported through ``on_skip(name, why)``; the rest is built. The same
    sources give the same pool, byte for byte (the same hash).
    """
    writer = PoolWriter(out, filters)
    skipped: list[tuple[str, str]] = []
    images = 0
    for name, load in sources:
        try:
            parts = extract_parts(*load(), filters)
        except ValueError as exc:
            skipped.append((name, str(exc)))
            if on_skip is not None:
                on_skip(name, str(exc))
        else:
            writer.add(name, parts)
            images += 1
        if progress is not None:
            progress()
    return BuildResult(writer.close(), images, dict(writer.counts), skipped)


@dataclass(frozen=True)
class PartPool:
    """A pool read from disk: ``root``, the ``records`` of ``pool.json``, its ``hash``, the size priors and the
    records by type.

    :meth:`load_part` reads one part's RGBA pixels, checking them against the recorded SHA-256.
    """

    root: Path
    records: tuple[dict, ...]
    hash: str
    priors: dict[str, float]
    by_type: dict[str, list[int]]  # record indices by part type, for the types that have parts, in priors' order

    def load_part(self, index: int) -> np.ndarray:
        """The ``(h, w, 4)`` uint8 RGBA of record ``index``; ``PoolError`` when the file is not the recorded one."""
        record = self.records[index]
        path = self.root / record["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PoolError(f"{path}: cannot read part ({exc.strerror}); rebuild the pool") from None
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise PoolError(f"{path}: the file differs from the pool's record (sha256); rebuild the pool")
        rgba = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        return cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)


def load_pool(path: str | Path) -> PartPool:
    """Read the pool folder ``path`` (or its ``pool.json``); ``PoolError`` names what is wrong.

    The hash is recomputed from the records, so an edited ``pool.json`` is refused; each part file is checked when
    it is read (:meth:`PartPool.load_part`).
    """
    path = Path(path)
    root = path.parent if path.name == POOL_FILE else path
    file = root / POOL_FILE
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoolError(f"{file} not found: build a pool with `robustpose parts build` or `parts synth`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise PoolError(f"{file}: cannot read the pool ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != POOL_FORMAT:
        raise PoolError(f"{file} is not a {POOL_FORMAT} pool")
    if pool_hash(doc) != doc.get("hash"):
        raise PoolError(f"{file}: its records do not match its hash (edited?); rebuild the pool")
    if not doc["parts"]:
        raise PoolError(f"{file} holds no parts; build it from more images or with lower filters")
    unknown = sorted({r["type"] for r in doc["parts"]} - set(doc["types"]))
    if unknown:
        raise PoolError(f"{file}: parts of unknown types {unknown}")
    priors = {name: float(t["size_prior"]) for name, t in doc["types"].items()}
    by_type: dict[str, list[int]] = {}
    for i, r in enumerate(doc["parts"]):
        by_type.setdefault(r["type"], []).append(i)
    return PartPool(root, tuple(doc["parts"]), doc["hash"], priors, {t: by_type[t] for t in priors if t in by_type})
