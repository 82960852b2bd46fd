"""Shared fixtures: the sample data beside the checkout and the reference imagecorruptions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TESTS = Path(__file__).resolve().parent
SHARED_DATA = TESTS.parents[1] / "shared" / "data"
sys.path.insert(0, str(TESTS))  # for reference_shim

SAMPLE_IMAGES = sorted(SHARED_DATA.glob("*/*.jpg")) if SHARED_DATA.is_dir() else []


def sample_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load_rgb(path: Path) -> np.ndarray:
    """A sample image as an (H, W, 3) uint8 RGB array, read as the AdvMix script reads it (PIL, convert RGB)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one thread is many times faster than several on a shared, loaded machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"sample data not found at {SHARED_DATA} (CI puts ../shared beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reference():
    """imagecorruptions 1.1.2 behind the test-only compatibility shim."""
    from reference_shim import load_reference

    try:
        return load_reference()
    except ImportError as exc:
        pytest.skip(str(exc))


def assert_bit_identical_to_reference(reference, image: np.ndarray, name: str, severities, seed: int) -> None:
    """Our ``name`` at each severity equals the reference's after ``np.random.seed(seed)``, pixel for pixel."""
    from robustpose.corruptions import corrupt

    for severity in severities:
        np.random.seed(seed)
        expected = reference.corrupt(image, corruption_name=name, severity=severity)
        ours = corrupt(image, name, severity, rng=np.random.RandomState(seed))
        np.testing.assert_array_equal(ours, expected, err_msg=f"{name} severity {severity}")
