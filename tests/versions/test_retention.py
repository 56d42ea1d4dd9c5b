"""Retention: gc keeps what branches and tags reach, frees the rest, and guards its minimum."""

from __future__ import annotations

import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.testing import tip
from versioncube.versions.summary import folder_size

DAYS = pd.date_range("2024-03-01", periods=20)


def _expected(days, count):
    return xr.concat(days[:count], "time")


def test_gc_keeps_tags_and_frees_rolled_back_commits(tmp_path, small_slice):
    days = [small_slice(day, shape=(45, 90)) for day in DAYS[:6]]  # chunks too big to inline
    target = str(tmp_path / "cube")
    cube = open_cube(target)
    for item in days[:6]:
        cube.append(item)
    cube.tag("release", at="~3")  # three days
    discarded_tip = tip(cube)
    cube.rollback("~2")  # discard days 5 and 6
    size_before = folder_size(tmp_path / "cube")
    assert cube.to_xarray(discarded_tip).sizes["time"] == 6  # readable until gc

    dry = cube.gc("0s", force=True, dry_run=True)
    assert dry.dry_run and dry.chunks_deleted > 0
    assert folder_size(tmp_path / "cube") == size_before

    result = cube.gc("0s", force=True)

    assert result.chunks_deleted >= 4  # tas and pr of the two discarded days
    assert result.bytes_deleted > 0
    assert folder_size(tmp_path / "cube") < size_before
    xr.testing.assert_identical(cube.to_xarray("release").load(), _expected(days, 3))
    xr.testing.assert_identical(cube.to_xarray().load(), _expected(days, 4))
    with pytest.raises(versioncube.RefNotFoundError):
        cube.to_xarray(discarded_tip)
    assert [entry.kind for entry in cube.reflog()][:2] == ["gc ran", "expiration ran"]


def test_gc_below_the_safe_minimum_needs_force(grown):
    with pytest.raises(versioncube.VersionError, match="shorter than the safe minimum 1d"):
        grown.gc("2h")
    with pytest.raises(versioncube.ConfigError, match="duration 'soon' is not understood"):
        grown.gc("soon")
