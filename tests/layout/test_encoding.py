"""Time labels survive: finer labels after a coarse first slice read back exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.layout.encoding import creation_encoding, inexact_labels, parse_time_units


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
    assert encoding["tas"]["_FillValue"] == 1e20
    assert "_FillValue" not in encoding["pr"]


def test_configured_time_units_and_calendar_are_used_and_checked(memory_target, small_slice):
    variables = {"time": {"encoding": {"units": "hours since 2000-01-01", "calendar": "standard"}}}
    slices = [small_slice(label) for label in ("2024-01-01", "2024-01-01T06")]
    versioncube.append(slices, target_dir=memory_target, variables=variables)

    cube = open_cube(memory_target)
    head = cube.to_xarray()
    assert head.time.encoding["units"] == "hours since 2000-01-01"
    assert head.time.encoding["calendar"] == "standard"
    xr.testing.assert_identical(head.load(), xr.concat(slices, "time"))
    with pytest.raises(versioncube.SliceValidationError, match="units 'hours since 2000-01-01'"):
        cube.append(small_slice("2024-01-01T06:30"))


def test_time_units_for_other_variables_are_reported_and_not_used(
    memory_target, small_slice, caplog
):
    with caplog.at_level("WARNING", logger="versioncube"):
        versioncube.append(
            [small_slice("2024-01-01")],
            target_dir=memory_target,
            variables={"tas": {"encoding": {"units": "days since 2000-01-01"}}},
        )
    assert "variables.tas.encoding.units applies to datetime variables only" in caplog.text
    xr.testing.assert_identical(
        open_cube(memory_target).to_xarray().load(), small_slice("2024-01-01")
    )


def test_a_dry_run_checks_the_configured_encodings(memory_target, small_slice):
    variables = {"tas": {"encoding": {"chunks": [1, 4, 4], "shards": [1, 6, 12]}}}
    with pytest.raises(versioncube.ConfigError, match="shards' must be a multiple of the chunks"):
        versioncube.append(
            [small_slice("2024-01-01")], target_dir=memory_target, variables=variables, dry_run=True
        )
    assert not open_cube(memory_target).exists()


def test_settings_that_icechunk_makes_unnecessary_are_accepted(
    tmp_path, memory_target, small_slice
):
    unneeded = {
        "temp_dir": str(tmp_path / "t"),
        "temp_storage_options": {},
        "disable_rollback": True,
    }
    assert (
        versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, **unneeded) == 1
    )
    assert not (tmp_path / "t").exists()  # nothing is written there


@pytest.mark.parametrize(
    "units",
    [
        "days since 2000-01-01",
        "hours since 1999-12-31 06:00:00",
        "seconds since 2024-03-01",
        "milliseconds since 1900-01-01",
        "microseconds since 2024-03-01 00:00:00",
        "nanoseconds since 2000-01-01",
        "minutes since 1850-06-15 12:00",
    ],
)
def test_datetimes_are_encoded_as_xarray_encodes_them(units):
    from versioncube.layout.encoding import encode_datetimes
    from versioncube.store.upstream import encode_for_zarr

    start = "1950-01-01" if "1850" in units or "1900" in units else "2000-01-02"
    freq = "D" if units.startswith("days") else "6h"
    labels = pd.date_range(start, periods=40, freq=freq).to_numpy().astype("datetime64[ns]")
    encoding = {"units": units, "calendar": "proleptic_gregorian", "dtype": "int64"}
    variable = xr.Variable(("time",), labels)
    variable.encoding = dict(encoding)

    fast = encode_datetimes(labels, encoding)

    expected = np.asarray(encode_for_zarr(variable, "time").data)
    assert fast is not None and fast.dtype == expected.dtype == np.int64
    np.testing.assert_array_equal(fast, expected)
    # labels of a coarser resolution than the units are stored the same (xarray 2026.9 writes
    # NaT for them: seconds in milliseconds, microseconds in nanoseconds)
    coarse = encode_datetimes(labels.astype("datetime64[s]"), encoding)
    assert coarse is not None
    np.testing.assert_array_equal(coarse, expected)


@pytest.mark.parametrize(
    "change",
    [
        {"calendar": "noleap"},
        {"dtype": "float64"},
        {"units": "days since 2000-01-01 00:00:00+02:00"},
        {"units": "days since 2000-01-01", "labels": "2000-01-01T06"},  # not whole days
        {"labels": "NaT"},
        {"scale_factor": 2.0},
    ],
)
def test_datetimes_outside_the_shortcut_are_left_to_xarray(change):
    from versioncube.layout.encoding import encode_datetimes

    change = dict(change)
    label = change.pop("labels", "2000-01-03")
    encoding = {"units": "hours since 2000-01-01", "calendar": "standard", "dtype": "int64"}
    encoding.update(change)
    assert encode_datetimes(np.array([np.datetime64(label, "ns")]), encoding) is None


@pytest.mark.parametrize("rewritten", [False, True], ids=["eofs-file", "rewritten-by-xarray"])
def test_in_memory_cuts_of_a_netcdf_with_missing_value(rewritten, tmp_path, memory_target):
    """eofs' sst file says missing_value = 1e20; the cube gives it no NaN _FillValue beside it
    (xarray would then refuse to encode the second cut), and a file rewritten by xarray, which
    carries _FillValue = NaN as well, appends too. Missing values read back as missing."""
    from eofs.examples import example_data_path

    source = xr.open_dataset(example_data_path("sst_ndjfm_anom.nc")).isel(time=slice(0, 4))
    if rewritten:
        source.to_netcdf(tmp_path / "sst.nc")
        source = xr.open_dataset(tmp_path / "sst.nc")
        assert np.isnan(source.sst.encoding["_FillValue"])
    assert source.sst.encoding["missing_value"] == 1e20
    cuts = [source.isel(time=[index]).load() for index in range(4)]
    cuts[2]["sst"][0, 0, 0] = np.nan

    assert versioncube.append(cuts, target_dir=memory_target) == 4
    head = open_cube(memory_target).to_xarray().load()
    xr.testing.assert_identical(head, xr.concat(cuts, "time", data_vars="minimal"))
    assert np.isnan(head.sst.values[2, 0, 0])
