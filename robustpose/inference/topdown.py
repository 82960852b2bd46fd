"""The top-down pipeline: decode each image once, crop all its people, batch them through the model, decode.

HRNet / MMPose semantics end to end (see ``docs/inference.md``): affine crop (:mod:`.transforms`), colour order and
ImageNet normalisation from the checkpoint metadata, flip test with the 1-pixel shift, argmax with the
quarter-offset rule (or DARK where the checkpoint or the config asks for it, :mod:`.decode`), and the map back to
image pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from robustpose.models import CheckpointMeta

from .decode import DECODERS, decode_heatmaps, fuse_flipped
from .people import People
from .transforms import crop_person, heatmap_to_image

ImageLoader = Callable[[str], np.ndarray]  # relative image name -> (H, W, 3) uint8 RGB


@dataclass(frozen=True)
class InferenceConfig:
    """How to run the model.

    Attributes:
        flip_test: average with the flipped crop's heatmaps (HRNet ``FLIP_TEST``, on in every official config).
        shift_heatmap: the 1-pixel shift of the un-flipped heatmaps (``SHIFT_HEATMAP``).
        batch_size: crops per forward pass (a flip test runs 2x this many images).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
        amp: float16 autocast, only on CUDA (ignored on CPU).
        workers: DataLoader worker processes decoding, corrupting and cropping (0 = in this process).
        decode: heatmap decoder (``quarter`` or ``dark``, :mod:`.decode`); None: the checkpoint's own
            (``meta.decode``, ``quarter`` for files that do not say).
    """

    flip_test: bool = True
    shift_heatmap: bool = True
    batch_size: int = 64
    device: str = "cpu"
    amp: bool = False
    workers: int = 0
    decode: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 0:
            raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {self.batch_size}, {self.workers}")
        if self.decode is not None and self.decode not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS} or None (the checkpoint's), got {self.decode!r}")

    def decoder(self, meta: CheckpointMeta) -> str:
        """The decoder to use for a model with ``meta``."""
        return self.decode or meta.decode


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other names are checked and passed through.

    Raises ``ValueError`` for a name torch does not know (``gpu``), CUDA on a machine without it, a GPU index
    past the last GPU, or a device type this build of torch cannot allocate on (``mps`` on Linux).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} GPU(s) "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if dev.type not in ("cpu", "cuda"):
        try:
            torch.empty(0, device=dev)
        except (RuntimeError, AssertionError):  # torch's message lists every dispatch key it has
            raise ValueError(f"device {device!r} is not supported by this torch build ({torch.__version__}); use "
                             "--device cpu or auto") from None
    return dev


@dataclass
class StageTimes:
    """Seconds spent per stage (decode+corrupt and crop are summed over workers when ``workers > 0``)."""

    decode: float = 0.0
    crop: float = 0.0
    forward: float = 0.0
    postprocess: float = 0.0
    crops: int = 0
    wall: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"decode_corrupt_s": self.decode, "crop_s": self.crop, "forward_s": self.forward,
                "postprocess_s": self.postprocess, "wall_s": self.wall, "crops": self.crops,
                "crops_per_s": self.crops / self.wall if self.wall > 0 else 0.0}


@dataclass
class Predictions:
    """Per-person keypoints in image pixels, in ``people`` order.

    Attributes:
        people: the boxes that were estimated.
        keypoints: ``(N, J, 3)`` float64: x, y (0-based image pixels) and the heatmap peak value.
        times: where the time went.
    """

    people: People
    keypoints: np.ndarray
    times: StageTimes = field(default_factory=StageTimes)


class _ImageCrops(Dataset):
    """Item k: (person indices, ``(n, H, W, 3)`` uint8 crops, decode seconds, crop seconds) of the k-th image."""

    def __init__(self, people: People, load_image: ImageLoader, input_size: tuple[int, int]) -> None:
        self.groups = list(people.by_image().items())
        self.people = people
        self.load_image = load_image
        self.input_size = input_size

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        name, idx = self.groups[k]
        t0 = time.perf_counter()
        image = self.load_image(name)
        t1 = time.perf_counter()
        crops = np.stack([crop_person(image, self.people.centers[i], self.people.scales[i], self.input_size)
                          for i in idx])
        return idx, crops, t1 - t0, time.perf_counter() - t1


def normalise(crops: torch.Tensor, meta: CheckpointMeta) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 RGB -> ``(B, 3, H, W)`` float32 network input: colour order, /255, mean/std.

    BGR checkpoints get the channels reversed; mean/std apply positionally afterwards (as HRNet does).
    """
    x = crops.permute(0, 3, 1, 2).float().div_(255.0)
    if meta.color == "bgr":
        x = x.flip(1)
    mean = torch.tensor(meta.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(meta.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def heatmaps(model: nn.Module, x: torch.Tensor, meta: CheckpointMeta, config: InferenceConfig) -> torch.Tensor:
    """Model heatmaps ``(B, J, h, w)`` float32 for normalised crops ``x``, flip-fused when ``config.flip_test``."""
    amp = config.amp and x.device.type == "cuda"
    with torch.no_grad(), torch.autocast("cuda", enabled=amp):
        if not config.flip_test:
            return model(x).float()
        both = model(torch.cat([x, x.flip(-1)])).float()
    out, flipped = both.split(len(x))
    return fuse_flipped(out, flipped, meta.flip_pairs, config.shift_heatmap)


def _batches(loader: DataLoader, batch_size: int, times: StageTimes) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Regroup per-image crop stacks into batches of ``batch_size`` crops (the last may be smaller)."""
    idx_buf: list[np.ndarray] = []
    crop_buf: list[np.ndarray] = []
    n = 0
    for idx, crops, t_decode, t_crop in loader:
        times.decode += t_decode
        times.crop += t_crop
        idx_buf.append(np.asarray(idx))
        crop_buf.append(np.asarray(crops))
        n += len(idx)
        while n >= batch_size:
            idx_all, crop_all = np.concatenate(idx_buf), np.concatenate(crop_buf)
            yield idx_all[:batch_size], crop_all[:batch_size]
            idx_buf, crop_buf = [idx_all[batch_size:]], [crop_all[batch_size:]]
            n -= batch_size
    if n:
        yield np.concatenate(idx_buf), np.concatenate(crop_buf)


def predict(model: nn.Module, meta: CheckpointMeta, people: People, load_image: ImageLoader,
            config: InferenceConfig = InferenceConfig()) -> Predictions:
    """Estimate the keypoints of every person in ``people``; ``load_image`` decodes (and corrupts) an image by name.

    ``model`` maps ``(B, 3, H, W)`` normalised crops at ``meta.input_size`` to ``(B, J, h, w)`` heatmaps and must
    already be on ``config.device``. Each image is loaded once and all its people are cropped from it.
    """
    device = resolve_device(config.device)
    times = StageTimes()
    out = np.zeros((len(people), meta.num_joints, 3))
    start = time.perf_counter()
    if len(people):
        dataset = _ImageCrops(people, load_image, meta.input_size)
        loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=config.workers)
        for idx, crops in _batches(loader, config.batch_size, times):
            t0 = time.perf_counter()
            hm = heatmaps(model, normalise(torch.from_numpy(crops).to(device), meta), meta, config).cpu().numpy()
            t1 = time.perf_counter()
            if hm.shape[1] != meta.num_joints:
                raise ValueError(f"the model gives {hm.shape[1]} heatmaps but its metadata lists {meta.num_joints} "
                                 "joints; check --arch / the checkpoint's keypoint set")
            if tuple(hm.shape[2:]) != tuple(meta.heatmap_size):
                raise ValueError(f"the model gives {hm.shape[2]}x{hm.shape[3]} heatmaps for "
                                 f"{meta.input_size[0]}x{meta.input_size[1]} inputs but the metadata says "
                                 f"{meta.heatmap_size[0]}x{meta.heatmap_size[1]}; pass --heatmap-size or fix "
                                 "--input-size (both sides must be divisible by 32)")
            coords, maxvals = decode_heatmaps(hm, config.decoder(meta), meta.target_sigma)
            out[idx, :, :2] = heatmap_to_image(coords, people.centers[idx], people.scales[idx], hm.shape[2:])
            out[idx, :, 2] = maxvals
            times.forward += t1 - t0
            times.postprocess += time.perf_counter() - t1
            times.crops += len(idx)
    times.wall = time.perf_counter() - start
    return Predictions(people, out, times)


def coco_people_records(pred: Predictions) -> list[dict]:
    """One record per person for the metrics' top-down post-processing (rescoring, OKS-NMS).

    Keys: ``image_id``, ``category_id`` 1, ``keypoints`` (flat x, y, score), ``box_score``, ``area`` (padded box
    area in pixels^2), ``center``, ``scale``.
    """
    p = pred.people
    return [{"image_id": p.image_ids[i], "category_id": 1, "keypoints": pred.keypoints[i].reshape(-1).tolist(),
             "box_score": float(p.box_scores[i]), "area": float(p.areas[i]), "center": p.centers[i].tolist(),
             "scale": p.scales[i].tolist()} for i in range(len(p))]


def mpii_records(pred: Predictions) -> list[dict]:
    """MPII predictions in the metrics' json format: ``{"person": i, "image": name, "joints": 16 x [x, y]}``.

    Coordinates are 0-based pixels (the metric adds 1, as HRNet does).
    """
    return [{"person": int(pred.people.image_ids[i]), "image": pred.people.images[i],
             "joints": pred.keypoints[i, :, :2].tolist()} for i in range(len(pred.people))]
