"""Opening slices from files, Zarr folders and fsspec URIs; slices that cannot be opened are
named, and the tip stays."""

from __future__ import annotations

import os
import subprocess
import sys

import fsspec
import pytest
import xarray as xr

import versioncube
import versioncube.slices.opening
from versioncube import open_cube
from versioncube.slices.identity import slice_ref
from versioncube.slices.opening import in_memory, open_slice
from versioncube.slices.options import SliceOptions
from versioncube.testing import tip
from versioncube.testing.grib_samples import cfgrib_samples


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


def open_files() -> set[str]:
    """The files this process holds open (Linux)."""
    folder = "/proc/self/fd"
    return {os.path.realpath(os.path.join(folder, fd)) for fd in os.listdir(folder)}


@pytest.mark.parametrize("big", [False, True])
def test_a_file_read_into_memory_is_closed_before_it_is_written(daily_files, monkeypatch, big):
    """A slice read into memory needs its file no more: open_slice closes it at once, so the
    append (and a run's read-ahead beside it) never uses the file libraries again for it; a
    big file stays open, read while it is written."""
    if big:
        monkeypatch.setattr(versioncube.slices.opening, "LOAD_LIMIT_BYTES", 0)
    path = os.path.realpath(daily_files[0])
    ref = slice_ref(daily_files[0])

    with open_slice(ref) as dataset:
        assert (path in open_files()) is big
        assert in_memory(dataset, ref, SliceOptions()) is not big
    assert path not in open_files()
    with xr.open_dataset(daily_files[0]) as given:  # a dataset given in memory: the caller's
        assert not in_memory(given.load(), slice_ref(given), SliceOptions())


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


@pytest.mark.parametrize("file_format", ["NETCDF3_CLASSIC", "NETCDF3_64BIT", "NETCDF4"])
def test_netcdf_files_open_with_the_backend_xarray_would_guess(tmp_path, small_slice, file_format):
    path = tmp_path / "slice.nc"
    engine = "scipy" if file_format.startswith("NETCDF3") else "netcdf4"
    small_slice("2024-03-01").to_netcdf(path, format=file_format, engine=engine)
    guessed = xr.backends.plugins.guess_engine(str(path))
    named = versioncube.slices.opening.local_engine(str(path), None)
    assert named is xr.backends.NetCDF4BackendEntrypoint
    assert xr.backends.plugins.list_engines()[guessed].__class__ is named
    assert versioncube.slices.opening.local_engine(str(path), "scipy") == "scipy"


def test_other_files_are_left_to_xarray_to_guess(tmp_path):
    grib = cfgrib_samples() / "era5-levels-members.grib"
    assert versioncube.slices.opening.local_engine(str(grib), None) is None
    assert versioncube.slices.opening.local_engine(str(tmp_path / "missing.nc"), None) is None


@pytest.mark.slow
def test_appending_a_netcdf_file_imports_no_other_backend(tmp_path, small_slice):
    """A job appending one file per process does not pay for importing every installed
    xarray backend (cfgrib's and eccodes' imports among them)."""
    path = tmp_path / "slice.nc"
    small_slice("2024-03-01").to_netcdf(path)
    script = (
        "import sys, versioncube\n"
        f"assert versioncube.append([{str(path)!r}], target_dir={str(tmp_path / 'cube')!r}) == 1\n"
        "print(sorted(m for m in ('cfgrib', 'gribberish', 'eccodes') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    xr.testing.assert_identical(
        open_cube(str(tmp_path / "cube")).to_xarray().load(),
        small_slice("2024-03-01").load(),
    )
