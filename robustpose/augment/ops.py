"""Pixel operations of the AutoAugment colour policies, batched on ``(B, C, H, W)`` float tensors in [0, 1].

Every operation acts on each channel on its own (so channel order, RGB or BGR, does not matter) and takes its
per-sample parameters as ``(B,)`` tensors (a Python number is broadcast to the batch). The level-based operations
(posterize, solarize, equalize) treat the input as an 8-bit image: values are rounded to the nearest of the 256
levels ``k / 255`` first, and the output lies on those levels, as PIL's ``ImageOps`` gives on ``uint8`` images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_image(x: torch.Tensor, name: str = "input") -> None:
    """Raise ``ValueError`` unless ``x`` is a floating ``(B, C, H, W)`` tensor."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor of shape (B, C, H, W), got {got}")


def per_sample(value: torch.Tensor | float, x: torch.Tensor, name: str, dtype: torch.dtype | None = None
               ) -> torch.Tensor:
    """``value`` as a ``(B, 1, 1, 1)`` tensor on ``x``'s device (dtype ``dtype``, default ``x``'s).

    Raises ``ValueError`` naming ``name`` when a tensor ``value`` does not have shape ``(B,)``.
    """
    dtype = dtype or x.dtype
    v = torch.as_tensor(value, device=x.device, dtype=dtype)
    if v.ndim == 0:
        v = v.expand(x.shape[0])
    if v.shape != (x.shape[0],):
        raise ValueError(f"{name} must be a number or a ({x.shape[0]},) tensor (one per sample), got shape "
                         f"{tuple(v.shape)}")
    return v.view(-1, 1, 1, 1)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """8-bit levels of ``x``: ``round(255 x)`` clipped to [0, 255], as int64."""
    return torch.round(x * 255).clamp_(0, 255).long()


def invert(x: torch.Tensor) -> torch.Tensor:
    """``1 - x`` (PIL ``ImageOps.invert``).

    Args:
        x: image batch in [0, 1].

    Shape:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``.

    Returns:
        The negative image.
    """
    check_image(x)
    return 1 - x


def posterize(x: torch.Tensor, bits: torch.Tensor | int) -> torch.Tensor:
    """Keep the ``bits`` most significant bits of each 8-bit level (PIL ``ImageOps.posterize``).

    Args:
        x: image batch in [0, 1].
        bits: bits kept per sample, integers in [1, 8]; ``(B,)`` or a number.

    Shape:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``.

    Returns:
        ``((round(255 x) >> (8 - bits)) << (8 - bits)) / 255``.
    """
    check_image(x)
    b = per_sample(bits, x, "bits", torch.long)
    if bool(((b < 1) | (b > 8)).any()):
        raise ValueError(f"bits must lie in [1, 8], got {b.flatten().tolist()}")
    shift = 8 - b
    return ((_levels(x) >> shift) << shift).to(x.dtype) / 255


def solarize(x: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """Invert the 8-bit levels at or above ``threshold`` (PIL ``ImageOps.solarize``).

    Args:
        x: image batch in [0, 1].
        threshold: per-sample threshold on the 0-255 level scale (256 leaves the image unchanged, 0 inverts it);
            ``(B,)`` or a number.

    Shape:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``.

    Returns:
        ``q / 255`` where ``q < threshold``, ``(255 - q) / 255`` elsewhere, with ``q = round(255 x)``.
    """
    check_image(x)
    t = per_sample(threshold, x, "threshold", torch.float64)
    q = _levels(x)
    return torch.where(q >= t, 255 - q, q).to(x.dtype) / 255


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each channel of each image (PIL ``ImageOps.equalize``, integer arithmetic).

    With ``h`` the 256-bin histogram of a channel, ``N`` its pixel count and ``h_last`` the count of its highest
    occupied level, ``step = (N - h_last) // 256`` and level ``i`` maps to
    ``min(255, (step // 2 + sum(h[:i])) // step)``; a channel with ``step == 0`` (one level, or nearly so) is left
    unchanged.

    Args:
        x: image batch in [0, 1].

    Shape:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``.

    Returns:
        The equalised batch, on the 256 levels ``k / 255``.
    """
    check_image(x)
    b, c, h, w = x.shape
    q = _levels(x).reshape(b * c, h * w)  # reshape: NHWC (channels_last) batches are not viewable
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, q, torch.ones_like(q))
    last = hist.gather(1, q.max(dim=1, keepdim=True).values)
    step = (h * w - last) // 256
    below = torch.cumsum(hist, dim=1) - hist
    lut = ((step // 2 + below) // step.clamp(min=1)).clamp_(max=255)
    lut = torch.where(step > 0, lut, torch.arange(256, device=x.device).expand(b * c, 256))
    return lut.gather(1, q).view(b, c, h, w).to(x.dtype) / 255


def sharpness(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Blend with a smoothed copy (PIL ``ImageEnhance.Sharpness``): ``factor`` 1 is the identity, 0 the smoothed
    image, above 1 sharper.

    The smoothed copy is PIL's ``SMOOTH`` filter (3x3 kernel, centre 5, the rest 1, over 13) rounded to 8-bit
    levels on the interior; the one-pixel border keeps the input, as PIL's filter does.

    Args:
        x: image batch in [0, 1].
        factor: per-sample enhancement factor; ``(B,)`` or a number.

    Shape:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``.

    Returns:
        ``clip(smooth + factor * (x - smooth), 0, 1)`` rounded to the 256 levels.
    """
    check_image(x)
    f = per_sample(factor, x, "factor")
    b, c, h, w = x.shape
    xq = _levels(x).to(x.dtype) / 255
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5
    kernel = (kernel / 13).expand(c, 1, 3, 3)
    smooth = xq.clone()
    if h > 2 and w > 2:
        inner = F.conv2d(xq, kernel, groups=c)
        smooth[:, :, 1:-1, 1:-1] = torch.round(inner * 255) / 255
    out = (smooth + f * (xq - smooth)).clamp(0, 1)
    return torch.round(out * 255) / 255
