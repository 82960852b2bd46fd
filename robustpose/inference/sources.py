"""Image sources for evaluation: clean images, a built -C set, or corruption on the fly with build-c's seeds.

Each source is a picklable callable ``name -> (H, W, 3) uint8 RGB`` (DataLoader workers get a copy). All decode with
Pillow (:func:`robustpose.datasets.imageio.load_rgb`), the decoder that built the -C sets, so that corrupting on the
fly and reading a built set give the same pixels.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustpose.corruptions import corrupt
from robustpose.datasets.build_c import cell_path, seed_for
from robustpose.datasets.imageio import DEFAULT_JPEG_QUALITY, encode_image, load_rgb
from robustpose.datasets.readers import resolve_image


@dataclass(frozen=True)
class FolderImages:
    """Images ``root / name`` (clean evaluation)."""

    root: Path

    def __call__(self, name: str) -> np.ndarray:
        return load_rgb(resolve_image(self.root, name))


@dataclass(frozen=True)
class OnTheFlyImages:
    """``root / name`` corrupted in memory exactly as ``robustpose build-c`` writes it.

    Seed: :func:`robustpose.datasets.build_c.seed_for` (``cell_seed(base_seed, corruption, severity, name)``);
    ``fmt`` ``jpg``/``png`` round-trips the result through that encoder (the published benchmarks are JPEG q75),
    ``None`` skips encoding.
    """

    root: Path
    corruption: str
    severity: int
    base_seed: int = 0
    fmt: str | None = "jpg"
    quality: int = DEFAULT_JPEG_QUALITY
    layout: str = "robustpose"

    def __call__(self, name: str) -> np.ndarray:
        image = load_rgb(resolve_image(self.root, name))
        seed = seed_for(self.layout, self.base_seed, self.corruption, self.severity, name)
        out = corrupt(image, self.corruption, self.severity, seed)
        if self.fmt is None:
            return out
        return load_rgb(io.BytesIO(encode_image(out, self.fmt, self.quality)))


@dataclass(frozen=True)
class BuiltCImages:
    """Images of one cell of a built -C set (``OUT/<corruption>/<severity>/<name>``, per its ``dataset.json``)."""

    root: Path
    corruption: str
    severity: int
    layout: str = "robustpose"
    fmt: str = "jpg"

    def __call__(self, name: str) -> np.ndarray:
        rel = cell_path(self.layout, self.corruption, self.severity, name, self.fmt)
        return load_rgb(resolve_image(self.root, rel))


def read_dataset_json(data_c: Path) -> dict:
    """``DATA_C/dataset.json`` written by build-c, with an error that says what to do when it is missing."""
    path = Path(data_c) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; --data-c must be an output folder of `robustpose build-c`")
    try:
        record = json.loads(path.read_text())
        if not all(k in record for k in ("corruptions", "severities", "layout", "format")):
            raise ValueError("lacks corruptions, severities, layout or format")
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a build-c dataset.json ({exc}); --data-c must be an output folder of "
                         "`robustpose build-c`") from exc
    return record


def cell_image_path(data_c: Path, record: dict, corruption: str, severity: int, name: str) -> Path:
    """Where the built -C set ``data_c`` (its ``dataset.json`` is ``record``) keeps image ``name`` of a cell."""
    return Path(data_c) / cell_path(record["layout"], corruption, severity, name, record["format"])


def built_c_images(data_c: Path, corruption: str, severity: int) -> BuiltCImages:
    """The :class:`BuiltCImages` of a cell, checking that the set holds it."""
    record = read_dataset_json(data_c)
    if corruption not in record["corruptions"] or severity not in record["severities"]:
        raise ValueError(f"{data_c} has no cell {corruption}/{severity}; it holds {record['corruptions']} at "
                         f"severities {record['severities']}")
    return BuiltCImages(Path(data_c), corruption, severity, record["layout"], record["format"])
