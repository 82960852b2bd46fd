"""The trainers benchmark's table: spreads, differences and step-cost ratios against hand-computed values."""

import importlib
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("trainers_synth")
    finally:
        sys.path.remove(str(BENCH))


def test_summary_means_spreads_and_ratios(bench):
    runs = pd.DataFrame([
        {"row": "standard", "seed": 0, "clean_AP": 60.0, "mPC": 30.0, "rPC": 50.0, "steps_per_s": 20.0, "wall_s": 60},
        {"row": "standard", "seed": 1, "clean_AP": 62.0, "mPC": 31.0, "rPC": 50.0, "steps_per_s": 30.0, "wall_s": 120},
        {"row": "equal", "seed": 0, "clean_AP": 59.0, "mPC": 35.0, "rPC": 59.3, "steps_per_s": 10.0, "wall_s": 300},
        {"row": "equal", "seed": 1, "clean_AP": 55.0, "mPC": 34.0, "rPC": 61.8, "steps_per_s": 5.0, "wall_s": 420},
    ])
    table = bench.summarise(runs)
    assert list(table.index) == ["standard", "equal"]
    assert table.loc["equal", "seeds"] == 2
    assert table.loc["equal", "clean_AP"] == pytest.approx(57.0)
    assert table.loc["equal", "clean_AP_spread"] == pytest.approx(4.0)
    assert table.loc["standard", "mPC_spread"] == pytest.approx(1.0)
    assert table.loc["equal", "d_clean_AP"] == pytest.approx(57.0 - 61.0)
    assert table.loc["equal", "d_mPC"] == pytest.approx(34.5 - 30.5)
    # step time ratio: standard's mean steps/s (25) over the row's (7.5)
    assert table.loc["equal", "step_time_ratio"] == pytest.approx(25.0 / 7.5)
    assert table.loc["equal", "wall_min"] == pytest.approx(6.0)


def test_every_advmix_mixer_is_a_row_and_rows_build_their_methods(bench, tmp_path):
    from robustpose.train.advmix import MIXERS

    assert {"standard", *MIXERS} <= set(bench.ROWS)
    ctx = bench.RowContext(init=tmp_path / "init.pth", data=tmp_path, work=tmp_path, seed=3, gen_width=8)
    advmix = bench.ROWS["advmix[kd_input=clean]"](ctx)
    assert advmix.keywords["settings"].kd_input == "clean"
    assert advmix.keywords["settings"].gen_width == 8
    assert advmix.keywords["settings"].init == str(tmp_path / "init.pth")
    assert bench.ROWS["standard"](ctx).keywords["settings"].init == str(tmp_path / "init.pth")
