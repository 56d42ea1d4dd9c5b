"""The catalogue of bad input versioncube is tried with (tests/test_bad_input.py runs it, and
docs/generate_reference.py turns it into docs/bad-input.md).

It is here, not in tests/, because both of them import it: the page lists exactly the cases
the tests try, with the errors they raise.

Each case gets a folder to write files into and a cube that holds two good days, and must
fail with a versioncube error; the tests then check that the branch tip did not move and that
the next good slice still appends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import versioncube
from versioncube.samples import sample_slice

SHAPE = (6, 12)
NEXT_DAY = "2024-01-03"


def good(day: str = NEXT_DAY) -> xr.Dataset:
    """A slice that fits the cube of :func:`cube_with_two_days` (by default, its next day)."""
    return sample_slice(day, shape=SHAPE)


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One kind of bad input: what is tried, and the error class it must raise."""

    what: str
    error: type[versioncube.VersionCubeError]
    attempt: Callable[[Path, str], object]  # (folder, target) -> calls versioncube


def _append(item: Any, target: str, **settings: Any) -> object:
    return versioncube.append([item], target_dir=target, **settings)


def _file(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _truncated(folder: Path, target: str) -> object:
    path = folder / "2024-01-03.nc"
    good().to_netcdf(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # as a download cut off half way leaves it
    return _append(path, target)


def _not_a_zarr_store(folder: Path, target: str) -> object:
    (folder / "2024-01-03.zarr").mkdir()
    return _append(folder / "2024-01-03.zarr", target)


def _nan_in_grid(folder: Path, target: str) -> object:
    item = good()
    lat = item.lat.values.copy()
    lat[2] = np.nan
    return _append(item.assign_coords(lat=lat), target)


CASES = [
    BadInput(
        "a truncated NetCDF file",
        versioncube.SliceOpenError,
        _truncated,
    ),
    BadInput(
        "a file of random bytes",
        versioncube.SliceOpenError,
        lambda folder, target: _append(_file(folder, "junk.nc", bytes(range(256)) * 8), target),
    ),
    BadInput(
        "an empty (0-byte) file",
        versioncube.SliceOpenError,
        lambda folder, target: _append(_file(folder, "empty.nc", b""), target),
    ),
    BadInput(
        "a file that does not exist",
        versioncube.SliceOpenError,
        lambda folder, target: _append(folder / "2024-01-03.nc", target),
    ),
    BadInput(
        "an unreachable URI",
        versioncube.SliceOpenError,
        lambda folder, target: _append("http://127.0.0.1:9/2024-01-03.nc", target),
    ),
    BadInput(
        "a folder that is not a Zarr store",
        versioncube.SliceOpenError,
        _not_a_zarr_store,
    ),
    BadInput(
        "something that is not a slice",
        versioncube.SliceOpenError,
        lambda folder, target: _append(42, target),
    ),
    BadInput(
        "a variable of another dtype",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().assign(tas=good().tas.astype("float64")), target),
    ),
    BadInput(
        "a NaN in a grid coordinate",
        versioncube.SliceValidationError,
        _nan_in_grid,
    ),
    BadInput(
        "a missing (NaT) time label",
        versioncube.SliceValidationError,
        lambda folder, target: _append(
            good().assign_coords(time=np.array(["NaT"], dtype="datetime64[ns]")), target
        ),
    ),
    BadInput(
        "a slice without the time coordinate",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().drop_vars("time"), target),
    ),
    BadInput(
        "another grid size",
        versioncube.SliceValidationError,
        lambda folder, target: _append(sample_slice(NEXT_DAY, shape=(7, 12)), target),
    ),
    BadInput(
        "the same grid size, shifted",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().assign_coords(lon=good().lon + 0.5), target),
    ),
    BadInput(
        "an empty slice (no time step)",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().isel(time=slice(0, 0)), target),
    ),
    BadInput(
        "a slice without the append dimension",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().isel(time=0), target),
    ),
    BadInput(
        "a variable missing",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().drop_vars("pr"), target),
    ),
    BadInput(
        "a variable too many",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().assign(psl=good().tas), target),
    ),
    BadInput(
        "dimensions in another order",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().transpose("time", "lon", "lat"), target),
    ),
    BadInput(
        "a label the cube already has",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good("2024-01-02").assign_attrs(v=2), target),
    ),
    BadInput(
        "labels out of order",
        versioncube.SliceValidationError,
        lambda folder, target: _append(
            sample_slice(["2024-01-05", "2024-01-04"], shape=SHAPE), target
        ),
    ),
    BadInput(
        "a label finer than the cube's time units",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good("2024-01-03T00:00:00.5"), target),
    ),
    BadInput(
        "numbers where the cube has dates",
        versioncube.SliceValidationError,
        lambda folder, target: _append(good().assign_coords(time=[3]), target),
    ),
    BadInput(
        "an unknown configuration key",
        versioncube.ConfigError,
        lambda folder, target: _append(good(), target, append_dimension="time"),
    ),
    BadInput(
        "a configuration value of the wrong type",
        versioncube.ConfigError,
        lambda folder, target: _append(good(), target, dry_run="no"),
    ),
    BadInput(
        "zarr_version 2",
        versioncube.ConfigError,
        lambda folder, target: _append(good(), target, zarr_version=2),
    ),
    BadInput(
        "another append dimension than the cube's",
        versioncube.ConfigError,
        lambda folder, target: _append(good(), target, append_dim="lat"),
    ),
]


def error_text(case: BadInput, folder: Path, target: str) -> str:
    """The error message the case produces, with the folder written as <folder>."""
    try:
        case.attempt(folder, target)
    except case.error as error:
        return str(error).replace(str(folder), "<folder>")
    raise AssertionError(f"{case.what}: no {case.error.__name__} raised")


def cube_with_two_days(target: str) -> versioncube.Cube:
    """The cube every case is tried against: 2024-01-01 and 2024-01-02, one commit each."""
    versioncube.append([good("2024-01-01"), good("2024-01-02")], target_dir=target)
    return versioncube.open_cube(target)
