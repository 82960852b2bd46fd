"""mPC / rPC edge cases pinned by hand: labels, subsets, incomplete tables, the error messages users read."""

from __future__ import annotations

import math
import re
import warnings

import pytest

from robustpose.corruptions import SEVERITIES, corruption_names
from robustpose.metrics import MissingCellError, summarize_robustness

BENCHMARK = corruption_names("benchmark")


def table(value: float = 40.0) -> dict:
    return {(c, s): value for c in BENCHMARK for s in SEVERITIES}


def test_metric_label_and_clean_are_stored_as_given():
    s = summarize_robustness(80, table())
    assert s.metric == "AP" and s.clean == 80.0 and isinstance(s.clean, float)
    assert summarize_robustness(80, table(), metric="Mean").metric == "Mean"
    assert s.rpc == 50.0 and s.mpc == 40.0


def test_zero_clean_gives_nan_rpc_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize_robustness(0.0, table())
    assert math.isnan(s.rpc) and s.mpc == 40.0


def test_a_corruption_with_no_cell_has_a_nan_mean_without_a_warning():
    cells = {k: v for k, v in table().items() if k[0] != "fog"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize_robustness(50.0, cells, partial=True)
    assert math.isnan(s.per_corruption["fog"]) and s.per_corruption["snow"] == 40.0
    assert s.per_group["weather"] == 40.0 and len(s.missing) == 5 and not s.complete


def test_a_custom_corruption_subset_is_honoured():
    cells = table()
    cells["gaussian_noise", 1] = 10.0
    s = summarize_robustness(50.0, cells, corruptions=["gaussian_noise", "frost"], severities=(1, 2))
    assert s.mpc == pytest.approx((10 + 40 + 40 + 40) / 4)
    assert set(s.per_corruption) == {"gaussian_noise", "frost"} and set(s.per_severity) == {1, 2}
    assert s.per_group == {"noise": 25.0, "weather": 40.0}  # only the groups the subset touches
    assert summarize_robustness(50.0, cells, corruptions=("frost",)).per_group == {"weather": 40.0}


def test_missing_cells_message_lists_ten_then_an_ellipsis():
    cells = table()
    del cells["zoom_blur", 3]
    msg = ("1 of 75 corruption cells missing: zoom_blur/3; add them or pass --partial to report an incomplete "
           "summary")
    with pytest.raises(MissingCellError, match=f"^{re.escape(msg)}$"):
        summarize_robustness(60.0, cells)
    ten = {k: v for k, v in table().items() if not (k[0] == "gaussian_noise" or k[0] == "shot_noise")}
    with pytest.raises(MissingCellError) as exc:
        summarize_robustness(60.0, ten)
    names = ", ".join(f"{c}/{s}" for c in ("gaussian_noise", "shot_noise") for s in SEVERITIES)
    assert str(exc.value) == f"10 of 75 corruption cells missing: {names}; add them or pass --partial to report " \
                             "an incomplete summary"
    eleven = dict(ten)
    del eleven["frost", 1]
    with pytest.raises(MissingCellError) as exc:
        summarize_robustness(60.0, eleven)
    assert str(exc.value).startswith(f"11 of 75 corruption cells missing: {names} ...; add them")
    with pytest.raises(MissingCellError) as exc:
        summarize_robustness(60.0, {}, corruptions=["frost", "fog"], severities=(1, 2, 3))
    assert str(exc.value).startswith("6 of 6 corruption cells missing: frost/1")


def test_nothing_present_is_an_error_even_when_partial():
    with pytest.raises(MissingCellError) as exc:
        summarize_robustness(60.0, {("speckle_noise", 1): 3.0}, partial=True)
    assert str(exc.value) == "no corruption cell present; nothing to aggregate"
