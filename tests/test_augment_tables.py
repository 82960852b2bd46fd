"""The AdvMix augmentation tables against the official code's values (``AIprogrammer/AdvMix`` ``lib/dataset/advaug.py``,
restated in ``/work/shared/reference/trainers.md`` 1.1), written out here by hand.

* GridMask: band ``l = min(max(int(d * ratio + 0.5), 1), d - 1)`` (round half *up*: ``int(x + 0.5)``, not Python's
  round-half-to-even), bands at ``s + i d`` for ``i < canvas // d`` on a canvas ``int(1.5 H) x int(1.5 W)``, the crop
  at the canvas centre (offset ``(canvas - H) // 2``), inverted mode (bands kept, squares between them zeroed).
* AutoAugment: the 16 ImageNet sub-policies the official list keeps, minus the four with ``color`` or
  ``autocontrast`` = 12, in order and with duplicates; magnitudes ``posterize = round(linspace(8, 4, 10))``,
  ``solarize = linspace(256, 0, 10)``, ``sharpness = linspace(0, 0.9, 10)`` applied as ``1 +- m``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.augment import ADVMIX_SUBPOLICIES, gridmask_keep, sample_autoaugment, sample_gridmask
from robustpose.augment.autoaugment import OPS, SubPolicy, magnitude

# band width by period d at ratio 0.5, by hand: int(d / 2 + 0.5) capped to d - 1 (d = 2 and 3 hit the caps)
BAND_AT_HALF = {2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 4, 9: 5, 10: 5, 11: 6, 21: 11, 30: 15, 31: 16}
# ratio 0.3: int(0.3 d + 0.5)
BAND_AT_0_3 = {2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 12: 4, 15: 5, 25: 8}


def reference_keep(size: tuple[int, int], d: int, band: int, start_y: int, start_x: int) -> np.ndarray:
    """The official mask, re-derived: zero the bands on the 1.5x canvas, invert, centre-crop."""
    h, w = size
    hh, ww = int(1.5 * h), int(1.5 * w)
    mask = np.ones((hh, ww))
    for i in range(hh // d):
        s = d * i + start_y
        mask[s:min(s + band, hh), :] = 0
    for i in range(ww // d):
        s = d * i + start_x
        mask[:, s:min(s + band, ww)] = 0
    mask = 1 - mask  # mode 1
    oy, ox = (hh - h) // 2, (ww - w) // 2
    return mask[oy:oy + h, ox:ox + w]


def params(d: int, start_y: int, start_x: int, apply: bool = True) -> dict[str, torch.Tensor]:
    return {"apply": torch.tensor([apply]), "d": torch.tensor([d]), "start_y": torch.tensor([start_y]),
            "start_x": torch.tensor([start_x])}


def band_rows(keep: torch.Tensor) -> list[int]:
    return [int(i) for i in torch.nonzero(keep.bool().all(dim=1)).flatten()]


@pytest.mark.parametrize(("ratio", "table"), [(0.5, BAND_AT_HALF), (0.3, BAND_AT_0_3)])
def test_band_width_rounds_half_up_and_is_capped(ratio, table):
    size = (64, 64)
    for d, band in table.items():
        keep = gridmask_keep(params(d, 0, 0), size, ratio)[0, 0]
        np.testing.assert_array_equal(keep.numpy(), reference_keep(size, d, band, 0, 0), err_msg=f"d={d}")


@pytest.mark.parametrize("size", [(64, 48), (17, 23), (9, 8)])
def test_masks_equal_the_official_construction_for_every_period_and_offset(size):
    h, w = size
    for d in range(2, min(h, w)):
        band = min(max(int(d * 0.5 + 0.5), 1), d - 1)
        for sy, sx in {(0, 0), (d - 1, 0), (0, d - 1), (d // 2, (d + 1) // 3)}:
            keep = gridmask_keep(params(d, sy, sx), size, 0.5)[0, 0].numpy()
            np.testing.assert_array_equal(keep, reference_keep(size, d, band, sy, sx), err_msg=f"{size} d={d}")
    assert gridmask_keep(params(5, 1, 2, apply=False), size, 0.5).all()


def test_keep_mask_shape_dtype_and_batch_independence():
    p = {"apply": torch.tensor([True, False, True]), "d": torch.tensor([4, 4, 7]),
         "start_y": torch.tensor([1, 1, 6]), "start_x": torch.tensor([3, 3, 0])}
    keep = gridmask_keep(p, (20, 16))
    assert keep.shape == (3, 1, 20, 16) and keep.dtype == torch.float32
    np.testing.assert_array_equal(keep[0, 0].numpy(), reference_keep((20, 16), 4, 2, 1, 3))
    assert keep[1].all()
    np.testing.assert_array_equal(keep[2, 0].numpy(), reference_keep((20, 16), 7, 4, 6, 0))


def test_sampled_periods_and_offsets_cover_the_official_ranges():
    size = (12, 10)
    p = sample_gridmask(5000, size, p=0.7, generator=torch.Generator().manual_seed(0))
    d, sy, sx = p["d"], p["start_y"], p["start_x"]
    assert int(d.min()) == 2 and int(d.max()) == 9  # randint(2, min(h, w)): 10 excluded
    assert set(d.tolist()) == set(range(2, 10))
    assert bool((sy >= 0).all() and (sy < d).all() and (sx >= 0).all() and (sx < d).all())
    assert bool((sy == d - 1).any() and (sy == 0).any() and (sx == d - 1).any())
    assert abs(float(p["apply"].float().mean()) - 0.7) < 0.03
    assert p["apply"].dtype == torch.bool and d.dtype == torch.int64 and sy.dtype == torch.int64


def test_gridmask_arguments_are_checked():
    with pytest.raises(ValueError, match="at least 3 x 3"):
        sample_gridmask(2, (2, 8))
    with pytest.raises(ValueError, match="p must lie"):
        sample_gridmask(2, (8, 8), p=1.5)
    for ratio in (0.0, 1.0):
        with pytest.raises(ValueError, match="ratio must lie"):
            gridmask_keep(params(4, 0, 0), (8, 8), ratio)


OFFICIAL_SUBPOLICIES = [  # (p1, op1, level1, p2, op2, level2), the official list without color / autocontrast
    (0.8, "equalize", 8, 0.6, "equalize", 3),
    (0.6, "posterize", 7, 0.6, "posterize", 6),
    (0.4, "equalize", 7, 0.2, "solarize", 4),
    (0.6, "solarize", 3, 0.6, "equalize", 7),
    (0.8, "posterize", 5, 1.0, "equalize", 2),
    (0.6, "equalize", 8, 0.4, "posterize", 6),
    (0.0, "equalize", 7, 0.8, "equalize", 8),
    (0.6, "invert", 4, 1.0, "equalize", 8),
    (0.4, "sharpness", 7, 0.6, "invert", 8),
    (0.4, "equalize", 7, 0.2, "solarize", 4),
    (0.6, "invert", 4, 1.0, "equalize", 8),
    (0.8, "equalize", 8, 0.6, "equalize", 3),
]
POSTERIZE_BITS = [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]  # round(linspace(8, 4, 10)): 8, 7.56, 7.11, 6.67, 6.22, ...
SOLARIZE = [256, 227.5556, 199.1111, 170.6667, 142.2222, 113.7778, 85.3333, 56.8889, 28.4444, 0]
SHARPNESS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_subpolicies_are_the_official_ones_in_order():
    assert [(s.p1, s.op1, s.level1, s.p2, s.op2, s.level2) for s in ADVMIX_SUBPOLICIES] == OFFICIAL_SUBPOLICIES
    assert OPS == ("equalize", "posterize", "solarize", "invert", "sharpness")


def test_magnitudes_at_every_level():
    assert [magnitude("posterize", i) for i in range(10)] == POSTERIZE_BITS
    np.testing.assert_allclose([magnitude("solarize", i) for i in range(10)], SOLARIZE, atol=1e-4)
    np.testing.assert_allclose([magnitude("sharpness", i) for i in range(10)], SHARPNESS, atol=1e-12)
    assert {magnitude(op, i) for op in ("equalize", "invert") for i in range(10)} == {0.0}
    with pytest.raises(ValueError, match="unknown operation"):
        magnitude("rotate", 3)
    for level in (-1, 10):
        with pytest.raises(ValueError, match="level must lie"):
            magnitude("posterize", level)


def test_sampled_arguments_and_probabilities_follow_the_table():
    n = 24000
    p = sample_autoaugment(n, torch.Generator().manual_seed(1))
    policy, op, arg = p["policy"], p["op"], p["arg"]
    counts = torch.bincount(policy, minlength=12)
    assert int(counts.min()) > n / 12 * 0.85  # uniform over the 12 (duplicates are separate entries)
    for k, (p1, op1, l1, p2, op2, l2) in enumerate(OFFICIAL_SUBPOLICIES):
        rows = policy == k
        for slot, (prob, name, level) in enumerate(((p1, op1, l1), (p2, op2, l2))):
            applied = op[rows, slot] >= 0
            assert abs(float(applied.float().mean()) - prob) < 0.05, (k, slot)
            assert bool((op[rows, slot][applied] == OPS.index(name)).all())
            got = arg[rows, slot]
            if name == "posterize":
                assert bool((got == POSTERIZE_BITS[level]).all())
            elif name == "solarize":
                torch.testing.assert_close(got, torch.full_like(got, SOLARIZE[level]), atol=1e-4, rtol=0)
            elif name == "sharpness":  # factor 1 + m or 1 - m, each about half the time
                plus = torch.isclose(got, torch.tensor(1 + SHARPNESS[level], dtype=got.dtype))
                minus = torch.isclose(got, torch.tensor(1 - SHARPNESS[level], dtype=got.dtype))
                assert bool((plus | minus).all()) and 0.4 < float(plus.float().mean()) < 0.6
            else:
                assert bool((got == 0).all())


def test_custom_policies_and_empty_list():
    only = (SubPolicy("solarize", 1.0, 9, "posterize", 0.0, 0),)
    p = sample_autoaugment(50, torch.Generator().manual_seed(2), policies=only)
    assert bool((p["op"][:, 0] == OPS.index("solarize")).all() and (p["op"][:, 1] == -1).all())
    assert bool((p["arg"][:, 0] == 0).all() and (p["arg"][:, 1] == 8).all())
    with pytest.raises(ValueError, match="must not be empty"):
        sample_autoaugment(2, policies=())
