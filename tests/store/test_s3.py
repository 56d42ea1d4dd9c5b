"""The same appends against real object-store servers on 127.0.0.1, one cloud at a time: S3
(SeaweedFS) and Azure Blob Storage (Azurite); see ``CLOUDS`` in versioncube/testing/clouds.py."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.store.target import parse_target
from versioncube.testing import appended_in_order, commits, tip
from versioncube.versions.record import CommitRecord

# a server process per object store for the session (SeaweedFS ~3 s to start, Azurite more),
# and more that a test stops
pytestmark = pytest.mark.slow

#: Per object store: the option holding the secret, and a well-formed wrong secret for it.
WRONG_SECRETS = {
    "s3": ("secret_access_key", "wrong"),
    "azure": ("access_key", base64.b64encode(b"a wrong key").decode()),
}


def test_append_resume_and_read_back(cloud_target, daily_files):
    target, options = cloud_target
    settings = {"target_dir": target, "target_storage_options": options}

    assert versioncube.append(daily_files[:4], settings) == 4
    assert versioncube.append(daily_files, settings) == 6
    assert versioncube.append(daily_files, settings) == 0

    cube = open_cube(target, storage_options=options)
    assert appended_in_order(cube) == [str(path) for path in daily_files]
    assert len(commits(cube)) == len(daily_files)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.open_mfdataset(daily_files).load())


def test_bad_slice_leaves_the_tip(cloud_target, small_slice):
    target, options = cloud_target
    cube = open_cube(target, storage_options=options)
    cube.append(small_slice("2024-01-01"))
    before = tip(cube)

    with pytest.raises(versioncube.SliceValidationError, match="not after"):
        cube.append(small_slice("2023-12-31"))
    assert tip(cube) == before


def test_wrong_credentials_are_a_storage_error(cloud_target, small_slice):
    target, options = cloud_target
    name, wrong = WRONG_SECRETS[parse_target(target).kind]
    options[name] = wrong
    with pytest.raises(versioncube.StorageError, match=f"storage error at {target}"):
        open_cube(target, storage_options=options).append(small_slice("2024-01-01"))


@pytest.mark.slow
def test_server_down_mid_append_leaves_the_tip(private_cloud_server, small_slice):
    """The server stops while a slice's chunks are being written."""
    server, target = private_cloud_server
    cube = open_cube(target, storage_options=server.options)
    cube.append(small_slice("2024-01-01"))
    before = tip(cube)
    item = small_slice("2024-01-02")
    values = da.from_array(item.tas.values, chunks=-1).map_blocks(
        lambda block: (server.stop(), block)[1], dtype="float32", meta=np.array((), "float32")
    )
    dying = item.assign(tas=(item.tas.dims, values, item.tas.attrs))

    with pytest.raises(versioncube.StorageError, match=f"storage error at {target}") as error:
        cube.append(dying)
    assert "\n" not in str(error.value)  # one line

    server.start()
    fresh = open_cube(target, storage_options=server.options)
    assert tip(fresh) == before
    assert fresh.append(item).status == "appended"
    expected = xr.concat([small_slice("2024-01-01"), item], "time")
    xr.testing.assert_identical(fresh.to_xarray().load(), expected)


def test_rollback_undo_and_time_travel(cloud_target, small_slice):
    target, options = cloud_target
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


def test_gc_frees_rolled_back_commits(cloud_target, small_slice):
    target, options = cloud_target
    days = [small_slice(f"2024-01-0{d}", shape=(45, 90)) for d in range(1, 5)]  # not inlined
    cube = open_cube(target, storage_options=options)
    for item in days:
        cube.append(item)
    cube.tag("first-two", at="~2")
    discarded_tip = tip(cube)
    cube.rollback("~1")
    # objects less than a second old survived gc("0s") here (object stores date objects in
    # whole seconds): let the discarded day's objects fall into an earlier second
    time.sleep(1.1)

    result = cube.gc("0s", force=True)

    assert result.chunks_deleted >= 2  # tas and pr of the discarded day
    xr.testing.assert_identical(cube.to_xarray("first-two").load(), xr.concat(days[:2], "time"))
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days[:3], "time"))
    with pytest.raises(versioncube.RefNotFoundError):
        cube.to_xarray(discarded_tip)


def slice_storage(options: dict) -> tuple[Any, dict]:
    """An s3fs filesystem on the test server for slice files, and its storage options."""
    import s3fs

    fs_options = {
        "key": options["access_key_id"],
        "secret": options["secret_access_key"],
        "client_kwargs": {"endpoint_url": options["endpoint_url"], "region_name": "us-east-1"},
    }
    return s3fs.S3FileSystem(**fs_options), fs_options


def test_a_slice_file_changed_on_s3_is_refused(s3_target, small_slice, tmp_path):
    """On object stores the content stamp is the ETag: an object re-uploaded with other content
    at the same key is refused, the same content (re-uploaded or not) is skipped."""
    target, options = s3_target
    fs, fs_options = slice_storage(options)
    uri = f"{target}-slices/day.nc"
    small_slice("2024-01-01").to_netcdf(tmp_path / "day.nc")
    fs.put(str(tmp_path / "day.nc"), uri)
    settings = {"target_dir": target, "target_storage_options": options,
                "slice_storage_options": fs_options}  # fmt: skip

    assert versioncube.append([uri], settings) == 1
    fs.put(str(tmp_path / "day.nc"), uri)  # the same bytes again: the same ETag
    assert versioncube.append([uri], settings) == 0
    cube = open_cube(target, storage_options=options)
    holding = tip(cube)
    record = CommitRecord.of_snapshot(cube.repository.lookup_snapshot(holding))
    assert record is not None and record.stamp is not None and record.stamp.startswith("etag ")

    small_slice("2024-01-02").to_netcdf(tmp_path / "other.nc")
    fs.put(str(tmp_path / "other.nc"), uri)
    with pytest.raises(versioncube.SliceChangedError, match=f"snapshot {holding}"):
        versioncube.append([uri], settings)
    assert tip(cube) == holding


def test_a_run_of_slice_files_on_s3_reads_the_next_one_ahead(
    s3_target, small_slice, tmp_path, caplog, monkeypatch
):
    """Slices on the object store are read ahead like local files, and checked by their ETag."""
    from versioncube.slices import read_ahead

    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)  # small slices, read ahead all the same

    target, options = s3_target
    fs, fs_options = slice_storage(options)
    days = [small_slice(day) for day in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")]
    uris = []
    for index, day in enumerate(days):
        day.to_netcdf(tmp_path / f"{index}.nc")
        uris.append(f"{target}-ahead/{index}.nc")
        fs.put(str(tmp_path / f"{index}.nc"), uris[-1])
    settings = {"target_dir": target, "target_storage_options": options,
                "slice_storage_options": fs_options}  # fmt: skip

    with caplog.at_level(logging.DEBUG, logger="versioncube.slices.read_ahead"):
        assert versioncube.append(uris, settings) == 4

    assert "reading 2.nc ahead" in caplog.text and "reading 3.nc ahead" in caplog.text
    cube = open_cube(target, storage_options=options)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days, "time"))
