"""Slices opened with ``decode_cf=False``: packed integers stay packed, with the same CF
attributes, every later slice packed alike is accepted, one packed otherwise is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.errors import SliceValidationError
from versioncube.testing import tip

PACKING = {"dtype": "uint16", "scale_factor": 0.01, "add_offset": 200.0, "_FillValue": 65535}
DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")


def _packed_files(folder: Path, small_slice, packing=PACKING, days=DAYS) -> list[Path]:
    """Daily NetCDF files with 'tas' packed into uint16 and a missing value, times in fixed
    units (as an archive writes them)."""
    paths = []
    for day in days:
        dataset = small_slice(day)[["tas"]]
        dataset["tas"][0, 0, 0] = np.nan
        dataset.tas.encoding = dict(packing)
        dataset.time.encoding = {"units": "days since 1858-11-17", "dtype": "float64"}
        path = folder / f"packed-{day}.nc"
        dataset.to_netcdf(path)
        paths.append(path)
    return paths


def _raw(path: Path) -> xr.Dataset:
    return xr.open_dataset(path, decode_cf=False).load()


def test_raw_packed_slices_are_stored_packed_and_read_back_as_they_were(
    tmp_path, memory_target, small_slice
):
    paths = _packed_files(tmp_path, small_slice)
    raw = [_raw(path) for path in paths]
    assert raw[0].tas.dtype == np.uint16 and raw[0].tas.attrs["scale_factor"] == 0.01

    summary = versioncube.append_slices(raw, target_dir=memory_target)
    assert [result.record.extent() for result in summary.results] == [
        "time 2024-01-01", "time 2024-01-02", "time 2024-01-03"
    ]  # fmt: skip
    cube = open_cube(memory_target)
    xr.testing.assert_identical(
        cube.to_xarray(decode_cf=False).load(), xr.concat(raw, "time", data_vars="all")
    )
    decoded = [xr.open_dataset(path).load() for path in paths]
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(decoded, "time"))
    assert cube.to_xarray().tas.encoding["dtype"] == np.uint16


def test_raw_and_decoded_slices_mix_in_one_cube(tmp_path, memory_target, small_slice):
    paths = _packed_files(tmp_path, small_slice)
    slices = [_raw(paths[0]), xr.open_dataset(paths[1]).load(), str(paths[2])]
    assert versioncube.append(slices, target_dir=memory_target) == 3
    decoded = [xr.open_dataset(path).load() for path in paths]
    xr.testing.assert_identical(
        open_cube(memory_target).to_xarray().load(), xr.concat(decoded, "time")
    )


def test_a_raw_netcdf_gets_time_labels_in_the_log(tmp_path, memory_target, small_slice):
    (path,) = _packed_files(tmp_path, small_slice, days=("2021-11-25T12:00",))
    assert _raw(path).time.values[0] == 59543.5
    result = open_cube(memory_target).append(_raw(path))
    assert result.record.extent() == "time 2021-11-25T12:00"


def test_a_raw_slice_packed_otherwise_is_refused_naming_the_attribute(
    tmp_path, memory_target, small_slice
):
    first = _packed_files(_mk(tmp_path / "a"), small_slice, days=DAYS[:1])
    other = {**PACKING, "scale_factor": 0.02}
    (second,) = _packed_files(_mk(tmp_path / "b"), small_slice, packing=other, days=DAYS[1:2])
    cube = open_cube(memory_target)
    cube.append(_raw(first[0]))
    before = tip(cube)

    with pytest.raises(SliceValidationError) as raised:
        cube.append(_raw(second))
    assert "variable 'tas' is packed with scale_factor 0.02, the cube with 0.01" in str(
        raised.value
    )
    assert tip(cube) == before
    # decoded, the same file fits: its values are re-packed the cube's way
    assert cube.append(xr.open_dataset(second).load()).status == "appended"


def test_configured_packing_accepts_any_raw_packing(tmp_path, memory_target, small_slice):
    other = {**PACKING, "scale_factor": 0.02}
    first = _packed_files(_mk(tmp_path / "a"), small_slice, days=DAYS[:1])
    second = _packed_files(_mk(tmp_path / "b"), small_slice, packing=other, days=DAYS[1:2])
    variables = {"tas": {"encoding": {"dtype": "int32", "scale_factor": 0.001}}}
    slices = [_raw(first[0]), _raw(second[0])]
    assert versioncube.append(slices, target_dir=memory_target, variables=variables) == 2
    head = open_cube(memory_target).to_xarray()
    assert head.tas.encoding["dtype"] == np.int32 and head.tas.encoding["scale_factor"] == 0.001
    decoded = xr.concat([xr.open_dataset(path) for path in (*first, *second)], "time")
    xr.testing.assert_allclose(head.load(), decoded, atol=0.011)


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


PACKED_TAS = {"tas": {"encoding": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 273.15,
                                   "fill_value": -32768}}}  # fmt: skip


@pytest.mark.parametrize("position", ["first", "later"])
def test_values_beyond_the_packing_are_refused_not_wrapped(position, memory_target, small_slice):
    """int16 with scale_factor 0.01 stores -54.53 .. 600.82 around 273.15: xarray would wrap
    700 K around to 44.64 K without a word."""
    hot = small_slice("2024-01-02")
    hot["tas"][0, 1, 2] = 700.0
    slices = [hot] if position == "first" else [small_slice("2024-01-01"), hot]
    with pytest.raises(SliceValidationError) as raised:
        versioncube.append(slices, target_dir=memory_target, variables=PACKED_TAS)
    assert "variable 'tas' has the value 700, which its packing (dtype int16, scale_factor" in (
        str(raised.value)
    )
    assert "it stores -54.53 .. 600.82" in str(raised.value)
    cube = open_cube(memory_target)
    assert (position == "later") == cube.exists()
    if cube.exists():
        assert cube.to_xarray().sizes["time"] == 1
