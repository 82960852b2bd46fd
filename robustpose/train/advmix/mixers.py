"""Mixing weights over the views: AdvMix's learned per-pixel weights and the ablations of its paper.

* ``advmix``: per-pixel softmax of the generator's logits (the method).
* ``advmix-image``: one learned weight per view per image: softmax of the generator's spatially averaged logits.
* ``equal``: ``1 / k`` everywhere (EqualMix).
* ``dirichlet``: one random ``Dirichlet(1, ..., 1)`` draw per image (DirichletMix, as AugMix mixes its chains).
* ``sequential``: no mixing: all weight on the last view, built with the augmentations applied one after another
  (``make_views(..., chain=True)``).

Only the first two have a generator to train.
"""

from __future__ import annotations

import torch
from torch import nn

MIXERS = ("advmix", "advmix-image", "equal", "dirichlet", "sequential")
LEARNED = ("advmix", "advmix-image")


def check_mixer(name: str) -> None:
    """Raise ``ValueError`` listing the mixers unless ``name`` is one."""
    if name not in MIXERS:
        raise ValueError(f"unknown mixer {name!r}; known: {', '.join(MIXERS)}")


def mix_weights(mixer: str, views: torch.Tensor, generator_net: nn.Module | None = None,
                generator: torch.Generator | None = None, shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Convex weights over the views, per pixel.

    Args:
        mixer: one of :data:`MIXERS`.
        views: the stacked views.
        generator_net: the :class:`~robustpose.train.advmix.generator.MixGenerator` (learned mixers only).
        generator: CPU random generator for ``dirichlet``.
        shard: ``(rank, world)``: ``views`` are rows ``rank::world`` of a global batch ``world`` times larger;
            ``dirichlet`` draws for the global batch and keeps those rows.

    Shape:
        ``views`` ``(B, k, C, H, W)`` -> ``(B, k, H, W)``.

    Returns:
        Non-negative weights summing to 1 over ``k`` at every pixel; differentiable in the generator's
        parameters for the learned mixers.
    """
    check_mixer(mixer)
    if views.ndim != 5:
        raise ValueError(f"views must be (B, k, C, H, W), got {tuple(views.shape)}")
    b, k, _, h, w = views.shape
    if mixer in LEARNED:
        if generator_net is None:
            raise ValueError(f"mixer {mixer!r} needs the generator network")
        logits = generator_net(views.flatten(1, 2))
        if mixer == "advmix-image":
            logits = logits.mean(dim=(2, 3), keepdim=True).expand(b, k, h, w)
        return torch.softmax(logits, dim=1)
    if mixer == "equal":
        return views.new_full((b, k, h, w), 1 / k)
    if mixer == "dirichlet":
        # Dirichlet(1, ..., 1) = normalised Exponential(1) draws.
        rank, world = shard
        e = -torch.log1p(-torch.rand(b * world, k, generator=generator, dtype=torch.float64))[rank::world]
        wts = (e / e.sum(dim=1, keepdim=True)).to(views)
        return wts[:, :, None, None].expand(b, k, h, w)
    out = views.new_zeros((b, k, h, w))
    out[:, -1] = 1
    return out


def mix(views: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i weights_i * view_i`` per pixel.

    Shape:
        ``(B, k, C, H, W)`` and ``(B, k, H, W)`` -> ``(B, C, H, W)``.
    """
    if weights.shape != views.shape[:2] + views.shape[3:]:
        raise ValueError(f"weights {tuple(weights.shape)} do not match views {tuple(views.shape)}")
    return (views * weights[:, :, None]).sum(dim=1)
