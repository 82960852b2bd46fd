"""Loading and saving pose checkpoints: official HRNet/SimpleBaseline, MMPose 0.x/1.x, robustpose, TorchScript, ONNX.

Everything is loaded with ``torch.load(weights_only=True)``; the numpy arrays in MMPose metadata are admitted through
an allow-list of numpy's array/scalar/dtype constructors (never arbitrary unpickling). A file that needs anything
else is refused with the globals it wants, unless the caller passes ``trust_checkpoint=True``.
Weights load **strictly**: a mismatch raises :class:`CheckpointMismatchError` listing missing, unexpected and
wrong-shaped keys and the architecture the file looks like. Only ``*.num_batches_tracked`` may be missing (the
original SimpleBaseline zoo predates it).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.dtypes
import torch
from torch import nn

from .metadata import CheckpointMeta, default_meta
from .registry import RESNET_VARIANTS, create_model, list_models

FORMAT_KEY = "robustpose_checkpoint"
FORMAT_VERSION = 1
META_FILE = "robustpose_meta.json"  # TorchScript extra file / ONNX metadata_props key
WHICH = ("auto", "state_dict", "best_state_dict")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or used; the message names the file and what to do."""


class CheckpointMismatchError(CheckpointError):
    """The weights do not fit the architecture (missing, unexpected or wrong-shaped keys)."""


def _numpy_safe_globals() -> list[Any]:
    """numpy's array / scalar / dtype reconstructors, under their numpy 2 and numpy 1 module names.

    They only rebuild plain arrays and scalars; whatever they contain still goes through the weights-only unpickler.
    """
    mm = np._core.multiarray
    out: list[Any] = [mm._reconstruct, mm.scalar, np.ndarray, np.dtype,
                      (mm._reconstruct, "numpy.core.multiarray._reconstruct"),
                      (mm.scalar, "numpy.core.multiarray.scalar")]
    out += [getattr(numpy.dtypes, n) for n in dir(numpy.dtypes) if n.endswith("DType")]
    return out


def torch_load(path: str | os.PathLike, *, trust_checkpoint: bool = False) -> Any:
    """``torch.load`` on CPU, weights-only (plus numpy arrays) unless ``trust_checkpoint``.

    Raises :class:`CheckpointError` naming the file and the unsafe globals it asks for.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if trust_checkpoint:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.findall(r"GLOBAL ([\w.]+)", str(exc))
        if zipfile.is_zipfile(path):  # full dotted names of everything outside the allow-list
            allowed = {g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}"
                       for g in _numpy_safe_globals()}
            found = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
        if not found and "Unsupported global" not in str(exc):
            reasons = [line.strip() for line in str(exc).splitlines() if "error:" in line.lower()]
            why = _text_kind(path) or (reasons[-1] if reasons else "not a pickle of tensors")
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({why}); "
                                  "is the file complete and really a .pth?") from exc
        wanted = f" (it asks for {', '.join(sorted(set(found)))})" if found else ""
        raise CheckpointError(
            f"{path}: refused to unpickle objects beyond tensors, containers and numpy arrays{wanted}. Loading it "
            "can run arbitrary code; if you trust where the file came from, pass --trust-checkpoint "
            "(trust_checkpoint=True)."
        ) from exc
    except Exception as exc:  # pickle run on other bytes fails with any of KeyError, IndexError, EOFError, ...
        why = _text_kind(path) or f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({why}); is the file complete?") from exc


def _text_kind(path: Path) -> str | None:
    """What a file that torch cannot load holds, when it is plainly not a checkpoint: ``"the file is empty"``,
    ``"it is an image"``, ``"it is a JSON file"``, ``"it is a text file"``; None for other binary content."""
    with open(path, "rb") as f:  # the head only: the file may be large
        head = f.read(4096)
    if not head:
        return "the file is empty"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG")):
        return "it is an image"
    try:
        text = head.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return None
    if not all(c.isprintable() or c.isspace() for c in text):
        return None
    return "it is a JSON file" if text[:1] in "{[" else "it is a text file"


# ---------------------------------------------------------------- state-dict extraction and key mapping


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def extract_state_dict(obj: Any, which: str = "auto") -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Find the weights in a loaded checkpoint object.

    Returns ``(state_dict with canonical HRNet key names, source format, robustpose metadata dict or {})``.
    ``which``: ``auto`` takes ``state_dict``, else ``best_state_dict``, else the object itself; HRNet's
    ``checkpoint.pth`` holds both (latest epoch and best epoch), so name one to choose.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    meta: dict[str, Any] = {}
    source = "hrnet"
    if isinstance(obj, Mapping) and FORMAT_KEY in obj:
        source, meta = "robustpose", dict(obj.get("meta", {}))
    if _is_state_dict(obj) and which == "auto":
        sd = dict(obj)
    elif isinstance(obj, Mapping):
        keys = ("state_dict", "best_state_dict") if which == "auto" else (which,)
        found = [k for k in keys if _is_state_dict(obj.get(k))]
        if not found:
            raise CheckpointError(f"no state dict under {' or '.join(keys)}; the file has keys {sorted(map(str, obj))}")
        sd = dict(obj[found[0]])
        if source == "hrnet" and "optimizer" in obj and "perf" in obj:
            source = "hrnet-checkpoint"
    else:
        raise CheckpointError(f"expected a state dict or a dict holding one, got {type(obj).__name__}")
    sd, detected = canonical_keys(sd)
    if source != "robustpose" and detected:
        source = detected
    return sd, source, meta


def canonical_keys(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Map any accepted naming to the official HRNet names; returns ``(state_dict, "mmpose-0.x"|"mmpose-1.x"|"")``.

    Strips a leading ``module.`` (DataParallel), maps MMPose ``backbone.`` / ``head.`` (1.x) / ``keypoint_head.``
    (0.x) to the top level and drops ``data_preprocessor.*``.
    """
    out: dict[str, torch.Tensor] = {}
    detected = ""
    for key, value in sd.items():
        k = key.removeprefix("module.")
        if k.startswith("data_preprocessor."):
            continue
        for prefix, fmt in (("backbone.", None), ("head.", "mmpose-1.x"), ("keypoint_head.", "mmpose-0.x")):
            if k.startswith(prefix):
                k = k[len(prefix):]
                detected = fmt or detected or "mmpose-1.x"
                break
        if k in out:
            raise CheckpointError(f"two keys map to {k!r} after removing prefixes")
        out[k] = value
    return out, detected


def _max_index(sd: Mapping[str, Any], pattern: str) -> int:
    """1 + the largest integer captured by ``pattern`` over the keys, 0 if none matches."""
    found = [int(m.group(1)) for k in sd if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def infer_architecture(sd: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, Any]] | None:
    """Guess ``(registry name, constructor overrides)`` from canonical keys and shapes, or ``None``.

    The overrides reproduce non-official shapes too (joint count, tiny widths), so the guess builds a model of the
    file's exact shape whenever the file is a SimpleBaseline or an HRNet.
    """
    if "final_layer.weight" not in sd or "conv1.weight" not in sd:
        return None
    final = sd["final_layer.weight"]
    kwargs: dict[str, Any] = {}
    if final.shape[0] != 17:
        kwargs["num_joints"] = int(final.shape[0])
    if final.shape[-1] != 1:
        kwargs["final_conv_kernel"] = int(final.shape[-1])
    if "stage2.0.fuse_layers.0.1.0.weight" in sd and "transition1.0.0.weight" in sd:
        width = int(sd["transition1.0.0.weight"].shape[0])
        modules = tuple(_max_index(sd, rf"stage{s}\.(\d+)\.") for s in (2, 3, 4))
        blocks = _max_index(sd, r"stage2\.0\.branches\.0\.(\d+)\.")
        name = f"hrnet_w{width}" if f"hrnet_w{width}" in list_models() else "hrnet_w32"
        if name != f"hrnet_w{width}":
            kwargs["width"] = width
        if modules != (1, 4, 3):
            kwargs["stage_modules"] = modules
        if blocks != 4:
            kwargs["num_blocks"] = blocks
        return name, kwargs
    if "deconv_layers.0.weight" in sd and "layer4.0.conv1.weight" in sd:
        bottleneck = "layer1.0.conv3.weight" in sd
        layers = tuple(_max_index(sd, rf"layer{i}\.(\d+)\.") for i in (1, 2, 3, 4))
        block = "bottleneck" if bottleneck else "basic"
        match = [v for v, spec in RESNET_VARIANTS.items() if spec == {"block": block, "layers": layers}]
        name = f"simplebaseline_{match[0]}" if match else "simplebaseline_res50"
        if not match:
            kwargs.update(block=block, layers=layers)
        weights = [sd[f"deconv_layers.{3 * i}.weight"] for i in range(8) if f"deconv_layers.{3 * i}.weight" in sd]
        deconv = tuple(int(w.shape[1]) for w in weights)
        kernels = tuple(int(w.shape[-1]) for w in weights)
        if deconv != (256, 256, 256):
            kwargs["deconv_channels"] = deconv
        if kernels != (4, 4, 4):
            kwargs["deconv_kernels"] = kernels
        if "deconv_layers.0.bias" in sd:
            kwargs["deconv_with_bias"] = True
        if sd["conv1.weight"].shape[0] != 64:
            kwargs["stem_width"] = int(sd["conv1.weight"].shape[0])
        if "skip_layers.0.0.weight" in sd:
            kwargs["skip_connections"] = True
        return name, kwargs
    return None


def describe_architecture(sd: Mapping[str, torch.Tensor]) -> str:
    """Human-readable guess for error messages, e.g. ``hrnet_w32 (num_joints=16)``."""
    guess = infer_architecture(sd)
    if guess is None:
        return "no known architecture (neither SimpleBaseline nor HRNet key names)"
    name, kwargs = guess
    extra = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name} ({extra})" if extra else name


@dataclass(frozen=True)
class KeyReport:
    """Differences between a model's state dict and a file's (canonical) state dict."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    wrong_shape: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # key, model shape, file shape

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)


def compare_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> KeyReport:
    """Compare keys and shapes; a missing ``*.num_batches_tracked`` is tolerated (old checkpoints lack it)."""
    expected = model.state_dict()
    missing = tuple(k for k in expected if k not in sd and not k.endswith("num_batches_tracked"))
    unexpected = tuple(k for k in sd if k not in expected)
    wrong = tuple((k, tuple(expected[k].shape), tuple(sd[k].shape))
                  for k in expected if k in sd and expected[k].shape != sd[k].shape)
    return KeyReport(missing, unexpected, wrong)


def _listing(title: str, items: list[str], limit: int = 12) -> str:
    if not items:
        return ""
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {title} ({len(items)}):\n    " + "\n    ".join(items[:limit]) + more


def load_weights(model: nn.Module, sd: Mapping[str, torch.Tensor], *, arch: str = "", origin: str = "") -> None:
    """Load canonical weights into ``model`` strictly, or raise :class:`CheckpointMismatchError` listing the keys."""
    report = compare_state_dict(model, sd)
    if not report.ok:
        msg = (f"{origin or 'state dict'}: weights do not match {arch or type(model).__name__}"
               + _listing("missing keys", list(report.missing))
               + _listing("unexpected keys", list(report.unexpected))
               + _listing("wrong-shaped keys (model vs file)",
                          [f"{k}: {list(a)} vs {list(b)}" for k, a, b in report.wrong_shape])
               + f"\n  the file looks like: {describe_architecture(sd)}"
               + "\n  fix: pass the matching --arch (or omit it to infer it from the file)")
        raise CheckpointMismatchError(msg)
    full = dict(sd)
    for k, v in model.state_dict().items():
        if k not in full:  # only num_batches_tracked can get here
            full[k] = v
    model.load_state_dict(full, strict=True)


# ---------------------------------------------------------------- exported models (TorchScript, ONNX)


class OnnxHeatmapModel(nn.Module):
    """An ONNX file run by onnxruntime, behaving like a module mapping ``(B, 3, H, W)`` float32 to heatmaps."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise CheckpointError(f"{path}: ONNX models need onnxruntime: pip install 'robustpose[onnx]'") from exc
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.split("/", 2)[1:2] == ["code"] for n in zf.namelist())


def _meta_with_overrides(meta: CheckpointMeta, **overrides: Any) -> CheckpointMeta:
    """Replace the given fields; a new input size without a heatmap size keeps the model's output stride."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if "input_size" in given and "heatmap_size" not in given:
        (ih, iw), (hh, hw) = meta.input_size, meta.heatmap_size
        given["heatmap_size"] = (given["input_size"][0] * hh // ih, given["input_size"][1] * hw // iw)
    return replace(meta, **given)


# ---------------------------------------------------------------- public API


@dataclass
class LoadedModel:
    """A model ready for inference (eval mode, on its device) and the metadata that says how to feed it."""

    model: nn.Module
    meta: CheckpointMeta
    path: Path


def load_checkpoint(path: str | os.PathLike, *, arch: str | None = None,
                    input_size: tuple[int, int] | None = None, heatmap_size: tuple[int, int] | None = None,
                    color: str | None = None, which: str = "auto", trust_checkpoint: bool = False,
                    device: str = "cpu") -> LoadedModel:
    """Load any supported checkpoint into an eval-mode model on ``device``.

    Formats: ``*.onnx`` (onnxruntime), TorchScript archives (``torch.jit.load``; detected by content), and
    ``torch.save`` files: official plain state dicts, HRNet ``checkpoint.pth`` (``module.``-prefixed
    ``state_dict`` / ``best_state_dict``, see ``which``), MMPose 0.x / 1.x, and robustpose's own checkpoints.

    ``arch`` defaults to the architecture inferred from the keys; ``input_size``, ``heatmap_size`` (both
    ``(height, width)``) and ``color`` override the metadata (defaults per source: see :func:`default_meta`).
    """
    path = Path(path)
    overrides = {"input_size": tuple(input_size) if input_size else None,
                 "heatmap_size": tuple(heatmap_size) if heatmap_size else None, "color": color}
    if path.suffix.lower() == ".onnx":
        model: nn.Module = OnnxHeatmapModel(path, device)
        meta = _meta_from_json(path, _onnx_metadata(path), arch, "onnx")
        return LoadedModel(model.eval(), _meta_with_overrides(meta, **overrides), path)
    if path.is_file() and _is_torchscript(path):
        extra = {META_FILE: ""}
        model = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        meta = _meta_from_json(path, extra[META_FILE], arch, "torchscript")
        return LoadedModel(model.eval(), _meta_with_overrides(meta, **overrides), path)

    obj = torch_load(path, trust_checkpoint=trust_checkpoint)
    try:
        sd, source, saved_meta = extract_state_dict(obj, which)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    if saved_meta:
        meta = CheckpointMeta.from_dict({**saved_meta, "source": "robustpose"})
        if arch is not None and arch != meta.arch:
            raise CheckpointError(f"{path}: --arch {arch} contradicts the checkpoint's own architecture {meta.arch}")
        arch_kwargs = dict(meta.arch_kwargs)
    else:
        guess = infer_architecture(sd)
        if arch is None:
            if guess is None:
                raise CheckpointError(f"{path}: cannot tell the architecture from the keys; pass --arch "
                                      f"(one of {', '.join(list_models())})")
            arch, arch_kwargs = guess
        else:
            arch_kwargs = {"num_joints": int(sd["final_layer.weight"].shape[0])} if "final_layer.weight" in sd else {}
        meta = default_meta(arch, arch_kwargs.get("num_joints", 17), source=source, arch_kwargs=arch_kwargs)
    model = create_model(meta.arch if saved_meta else arch, **arch_kwargs)
    load_weights(model, sd, arch=meta.arch, origin=str(path))
    return LoadedModel(model.to(device).eval(), _meta_with_overrides(meta, **overrides), path)


def _meta_from_json(path: Path, text: str | bytes, arch: str | None, source: str) -> CheckpointMeta:
    if not text:
        if arch is None:
            raise CheckpointError(f"{path}: this {source} file carries no robustpose metadata; pass --arch, "
                                  "--input-size and --color (export with robustpose to embed them)")
        return default_meta(arch, 17, source=source)
    meta = CheckpointMeta.from_dict(json.loads(text))
    return replace(meta, source=source)


def _onnx_metadata(path: Path) -> str:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise CheckpointError(f"{path}: ONNX models need onnxruntime: pip install 'robustpose[onnx]'") from exc
    props = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    return props.get(META_FILE, "")


def _atomic_target(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    return fd, Path(tmp)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: CheckpointMeta,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write a robustpose checkpoint atomically: ``{robustpose_checkpoint: 1, meta, state_dict, **extra}``.

    Only tensors and plain Python values are stored, so it loads with ``weights_only=True``.
    """
    path = Path(path)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        obj = {FORMAT_KEY: FORMAT_VERSION, "meta": meta.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **(extra or {})}
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_torchscript(model: nn.Module, meta: CheckpointMeta, path: str | os.PathLike) -> Path:
    """Trace ``model`` (eval mode, CPU) at ``meta.input_size`` and save it with the metadata embedded."""
    path = Path(path)
    example = torch.zeros(1, 3, *meta.input_size)
    with torch.no_grad():
        traced = torch.jit.trace(model.eval().cpu(), example)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        torch.jit.save(traced, str(tmp), _extra_files={META_FILE: json.dumps(meta.to_dict())})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_onnx(model: nn.Module, meta: CheckpointMeta, path: str | os.PathLike, opset: int = 17) -> Path:
    """Export ``model`` to ONNX (dynamic batch) with the metadata in ``metadata_props``; needs ``onnx``."""
    try:
        import onnx
    except ImportError as exc:
        raise CheckpointError("ONNX export needs the onnx package: pip install 'robustpose[onnx]'") from exc
    path = Path(path)
    example = torch.zeros(1, 3, *meta.input_size)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        torch.onnx.export(model.eval().cpu(), (example,), str(tmp), input_names=["image"], output_names=["heatmaps"],
                          dynamic_axes={"image": {0: "batch"}, "heatmaps": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_FILE, json.dumps(meta.to_dict())
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
