"""Slices that do not fit the cube are refused by name, and the branch tip does not move."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.testing import commits, tip


def _no_append_dim(s, _make):
    return s.isel(time=0)


def _empty(s, _make):
    return s.isel(time=slice(0, 0))


def _missing_variable(s, _make):
    return s.drop_vars("pr")


def _extra_variable(s, _make):
    return s.assign(psl=s.tas + 1)


def _wrong_dtype(s, _make):
    return s.assign(tas=s.tas.astype("float64"))


def _transposed(s, _make):
    return s.transpose("time", "lon", "lat")


def _other_grid_size(s, make):
    return make(s.time.values, shape=(7, 12))


def _shifted_grid(s, _make):
    return s.assign_coords(lon=s.lon + 0.5)


def _decreasing_labels(s, make):
    return make(["2024-01-06", "2024-01-05"])


def _repeated_labels(s, make):
    return make(["2024-01-05", "2024-01-05"])


def _label_before_tip(s, make):
    return make("2024-01-01T12")


def _label_equal_to_tip(s, make):
    return make("2024-01-02")


def _missing_label(s, _make):
    return s.assign_coords(time=np.array(["NaT"], dtype="datetime64[ns]"))


def _sub_second_label(s, make):
    return make("2024-01-05T00:00:00.25")


def _numeric_labels(s, _make):
    return s.assign_coords(time=[5])


def _no_label_coordinate(s, _make):
    return s.drop_vars("time")


def _renamed_dimension(s, _make):
    return s.rename(lat="y")


BAD_SLICES = [
    (_no_append_dim, "has no dimension 'time' to append along (its dimensions: lat, lon)"),
    (_empty, "is empty: dimension 'time' has size 0"),
    (_missing_variable, "lacks variable(s) 'pr' that the cube has"),
    (_extra_variable, "has variable(s) 'psl' that the cube does not have"),
    (_wrong_dtype, "variable 'tas' has dtype float64, the cube has float32"),
    (_transposed, "variable 'pr' has dimensions (time, lon, lat), the cube has (time, lat, lon)"),
    (_other_grid_size, "dimension 'lat' of variable 'lat' has size 7, the cube has 6"),
    (_shifted_grid, "coordinate 'lon' differs from the cube's: lon[0] is 0.5, the cube has 0.0"),
    (_decreasing_labels, "time labels are not strictly increasing: 2024-01-06, 2024-01-05"),
    (_repeated_labels, "time labels are not strictly increasing"),
    (
        _label_before_tip,
        "time label 2024-01-01T12:00 is not after the cube's last label 2024-01-02",
    ),
    (_label_equal_to_tip, "time label 2024-01-02 is not after the cube's last label 2024-01-02"),
    (_missing_label, "has missing (NaT) time labels"),
    (_sub_second_label, "which the cube's units 'seconds since 2024-01-01' cannot store"),
    (_numeric_labels, "variable 'time' has dtype int64, the cube has datetime64[ns]"),
    (_no_label_coordinate, "lacks variable(s) 'time' that the cube has"),
    (_renamed_dimension, "lacks variable(s) 'lat' that the cube has and has variable(s) 'y'"),
]


@pytest.fixture
def cube_with_two_days(memory_target, small_slice):
    cube = open_cube(memory_target)
    cube.append(small_slice("2024-01-01"))
    cube.append(small_slice("2024-01-02"))
    return cube


@pytest.mark.parametrize(
    ("make_bad", "expected"), BAD_SLICES, ids=lambda v: getattr(v, "__name__", "")
)
def test_bad_slice_is_refused_and_tip_stays(cube_with_two_days, small_slice, make_bad, expected):
    cube = cube_with_two_days
    before = tip(cube)
    good = small_slice("2024-01-03")
    bad = make_bad(good, small_slice).assign_attrs(
        case=make_bad.__name__
    )  # a distinct identity per case

    with pytest.raises(versioncube.SliceValidationError) as raised:
        cube.append(bad)

    message = str(raised.value)
    assert message.startswith("slice dataset xxh3:")
    assert expected in message
    assert tip(cube) == before
    assert cube.append(good).status == "appended"  # the next good slice appends normally
    assert len(commits(cube)) == 3


@pytest.mark.parametrize(
    ("make_bad", "expected"),
    [
        (_no_append_dim, "has no dimension 'time'"),
        (_empty, "is empty"),
        (_decreasing_labels, "not strictly increasing"),
        (_missing_label, "missing (NaT)"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_bad_first_slice_creates_nothing(memory_target, small_slice, make_bad, expected):
    good = small_slice("2024-01-03")
    bad = make_bad(good, small_slice)
    cube = open_cube(memory_target)

    with pytest.raises(versioncube.SliceValidationError, match=re.escape(expected)):
        cube.append(bad)
    assert not cube.exists()


def test_errors_are_versioncube_errors_and_builtin_kinds():
    assert issubclass(versioncube.SliceValidationError, versioncube.VersionCubeError)
    assert issubclass(versioncube.SliceValidationError, ValueError)
    assert issubclass(versioncube.CubeNotFoundError, FileNotFoundError)
    assert issubclass(versioncube.ConfigError, ValueError)


def test_grid_check_compares_values_not_just_shapes(cube_with_two_days, small_slice):
    bad = small_slice("2024-01-03")
    bad["lat"] = bad.lat.copy(data=bad.lat.values[::-1])
    with pytest.raises(versioncube.SliceValidationError, match=r"coordinate 'lat' differs"):
        cube_with_two_days.append(bad)
    xr.testing.assert_identical(
        cube_with_two_days.to_xarray().load(),
        xr.concat([small_slice("2024-01-01"), small_slice("2024-01-02")], "time"),
    )
