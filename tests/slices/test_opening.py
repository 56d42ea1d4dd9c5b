"""Opening slices from files, Zarr folders and fsspec URIs; slices that cannot be opened are
named, and the tip stays."""

from __future__ import annotations

import fsspec
import pytest
import xarray as xr

import versioncube
import versioncube.slices.opening
from versioncube import open_cube
from versioncube.slices.identity import slice_ref
from versioncube.slices.opening import open_slice
from versioncube.testing import tip


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


def test_unopenable_slices_are_named(tmp_path, memory_target, small_slice):
    cube = open_cube(memory_target)
    cube.append(small_slice("2024-01-01"))
    before = tip(cube)
    corrupt = tmp_path / "2024-01-02.nc"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n truncated")

    with pytest.raises(versioncube.SliceOpenError, match="slice nowhere.nc: file not found"):
        cube.append(tmp_path / "nowhere.nc")
    with pytest.raises(versioncube.SliceOpenError, match="slice 2024-01-02.nc: cannot be read"):
        cube.append(corrupt)
    with pytest.raises(
        versioncube.SliceOpenError, match="expected a path, a URI or an xarray Dataset"
    ):
        cube.append(42)
    assert tip(cube) == before
