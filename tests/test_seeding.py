"""The -C seeding scheme pinned from outside the code: literal seeds, and distinct seeds for distinct cells.

The literals below were computed once with ``hashlib`` from the scheme as ``docs/seeding.md`` states it (key =
"robustpose-c/sha256-v1" NUL base NUL corruption NUL severity NUL name, first 4 bytes of SHA-256, little-endian),
not by calling :func:`cell_seed`; ``_spec_seed`` re-derives them the same way for cells without a literal.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from robustpose.datasets.build_c import ADVMIX_SEED, seed_for
from robustpose.datasets.seeding import SEEDING_SCHEME, cell_seed


def _spec_seed(base: int, corruption: str, severity: int, name: str) -> int:
    key = "\0".join(["robustpose-c/sha256-v1", str(base), corruption, str(severity), name]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


@pytest.mark.parametrize(("base", "corruption", "severity", "name", "seed"), [
    (0, "gaussian_noise", 1, "000000000785.jpg", 2908768314),   # the value docs/seeding.md quotes
    (7, "gaussian_noise", 1, "000000000785.jpg", 4234890041),   # base seed changes the seed
    (0, "gaussian_noise", 2, "000000000785.jpg", 3211384622),   # severity does
    (0, "frost", 3, "000000000785.jpg", 1340870578),            # corruption does
    (0, "gaussian_noise", 1, "000000000786.jpg", 904610111),    # image does
    (12345, "motion_blur", 5, "images/0001.jpg", 1374675206),   # '/'-separated names are hashed as they are
    (2**32 - 1, "jpeg_compression", 4, "a/b.jpg", 3125145101),  # largest base seed
])
def test_cell_seed_has_the_documented_values(base, corruption, severity, name, seed):
    assert SEEDING_SCHEME == "sha256-v1"
    assert cell_seed(base, corruption, severity, name) == seed
    assert _spec_seed(base, corruption, severity, name) == seed


def test_every_field_of_the_key_moves_the_seed():
    names = ["000000000785.jpg", "000000000786.jpg", "sub/000000000785.jpg"]
    cells = list(itertools.product([0, 1, 7, 2**31], ["gaussian_noise", "shot_noise", "frost"], [1, 2, 5], names))
    seeds = [cell_seed(*c) for c in cells]
    assert len(set(seeds)) == len(cells)  # no two cells share a seed
    assert all(0 <= s < 2**32 for s in seeds)
    assert seeds == [_spec_seed(*c) for c in cells]


def test_fields_are_separated_not_concatenated():
    # "1" + "12" and "11" + "2" would collide if the fields were joined without the NUL separator
    assert cell_seed(1, "gaussian_noise", 12, "x.jpg") != cell_seed(11, "gaussian_noise", 2, "x.jpg")
    assert cell_seed(0, "frost", 1, "1x.jpg") == _spec_seed(0, "frost", 1, "1x.jpg")


def test_integer_like_arguments_hash_as_decimal_integers():
    # numpy / bool integers from a config hash like plain ints (the key writes numbers in decimal)
    import numpy as np

    assert cell_seed(np.int64(7), "gaussian_noise", np.int32(1), "000000000785.jpg") == 4234890041
    assert cell_seed(True, "frost", 3, "a.jpg") == _spec_seed(1, "frost", 3, "a.jpg")


def test_seed_for_dispatches_on_layout():
    assert seed_for("robustpose", 7, "gaussian_noise", 1, "000000000785.jpg") == 4234890041
    assert ADVMIX_SEED == 1
    assert seed_for("advmix", 7, "gaussian_noise", 1, "000000000785.jpg") == 1
