"""Slice identities and opening slices from files, Zarr folders and fsspec URIs."""

from __future__ import annotations

import fsspec
import pytest
import xarray as xr

import versioncube
import versioncube.slices.opening
from versioncube import open_cube
from versioncube.slices.identity import dataset_fingerprint, slice_ref
from versioncube.slices.opening import open_slice


def test_path_identity_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ref = slice_ref("data/2024-03-01.nc")
    assert ref.identity == str(tmp_path / "data" / "2024-03-01.nc")
    assert ref.name == "2024-03-01.nc"
    assert slice_ref(f"file://{tmp_path}/x.nc").identity == str(tmp_path / "x.nc")


def test_uri_identity_is_the_uri():
    ref = slice_ref("s3://archive/era5/2024-03-01.nc")
    assert ref.identity == "s3://archive/era5/2024-03-01.nc"
    assert ref.name == "2024-03-01.nc"


def test_dataset_fingerprint_follows_content(small_slice):
    a, same = small_slice("2024-01-01"), small_slice("2024-01-01")
    assert dataset_fingerprint(a) == dataset_fingerprint(same)
    assert dataset_fingerprint(a).startswith("xxh3:") and len(dataset_fingerprint(a)) == 37
    assert dataset_fingerprint(a, "sha256").startswith("sha256:")
    assert dataset_fingerprint(a, "sha256") == dataset_fingerprint(same, "sha256")
    changed_value = a.copy(deep=True)
    changed_value["tas"][0, 0, 0] += 1
    assert dataset_fingerprint(changed_value) != dataset_fingerprint(a)
    assert dataset_fingerprint(a.assign_attrs(x=1)) != dataset_fingerprint(a)
    assert dataset_fingerprint(small_slice("2024-01-02")) != dataset_fingerprint(a)


def test_dask_backed_dataset_is_fingerprinted_without_computing(small_slice):
    lazy = small_slice("2024-01-01").chunk({"lat": 2})
    assert dataset_fingerprint(lazy) == dataset_fingerprint(lazy)


def test_zarr_folder_slices(tmp_path, memory_target, small_slice):
    paths = []
    for day in ("2024-01-01", "2024-01-02"):
        path = tmp_path / f"{day}.zarr"
        small_slice(day).to_zarr(path, zarr_format=3, consolidated=False)
        paths.append(path)

    assert versioncube.append(paths, target_dir=memory_target) == 2
    expected = xr.concat([small_slice("2024-01-01"), small_slice("2024-01-02")], "time")
    xr.testing.assert_identical(open_cube(memory_target).to_xarray().load(), expected)


def test_fsspec_uri_slices(memory_target, small_slice):
    fs = fsspec.filesystem("memory")
    uris = []
    for day in ("2024-02-01", "2024-02-02"):
        with fs.open(f"/slices/{day}.nc", "wb") as file:
            file.write(small_slice(day).to_netcdf())
        uris.append(f"memory://slices/{day}.nc")

    assert versioncube.append(uris, target_dir=memory_target) == 2
    cube = open_cube(memory_target)
    assert set(cube.appended_slices()) == set(uris)
    expected = xr.concat([small_slice("2024-02-01"), small_slice("2024-02-02")], "time")
    xr.testing.assert_equal(cube.to_xarray().load(), expected)


def test_big_file_slices_stay_lazy(daily_files, monkeypatch):
    monkeypatch.setattr(versioncube.slices.opening, "LOAD_LIMIT_BYTES", 0)
    with open_slice(slice_ref(daily_files[0])) as dataset:
        assert dataset.tas.chunks is not None
        expected = xr.open_dataset(daily_files[0]).load()
        xr.testing.assert_identical(dataset.load(), expected)


def test_unknown_engine_is_a_slice_error(daily_files):
    ref = slice_ref(daily_files[0])
    with (
        pytest.raises(versioncube.SliceOpenError, match="2024-03-01.nc: cannot be read"),
        open_slice(ref, engine="no-such-engine"),
    ):
        pass
