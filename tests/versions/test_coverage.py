"""Coverage: every label counts for the step it falls in; runs of present and missing steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from versioncube import ConfigError, open_cube
from versioncube.testing.real_data import open_source
from versioncube.versions.coverage import label_coverage, typical_step


def _runs(coverage):
    return [
        (run.state, str(run.first)[:10], str(run.last)[:10], run.count) for run in coverage.runs
    ]


def test_daily_labels_with_a_gap():
    days = pd.date_range("2024-03-01", periods=10).delete([5, 6]).values
    coverage = label_coverage(days, "time", "S", "1D")
    assert _runs(coverage) == [
        ("present", "2024-03-01", "2024-03-05", 5),
        ("missing", "2024-03-06", "2024-03-07", 2),
        ("present", "2024-03-08", "2024-03-10", 3),
    ]
    assert (coverage.expected, coverage.present, coverage.missing) == (10, 8, 2)
    assert coverage.headline() == (
        "time 2024-03-01 .. 2024-03-10 by 1D: 8 of 10 steps present, 2 missing in 1 gap"
    )
    table = coverage.to_pandas()
    assert list(table.columns) == ["state", "first", "last", "steps"]
    assert table["steps"].sum() == 10


def test_real_yearly_labels_count_for_their_year():
    """The eofs winter means are labelled mid-January at varying hours: each counts for its
    year; three years left out are the gaps."""
    labels = open_source("hgt_djf").time.values  # 1948 .. 2012
    thinned = np.delete(labels, [3, 4, 10])
    assert typical_step(thinned) == "1Y"
    coverage = label_coverage(thinned, "time", "S")
    assert [(run.state, run.count) for run in coverage.runs] == [
        ("present", 3), ("missing", 2), ("present", 5), ("missing", 1), ("present", 54)
    ]  # fmt: skip
    assert [str(gap.first)[:4] for gap in coverage.gaps] == ["1951", "1958"]
    assert label_coverage(labels, "time", "S", "yearly").missing == 0


def test_monthly_steps_and_words():
    months = pd.date_range("2020-01-01", periods=12, freq="MS").values + np.timedelta64(14, "D")
    gappy = np.delete(months, [6])
    for step in ("1M", "monthly", "MS", None):
        coverage = label_coverage(gappy, "time", "S", step)
        assert [str(gap.first)[:7] for gap in coverage.gaps] == ["2020-07"], step


def test_finer_labels_share_a_step():
    hours = pd.date_range("2024-01-01", periods=48, freq="6h").values
    coverage = label_coverage(hours, "time", "S", "1D")
    assert (coverage.expected, coverage.missing, coverage.shared) == (12, 0, 36)


def test_numeric_labels():
    coverage = label_coverage(np.array([10, 20, 30, 60]), "depth", "S")
    assert [(run.state, run.first, run.last, run.count) for run in coverage.runs] == [
        ("present", 10, 30, 3), ("missing", 40, 50, 2), ("present", 60, 60, 1)
    ]  # fmt: skip


@pytest.mark.parametrize("step", ["bogus", "0D", 3.0])
def test_steps_that_are_no_steps_for_time_labels(step):
    days = pd.date_range("2024-03-01", periods=3).values
    with pytest.raises(ConfigError, match="is not a step for time labels"):
        label_coverage(days, "time", "S", step)


def test_a_cube_s_coverage_at_a_version(memory_target, small_slice):
    cube = open_cube(memory_target)
    for day in ("2024-03-01", "2024-03-02", "2024-03-05"):
        cube.append(small_slice(day))
    assert cube.coverage("1D").missing == 2
    assert cube.coverage("1D", version="~1").missing == 0
    assert cube.coverage().step == "1D"
