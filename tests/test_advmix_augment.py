"""The AdvMix augmentation ops against known values and PIL, the sub-policy sampler and GridMask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from robustpose.augment import (
    ADVMIX_SUBPOLICIES,
    apply_autoaugment,
    apply_gridmask,
    equalize,
    gridmask_keep,
    invert,
    posterize,
    sample_autoaugment,
    sample_gridmask,
    sharpness,
    solarize,
)
from robustpose.augment.autoaugment import OPS, magnitude


def _levels(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1) / 255


def _random_uint8(seed: int, shape=(2, 3, 13, 11)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).float() / 255


def _pil(a: np.ndarray, i: int) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a[i].transpose(1, 2, 0)))


def _from_pil(im: Image.Image) -> np.ndarray:
    return np.asarray(im).transpose(2, 0, 1).astype(int)


def test_invert_is_an_involution():
    x = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(invert(invert(x)), x)
    assert torch.allclose(invert(_levels(0, 255, 100)), _levels(255, 0, 155))


def test_posterize_keeps_the_high_bits_per_sample():
    x = _levels(200, 255, 7, 129).expand(2, 1, 1, 4)
    out = posterize(x, torch.tensor([3, 8]))
    assert torch.equal(torch.round(out[0] * 255).flatten(), torch.tensor([192.0, 224, 0, 128]))
    assert torch.equal(torch.round(out[1] * 255).flatten(), torch.tensor([200.0, 255, 7, 129]))
    with pytest.raises(ValueError, match="bits"):
        posterize(x, 0)


def test_solarize_inverts_at_and_above_the_threshold():
    x = _levels(0, 127, 128, 200, 255)
    assert torch.equal(torch.round(solarize(x, 128) * 255).flatten(), torch.tensor([0.0, 127, 127, 55, 0]))
    assert torch.equal(solarize(x, 256), x)
    assert torch.allclose(solarize(x, 0), invert(x))
    # A fractional threshold as AutoAugment's level 4 gives (142.2): 142 stays, 143 is inverted.
    assert torch.equal(torch.round(solarize(_levels(142, 143), magnitude("solarize", 4)) * 255).flatten(),
                       torch.tensor([142.0, 112]))


@pytest.mark.parametrize("seed", [0, 1])
def test_equalize_matches_pil(seed):
    a = _random_uint8(seed)
    a[1] = a[1] // 8 + 100  # a narrow histogram
    a[1, 2] = 37  # a constant channel stays constant
    out = torch.round(equalize(_to_tensor(a)) * 255).numpy().astype(int)
    for i in range(2):
        assert np.array_equal(out[i], _from_pil(ImageOps.equalize(_pil(a, i))))


@pytest.mark.parametrize("factor", [0.3, 1.0, 1.7])
def test_sharpness_matches_pil_within_one_level(factor):
    a = _random_uint8(3)
    out = torch.round(sharpness(_to_tensor(a), factor) * 255).numpy().astype(int)
    for i in range(2):
        ref = _from_pil(ImageEnhance.Sharpness(_pil(a, i)).enhance(factor))
        assert np.abs(out[i] - ref).max() <= 1
    if factor == 1.0:
        assert np.array_equal(out, a.astype(int))


def test_magnitudes_follow_the_autoaugment_tables():
    assert [magnitude("posterize", m) for m in (5, 6, 7)] == [6.0, 5.0, 5.0]
    assert magnitude("solarize", 0) == 256 and magnitude("solarize", 9) == 0
    assert magnitude("sharpness", 7) == pytest.approx(0.7)
    assert {op for s in ADVMIX_SUBPOLICIES for op in (s.op1, s.op2)} <= set(OPS)
    assert len(ADVMIX_SUBPOLICIES) == 12


def test_autoaugment_is_replayable_and_matches_pil():
    a = _random_uint8(4, (64, 3, 9, 8))
    x = _to_tensor(a)
    params = sample_autoaugment(64, torch.Generator().manual_seed(5))
    again = sample_autoaugment(64, torch.Generator().manual_seed(5))
    assert all(torch.equal(params[k], again[k]) for k in params)
    out = torch.round(apply_autoaugment(x, params) * 255).numpy().astype(int)
    assert torch.equal(apply_autoaugment(x, params), apply_autoaugment(x, again))
    pil_ops = {"equalize": lambda im, a: ImageOps.equalize(im), "invert": lambda im, a: ImageOps.invert(im),
               "posterize": lambda im, a: ImageOps.posterize(im, int(a)),
               "solarize": lambda im, a: ImageOps.solarize(im, a),
               "sharpness": lambda im, a: ImageEnhance.Sharpness(im).enhance(a)}
    for i in range(64):
        im = _pil(a, i)
        for slot in range(2):
            k = int(params["op"][i, slot])
            if k >= 0:
                im = pil_ops[OPS[k]](im, float(params["arg"][i, slot]))
        assert np.abs(out[i] - _from_pil(im)).max() <= 1, (i, params["op"][i].tolist())
    # The sub-policy whose first probability is 0 never applies its first operation.
    never = [i for i, s in enumerate(ADVMIX_SUBPOLICIES) if s.p1 == 0]
    many = sample_autoaugment(4000, torch.Generator().manual_seed(6))
    assert (many["op"][torch.isin(many["policy"], torch.tensor(never)), 0] == -1).all()
    assert 0 < (many["op"] == -1).float().mean() < 1


def test_ops_give_the_same_result_on_channels_last_batches():
    # the engine trains in NHWC memory order (TrainConfig.channels_last): every op must accept it unchanged
    x = _to_tensor(_random_uint8(7, (64, 3, 9, 8)))
    nhwc = x.contiguous(memory_format=torch.channels_last)
    params = sample_autoaugment(64, torch.Generator().manual_seed(8))
    assert torch.equal(apply_autoaugment(nhwc, params), apply_autoaugment(x, params))
    assert torch.equal(equalize(nhwc), equalize(x))
    grid = sample_gridmask(64, (9, 8), generator=torch.Generator().manual_seed(9))
    assert torch.equal(apply_gridmask(nhwc, grid), apply_gridmask(x, grid))


def test_gridmask_known_mask():
    # 4 x 4 crop on a 6 x 6 canvas (offset 1), period 2, band 1, bands starting at canvas row/column 0:
    # canvas positions 0, 2, 4 are on a band, so crop positions 1 and 3 are.
    params = {"apply": torch.tensor([True, False]), "d": torch.tensor([2, 2]), "start_y": torch.tensor([0, 0]),
              "start_x": torch.tensor([0, 0])}
    keep = gridmask_keep(params, (4, 4))
    band = torch.tensor([False, True, False, True])
    assert torch.equal(keep[0, 0].bool(), band[:, None] | band[None, :])
    assert keep[1].all()
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(apply_gridmask(x, params), x * keep)


def test_gridmask_is_deterministic_and_keeps_three_quarters():
    size = (64, 48)
    p1 = sample_gridmask(512, size, p=1.0, generator=torch.Generator().manual_seed(7))
    p2 = sample_gridmask(512, size, p=1.0, generator=torch.Generator().manual_seed(7))
    k1, k2 = gridmask_keep(p1, size), gridmask_keep(p2, size)
    assert torch.equal(k1, k2)
    assert not torch.equal(k1, gridmask_keep(sample_gridmask(512, size, 1.0, torch.Generator().manual_seed(8)),
                                             size))
    assert 0.70 < float(k1.mean()) < 0.80  # 1 - (1 - 0.5)^2 = 0.75
    assert float(k1.mean(dim=(1, 2, 3)).min()) < 1  # every sample is masked somewhere
    p0 = sample_gridmask(100, size, p=0.0, generator=torch.Generator().manual_seed(9))
    assert gridmask_keep(p0, size).all()
    drawn = sample_gridmask(4000, size, p=0.7, generator=torch.Generator().manual_seed(10))
    assert abs(float(drawn["apply"].float().mean()) - 0.7) < 0.03


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        equalize(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="threshold"):
        solarize(torch.rand(2, 3, 4, 4), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="ratio"):
        gridmask_keep(sample_gridmask(1, (8, 8)), (8, 8), ratio=1.0)
