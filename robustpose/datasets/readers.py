"""Which images a dataset's annotation file references, as safe relative names.

The readers are shared by the -C builder and by evaluation: both need the same list of images, and both must
refuse a file name that would reach outside the image folder. Every function here returns names relative to the
image folder, '/'-separated, in the order of first appearance in the annotation file, without repeats.

Formats
-------
``coco`` / ``ochuman``
    COCO-format JSON (an object with an ``images`` list whose items have ``file_name``).
``mpii``
    The HRNet-style MPII JSON (``annot/valid.json``): a list of persons, each with an ``image`` file name.
``folder``
    No annotation file: every image file under the folder (see :data:`IMAGE_SUFFIXES`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class AnnotationError(ValueError):
    """An annotation file is missing, unreadable, of the wrong format, or names an unsafe file."""


def safe_relative_name(name: object, where: str = "annotation") -> str:
    """Return ``name`` as a '/'-separated path that stays inside the folder it is relative to.

    Parameters
    ----------
    name : str
        An image file name from an annotation file, e.g. ``"000000000785.jpg"`` or ``"val/a.jpg"``.
    where : str
        What the name came from, used in the error message (e.g. ``"coco.json: images[3].file_name"``).

    Raises
    ------
    AnnotationError
        If ``name`` is not a non-empty string, is absolute (``/x``, ``C:\\x``, ``\\\\host\\x``), contains a ``..``
        component, a backslash or a NUL, or ends in a folder separator.

    >>> safe_relative_name("val2017/000000000785.jpg")
    'val2017/000000000785.jpg'
    """
    if not isinstance(name, str) or not name:
        raise AnnotationError(f"{where}: image file name must be a non-empty string, got {name!r}")
    if "\0" in name or "\\" in name:
        raise AnnotationError(f"{where}: unsafe image file name {name!r} (NUL or backslash); use '/'-separated names")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise AnnotationError(
            f"{where}: refused absolute image file name {name!r}; names must be relative to the image folder"
        )
    parts = name.split("/")
    if ".." in parts:
        raise AnnotationError(f"{where}: refused image file name {name!r}: '..' would escape the image folder")
    if name.endswith("/"):
        raise AnnotationError(f"{where}: image file name {name!r} names a folder, not a file")
    return "/".join(part for part in parts if part not in ("", "."))


def load_json(path: str | os.PathLike, what: str = "annotation file", option: str = "--ann") -> object:
    """Parse the JSON file ``path``; every failure is an :class:`AnnotationError` naming the file and ``option``.

    ``what`` says what the file should be in the message (e.g. ``"detection file"``).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{what} {path} not found; check the {option} path")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{what} {path} is not valid JSON ({exc}); pass the .json {what} ({option})") from exc
    except OSError as exc:
        raise AnnotationError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def coco_image_names(ann_file: str | os.PathLike) -> list[str]:
    """Image names (``images[].file_name``) of a COCO-format annotation file (COCO, OCHuman, CrowdPose).

    Raises
    ------
    AnnotationError
        If the file is missing, not JSON, not COCO-format (no ``images`` list of objects with ``file_name``), or
        names an unsafe file (see :func:`safe_relative_name`).
    """
    path = Path(ann_file)
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        hint = " (it looks like an MPII person list: use --dataset mpii)" if isinstance(data, list) else ""
        raise AnnotationError(f"{path} is not a COCO-format annotation file: no 'images' list{hint}")
    names = []
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "file_name" not in image:
            raise AnnotationError(f"{path} is not a COCO-format annotation file: images[{i}] has no 'file_name'")
        names.append(safe_relative_name(image["file_name"], f"{path}: images[{i}].file_name"))
    return _unique(names)


def mpii_image_names(ann_file: str | os.PathLike) -> list[str]:
    """Image names (each person's ``image``) of an HRNet-style MPII annotation file (``annot/valid.json``).

    Several persons share an image; each image is listed once.

    Raises
    ------
    AnnotationError
        If the file is missing, not JSON, not a list of persons with ``image``, or names an unsafe file.
    """
    path = Path(ann_file)
    data = load_json(path)
    if not isinstance(data, list):
        hint = " (it looks like a COCO-format file: use --dataset coco or ochuman)" if isinstance(data, dict) else ""
        raise AnnotationError(f"{path} is not an HRNet-style MPII annotation file: expected a list of persons{hint}")
    names = []
    for i, person in enumerate(data):
        if not isinstance(person, dict) or "image" not in person:
            raise AnnotationError(f"{path} is not an HRNet-style MPII annotation file: person {i} has no 'image'")
        names.append(safe_relative_name(person["image"], f"{path}: person {i} 'image'"))
    return _unique(names)


def folder_image_names(images_dir: str | os.PathLike) -> list[str]:
    """Every image file (by suffix, see :data:`IMAGE_SUFFIXES`) under ``images_dir``, recursively, sorted.

    Hidden files and folders (names starting with '.') are skipped.

    Raises
    ------
    AnnotationError
        If ``images_dir`` is not a folder.
    """
    root = Path(images_dir)
    if not root.is_dir():
        raise AnnotationError(f"image folder {root} not found; check the --images path")
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).as_posix()
        for filename in filenames:
            if not filename.startswith(".") and filename.lower().endswith(IMAGE_SUFFIXES):
                names.append(filename if rel == "." else f"{rel}/{filename}")
    return sorted(names)


ANNOTATION_READERS: dict[str, Callable[[str | os.PathLike], list[str]]] = {
    "coco": coco_image_names,
    "ochuman": coco_image_names,
    "mpii": mpii_image_names,
}
DATASETS = (*ANNOTATION_READERS, "folder")


def image_names(dataset: str, ann_file: str | os.PathLike | None, images_dir: str | os.PathLike) -> list[str]:
    """The images of ``dataset``: those its annotation file references, or every image under ``images_dir``.

    Parameters
    ----------
    dataset : {'coco', 'ochuman', 'mpii', 'folder'}
    ann_file : path or None
        The annotation file; ignored (may be None) for ``folder``.
    images_dir : path
        The image folder, used only for ``folder``.
    """
    if dataset == "folder":
        return folder_image_names(images_dir)
    if dataset not in ANNOTATION_READERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if ann_file is None:
        raise AnnotationError(f"dataset {dataset!r} needs an annotation file (--ann)")
    return ANNOTATION_READERS[dataset](ann_file)


def resolve_image(images_dir: str | os.PathLike, name: str) -> Path:
    """``images_dir / name`` after checking that it stays inside ``images_dir`` (also through symbolic links).

    Raises
    ------
    AnnotationError
        If ``name`` is unsafe or resolves outside ``images_dir``.
    """
    root = Path(images_dir).resolve()
    path = (root / safe_relative_name(name)).resolve()
    if not path.is_relative_to(root):
        raise AnnotationError(f"image {name!r} resolves to {path}, outside the image folder {root}; refused")
    return path
