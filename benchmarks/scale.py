"""Per-item costs on this CPU, the inputs of the cost sheet in ``docs/scale.md``.

Measured single-threaded (1 torch / OpenCV thread), each as the minimum over ``--repeats`` runs of its CPU time
(what the work costs on a core, little changed by other jobs on a shared machine) and of its wall time (which
other jobs inflate), with the 1-minute load average (``os.getloadavg``) read next to it:

* corrupting one COCO image (the sample images, 640 px) per benchmark corruption, mean over severities 1-5, and the
  JPEG q75 encode that ``build-c`` and ``eval --on-the-fly`` do after it (plus the decode of it that ``eval`` does);
* decoding one COCO JPEG to RGB (Pillow, as build-c and eval read images);
* one person crop (HRNet's affine warp to 256x192, cv2) and its normalisation;
* a forward pass per crop of each model size at 256x192, batch ``--batch`` (float32, NHWC, 1 thread; no flip);

and prints them as a table (markdown) with the load next to each. ``docs/scale.md`` turns them into projections.

    python benchmarks/scale.py [--repeats 3] [--batch 8] [--models hrnet_w32,simplebaseline_res50,...]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from robustpose.corruptions import corrupt, corruption_names
from robustpose.datasets.imageio import encode_image, load_rgb
from robustpose.inference.transforms import box_to_center_scale, crop_person
from robustpose.models import create_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco"
MODELS = ("simplebaseline_res18", "simplebaseline_res50", "simplebaseline_res101", "simplebaseline_res152",
          "hrnet_w32", "hrnet_w48")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load1() -> float:
    return os.getloadavg()[0]


def best(fn, repeats: int) -> tuple[float, float, float]:
    """Minimum over ``repeats`` runs of ``fn()``'s CPU seconds (this process, single-threaded: what the work costs,
    whatever else runs) and wall seconds, and the 1-minute load average at the end."""
    cpu, wall = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return min(cpu), min(wall), load1()


def row(name: str, cpu: float, wall: float, load: float, per: str) -> None:
    print(f"| {name} | {1000 * cpu:.2f} ms {per} | {1000 * wall:.2f} ms | {load:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--skip-corruptions", action="store_true")
    parser.add_argument("--grid", nargs="*", default=["coco", "mpii", "ochuman"],
                        help="datasets whose first sample image gets the whole 15 x 5 grid timed once")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    path = min(DATA.glob("*.jpg"))
    image = load_rgb(path)
    h, w = image.shape[:2]
    print(f"image {path.name} {w}x{h}; torch {torch.__version__}, 1 thread; {os.cpu_count()} CPUs\n")
    print("| item | CPU time (min) | wall (min) | load (1 min) |\n|---|---|---|---|")

    row("decode one JPEG (Pillow, RGB)", *best(lambda: load_rgb(path), args.repeats * 5), "per image")
    jpeg = encode_image(image, "jpg", 75)
    row("JPEG q75 encode", *best(lambda: encode_image(image, "jpg", 75), args.repeats * 5), "per image")
    row("decode of that JPEG (eval on the fly)", *best(lambda: load_rgb(io.BytesIO(jpeg)),
                                                        args.repeats * 5), "per image")
    c, s = box_to_center_scale(np.array([[w * 0.3, h * 0.2, w * 0.3, h * 0.6]]), 192 / 256)

    def crop_and_normalise() -> np.ndarray:
        crop = crop_person(image, c[0], s[0], (256, 192))
        return (crop.astype(np.float32) / 255 - MEAN) / STD

    row("crop 256x192 + normalise", *best(crop_and_normalise, args.repeats * 20), "per person")

    if not args.skip_corruptions:
        total_cpu = total_wall = 0.0
        for name in corruption_names("benchmark"):
            runs = [best(lambda n=name, v=severity: corrupt(image, n, v, rng=0), args.repeats)
                    for severity in range(1, 6)]
            cpu, wall, load = (float(np.sum([r[i] for r in runs])) for i in range(3))
            total_cpu, total_wall = total_cpu + cpu, total_wall + wall
            row(f"corrupt: {name} (mean of severities 1-5)", cpu / 5, wall / 5, load / 5, "per image")
        print(f"| corrupt: all 15 x 5 cells of one image | {total_cpu:.2f} s per image | {total_wall:.2f} s | |")

    cells = [(n, v) for n in corruption_names("benchmark") for v in range(1, 6)]
    for dataset in args.grid:  # the whole 15 x 5 grid of one sample image, JPEG encode included: build-c's work
        sample = min((DATA.parent / dataset).rglob("*.jpg"))
        img = load_rgb(sample)
        cpu, wall, load = best(lambda im=img: [encode_image(corrupt(im, n, v, rng=0), "jpg", 75) for n, v in cells],
                               1)
        print(f"| build-c grid, {dataset} sample {img.shape[1]}x{img.shape[0]} (75 corruptions + JPEG encodes) | "
              f"{cpu:.2f} s per image | {wall:.2f} s | {load:.1f} |", flush=True)

    for arch in filter(None, args.models.split(",")):
        model = create_model(arch).eval().to(memory_format=torch.channels_last)
        x = torch.randn(args.batch, 3, 256, 192).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            model(x)  # warm-up (oneDNN primitive creation)
            cpu, wall, load = best(lambda m=model, x=x: m(x), args.repeats)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        row(f"forward {arch} ({params:.1f} M params), 256x192, batch {args.batch}", cpu / args.batch,
            wall / args.batch, load, "per crop")


if __name__ == "__main__":
    main()
