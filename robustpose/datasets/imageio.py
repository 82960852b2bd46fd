"""Read source images the way the benchmarks do, encode corrupted ones, and write files atomically.

Reading follows the reference (AdvMix's ``make_datasets.py``): ``PIL.Image.open(path).convert('RGB')``, so grey,
palette, CMYK and RGBA images become 8-bit RGB exactly as there. Images with more than 8 bits per sample in one
channel (Pillow modes ``I;16*``, ``I``, ``F``) are refused instead: ``convert('RGB')`` clips them to 255, which
silently whitens the picture. EXIF orientation is ignored, as in the reference.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("jpg", "png")
DEFAULT_JPEG_QUALITY = 75  # Pillow's default, used by the AdvMix benchmark images


class ImageReadError(ValueError):
    """A source image cannot be read as an 8-bit RGB image; the message says why."""


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to an ``(H, W, 3)`` uint8 RGB array, as ``PIL.Image.open(path).convert('RGB')``.

    Raises
    ------
    ImageReadError
        If the file is missing, unreadable, not an image, truncated, or a high-bit-depth single-channel image.
    """
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I") or image.mode == "F":
                raise ImageReadError(
                    f"high-bit-depth image (Pillow mode {image.mode}); convert('RGB') would clip it to 255, "
                    "convert it to 8-bit first"
                )
            image.load()
            return np.asarray(image.convert("RGB"))
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError("file not found") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"image too large: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow raises these for broken files
        raise ImageReadError(f"cannot decode image: {exc}") from exc


def encode_image(image: np.ndarray, fmt: str, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 RGB array as JPEG (Pillow, ``quality``, 4:2:0) or PNG (Pillow defaults); PNG also
    takes ``(H, W)`` uint8 (8-bit grey) and ``(H, W, 4)`` uint8 (RGBA).

    ``encode_image(x, 'jpg', 75)`` gives the same bytes as ``Image.fromarray(x).save('f.jpg')``.
    """
    buffer = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    elif fmt == "png":
        Image.fromarray(image).save(buffer, format="PNG")
    else:
        raise ValueError(f"unknown image format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return buffer.getvalue()


def partial_name(path: Path, shared: bool = False) -> Path:
    """The temporary name :func:`write_atomic` uses for ``path`` (same folder, hidden, ``.partial`` suffix); with
    ``shared``, one of this process's own (``.NAME.<pid>-<random>.partial``)."""
    if shared:
        return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    return path.with_name(f".{path.name}.partial")


def write_atomic(path: str | os.PathLike, data: bytes, shared: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename.

    ``shared``: several processes may write the same file at once (the ``dataset.json`` of build-c's shards starting
    together in a job array), so each writes its own temporary file and the last rename wins.

    A reader (or a resumed build) sees either no file or the whole file, never a truncated one. Parent folders
    are created. Errors (``ENOSPC``, ``EACCES``...) propagate as ``OSError`` after the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path, shared)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
