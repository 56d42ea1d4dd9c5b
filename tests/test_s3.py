"""The same appends against a real S3-compatible server (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import S3_BUCKET, appended_in_order, commits, tip

import versioncube
from versioncube import open_cube


def test_append_resume_and_read_back_on_s3(s3_target, daily_files):
    target, options = s3_target
    settings = {"target_dir": target, "target_storage_options": options}

    assert versioncube.append(daily_files[:4], settings) == 4
    assert versioncube.append(daily_files, settings) == 6
    assert versioncube.append(daily_files, settings) == 0

    cube = open_cube(target, storage_options=options)
    assert appended_in_order(cube) == [str(path) for path in daily_files]
    assert len(commits(cube)) == len(daily_files)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.open_mfdataset(daily_files).load())


def test_bad_slice_on_s3_leaves_the_tip(s3_target, small_slice):
    target, options = s3_target
    cube = open_cube(target, storage_options=options)
    cube.append(small_slice("2024-01-01"))
    before = tip(cube)

    with pytest.raises(versioncube.SliceValidationError, match="not after"):
        cube.append(small_slice("2023-12-31"))
    assert tip(cube) == before


def test_wrong_credentials_are_a_storage_error(s3_target, small_slice):
    target, options = s3_target
    options["secret_access_key"] = "wrong"
    with pytest.raises(versioncube.StorageError, match=f"storage error at {target}"):
        open_cube(target, storage_options=options).append(small_slice("2024-01-01"))


def test_server_down_mid_append_leaves_the_tip(private_seaweedfs, small_slice):
    """The S3 server dies while a slice's chunks are being written."""
    server = private_seaweedfs
    target = f"s3://{S3_BUCKET}/down"
    cube = open_cube(target, storage_options=server.options)
    cube.append(small_slice("2024-01-01"))
    before = tip(cube)
    item = small_slice("2024-01-02")
    values = da.from_array(item.tas.values, chunks=-1).map_blocks(
        lambda block: (server.stop(), block)[1], dtype="float32", meta=np.array((), "float32")
    )
    dying = item.assign(tas=(item.tas.dims, values, item.tas.attrs))

    with pytest.raises(versioncube.StorageError, match=f"storage error at {target}"):
        cube.append(dying)

    server.start()
    fresh = open_cube(target, storage_options=server.options)
    assert tip(fresh) == before
    assert fresh.append(item).status == "appended"
    expected = xr.concat([small_slice("2024-01-01"), item], "time")
    xr.testing.assert_identical(fresh.to_xarray().load(), expected)


def test_rollback_undo_and_time_travel_on_s3(s3_target, small_slice):
    target, options = s3_target
    days = [small_slice(f"2024-01-0{d}") for d in range(1, 6)]
    cube = open_cube(target, storage_options=options)
    for item in days:
        cube.append(item)
    cube.tag("v5")

    result = cube.rollback("~2")
    assert len(result.discarded) == 2
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days[:3], "time"))
    xr.testing.assert_identical(cube.to_xarray("v5").load(), xr.concat(days, "time"))

    assert cube.append(days[3]).status == "appended"  # appends continue from the rollback
    cube.rollback(result.previous_tip)  # and a rollback can be undone
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days, "time"))
    assert cube.verify().ok
