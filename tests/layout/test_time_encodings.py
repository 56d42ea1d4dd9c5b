"""A configured time encoding (dtype, units, calendar) is kept exactly; a label it cannot store
is refused naming the setting, in the dry run and the real run alike; calendar steps work."""

from __future__ import annotations

import itertools

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.errors import SliceValidationError
from versioncube.testing import tip


def _at(small_slice, labels: list[str], calendar: str) -> xr.Dataset:
    """A small slice at ``labels``, as datetime64 (standard calendar) or cftime values."""
    dataset = small_slice(labels)
    if calendar == "standard":
        return dataset
    times = [cftime.datetime(*pd.Timestamp(label).timetuple()[:6], calendar=calendar)
             for label in labels]  # fmt: skip
    return dataset.assign_coords(time=("time", np.array(times, dtype=object)))


@pytest.mark.parametrize(
    ("dtype", "units", "calendar"),
    list(itertools.product(
        ["int32", "int64", "float64"],
        ["hours since 1800-01-01", "days since 2000-01-01", "seconds since 1970-01-01"],
        ["standard", "noleap", "360_day"],
    )),
)  # fmt: skip
def test_configured_time_encodings_are_kept_exactly(
    dtype, units, calendar, memory_target, small_slice
):
    slices = [
        _at(small_slice, ["2024-01-01", "2024-01-02"], calendar),
        _at(small_slice, ["2024-01-03"], calendar),
        _at(small_slice, ["2024-02-01"], calendar),
    ]
    encoding = {"dtype": dtype, "units": units, "calendar": calendar}
    variables = {"time": {"encoding": encoding}}
    assert versioncube.append(slices, target_dir=memory_target, variables=variables) == 3

    head = open_cube(memory_target).to_xarray()
    assert head.time.encoding["units"] == units
    assert head.time.encoding["calendar"] == calendar
    assert head.time.encoding["dtype"] == np.dtype(dtype)
    xr.testing.assert_identical(head.load(), xr.concat(slices, "time"))


def test_a_zappend_int32_encoding_in_hours_since_1800(memory_target, small_slice):
    variables = {"time": {"encoding": {"dtype": "int32", "units": "hours since 1800-01-01"}}}
    slices = [small_slice("2024-01-01"), small_slice("2024-01-01T06")]
    assert versioncube.append(slices, target_dir=memory_target, variables=variables) == 2
    raw = open_cube(memory_target).to_xarray(decode_cf=False)
    assert raw.time.dtype == np.int32
    assert raw.time.values.tolist() == [1963536, 1963542]  # hours since 1800-01-01


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_first_label_the_configured_units_cannot_store_is_refused(
    dry_run, memory_target, small_slice
):
    variables = {"time": {"encoding": {"units": "days since 2000-01-01"}}}
    with pytest.raises(SliceValidationError) as raised:
        versioncube.append(
            [small_slice("2024-01-01T12")],
            target_dir=memory_target,
            variables=variables,
            dry_run=dry_run,
        )
    message = str(raised.value)
    assert "has the value 2024-01-01T12:00, which the configured units 'days since 2000-01-01'" in (
        message
    )
    assert "cannot store exactly (variables.time.encoding: dtype int64" in message
    assert not open_cube(memory_target).exists()


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_later_label_the_cube_cannot_store_is_refused(dry_run, memory_target, small_slice):
    variables = {"time": {"encoding": {"dtype": "int32", "units": "seconds since 1990-01-01"}}}
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, variables=variables)
    cube = open_cube(memory_target)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match="within the range of int32") as raised:
        versioncube.append([small_slice("2060-01-01")], target_dir=memory_target, dry_run=dry_run)
    assert "variables.time.encoding" in str(raised.value)
    with pytest.raises(SliceValidationError, match="cannot store exactly"):
        versioncube.append(
            [small_slice("2024-01-02T00:00:00.5")], target_dir=memory_target, dry_run=dry_run
        )
    assert tip(cube) == before


def test_a_date_that_the_configured_calendar_lacks_is_refused(memory_target, small_slice):
    variables = {"time": {"encoding": {"calendar": "noleap", "units": "days since 2000-01-01"}}}
    with pytest.raises(SliceValidationError, match="2024-02-29, which the configured units"):
        versioncube.append(
            [small_slice("2024-02-29")], target_dir=memory_target, variables=variables
        )


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
def test_cftime_slices_without_configuration(calendar, memory_target, small_slice):
    slices = [_at(small_slice, [f"2024-0{month}-15T12"], calendar) for month in (1, 2, 3)]
    assert versioncube.append(slices, target_dir=memory_target) == 3
    xr.testing.assert_identical(
        open_cube(memory_target).to_xarray().load(), xr.concat(slices, "time")
    )


@pytest.mark.parametrize(
    ("step", "labels"),
    [
        ("1M", ["2024-01-16T12", "2024-02-15", "2024-03-16T12"]),  # mid-month: days vary
        ("1M", ["2023-12-01", "2024-01-01", "2024-02-01"]),
        ("3M", ["2024-01-01", "2024-04-01", "2024-07-01"]),
        ("1Y", ["1948-01-15T12", "1949-01-15T12", "1950-01-15T12"]),
    ],
)
@pytest.mark.parametrize("calendar", ["standard", "360_day"])
def test_calendar_steps(step, labels, calendar, memory_target, small_slice):
    slices = [_at(small_slice, [label], calendar) for label in labels]
    assert versioncube.append(slices, target_dir=memory_target, append_step=step) == 3


@pytest.mark.parametrize(
    ("step", "labels", "message"),
    [
        ("1M", ["2024-01-01", "2024-03-01"], "follows the cube's last label 2024-01-01 by 2"),
        ("1Y", ["2024-01-01", "2024-02-01"], "by 1 calendar month(s), but append_step is '1Y'"),
    ],
)
def test_calendar_steps_refused(step, labels, message, memory_target, small_slice):
    versioncube.append([small_slice(labels[0])], target_dir=memory_target, append_step=step)
    with pytest.raises(SliceValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        versioncube.append([small_slice(labels[1])], target_dir=memory_target)
