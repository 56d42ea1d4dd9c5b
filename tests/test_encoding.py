"""Time labels survive: finer labels after a coarse first slice read back exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.encoding import creation_encoding, inexact_labels, parse_time_units


def test_hourly_and_minute_labels_after_a_daily_first_slice(memory_target, small_slice):
    labels = ["2024-03-01", "2024-03-01T06", "2024-03-01T12:30", "2024-03-02T00:00:15"]
    slices = [small_slice(label) for label in labels]

    versioncube.append(slices, target_dir=memory_target)
    cube = open_cube(memory_target).to_xarray()

    np.testing.assert_array_equal(cube.time.values, pd.DatetimeIndex(labels).values)
    xr.testing.assert_identical(cube.load(), xr.concat(slices, "time"))


def test_plain_xarray_gets_these_labels_wrong(tmp_path, small_slice):
    """Why the cube picks its own time units: xarray appends silently rewrite finer labels."""
    path = tmp_path / "plain.zarr"
    small_slice("2024-03-01").to_zarr(path, zarr_format=3, consolidated=False)
    with pytest.warns(UserWarning, match="serialized faithfully"):
        small_slice("2024-03-01T06").to_zarr(path, append_dim="time", consolidated=False)
    read_back = xr.open_zarr(path, consolidated=False).time.values
    assert read_back[1] != np.datetime64("2024-03-01T06")


def test_sub_second_first_slice_gets_finer_units(small_slice):
    encoding = creation_encoding(small_slice(["2024-01-01T00:00:00.5"]), "time")
    assert encoding["time"]["units"] == "milliseconds since 2024-01-01 00:00:00"
    assert encoding["time"]["dtype"] == "int64"
    assert encoding["time"]["chunks"] == (1024,)


def test_inexact_labels():
    values = pd.DatetimeIndex(["2024-01-01T01", "2024-01-01T01:30"]).values
    assert inexact_labels(values, "hours since 2024-01-01") == values[1]
    assert inexact_labels(values, "minutes since 2024-01-01") is None
    assert inexact_labels(values, "seconds since 0001-01-01") is None  # before 1677 works too
    assert inexact_labels(values, "not cf units") is None


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("days since 2000-01-01", (86_400 * 10**9, pd.Timestamp("2000-01-01"))),
        ("hour since 1900-01-01 00:00:00", (3_600 * 10**9, pd.Timestamp("1900-01-01"))),
        ("s since 2000-01-01T00:00:00+01:00", (10**9, pd.Timestamp("1999-12-31T23:00"))),
        ("fortnights since 2000-01-01", None),
        ("days since the beginning", None),
        (None, None),
    ],
)
def test_parse_time_units(units, expected):
    assert parse_time_units(units) == expected


def test_conflicting_fill_values_settle_on_missing_value(small_slice):
    dataset = small_slice("2024-01-01")
    dataset.tas.encoding.update({"_FillValue": np.nan, "missing_value": 1e20})
    dataset.pr.encoding.update({"_FillValue": 1e20, "missing_value": 1e20})
    encoding = creation_encoding(dataset, "time")
    assert encoding["tas"] == {"_FillValue": 1e20}
    assert "pr" not in encoding
