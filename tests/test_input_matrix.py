"""Every slice a zappend or xarray user has: each input format (tests/formats.py) as the first
slice of a cube and as a later one, through the API and the CLI, on generated fields and on the
eofs reanalysis file cut into slices. The cube must read back equal to ``xr.concat`` of the
slices as xarray opens them (attributes included), keep the first slice's stored dtype and
packing, and be copyable by plain xarray (``ds.to_zarr(other)``)."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.samples import sample_slice
from versioncube.testing.formats import BY_NAME, FORMATS, Format, Item, opened

#: eofs' sst file goes through the formats that keep its missing values: FixedScaleOffset
#: turns NaN into integers, and Delta makes every value after a NaN NaN (both are tested on the
#: generated fields, which have no missing values)
EOFS_FORMATS = [fmt for fmt in FORMATS if fmt.name not in ("zarr2-fixedscaleoffset", "zarr2-delta")]


@functools.cache
def _source(data: str) -> xr.Dataset:
    """Three time steps of small fields."""
    if data == "generated":
        return sample_slice(["2024-01-01", "2024-01-02", "2024-01-03"], shape=(4, 6))
    from eofs.examples import example_data_path

    sst = xr.open_dataset(example_data_path("sst_ndjfm_anom.nc"))
    return sst.isel(time=slice(0, 3), latitude=slice(6, 10), longitude=slice(10, 16)).load()


def _cases() -> list:
    """Generated fields: every format x first/later x API/CLI; eofs: every format x first/later
    through the API (marked slow: together they take longer than the rest of the matrix)."""
    cases = []
    for data, formats in (("generated", FORMATS), ("eofs", EOFS_FORMATS)):
        marks = [pytest.mark.slow] if data == "eofs" else []
        for fmt in formats:
            for position in ("first", "later"):
                cases.append(pytest.param(data, fmt.name, position, "api", marks=marks))
                if fmt.is_file and data == "generated":
                    cases.append(pytest.param(data, fmt.name, position, "cli"))
    return cases


def _base(fmt: Format, via: str) -> Format:
    """The format of the other slice in the cube: packed alike for packed formats, a file for
    the CLI, in memory otherwise."""
    if fmt.packed:
        return BY_NAME["netcdf4-packed"]
    return BY_NAME["netcdf4-contiguous" if via == "cli" else "memory-numpy"]


@pytest.mark.parametrize(("data", "name", "position", "via"), _cases())
# numcodecs' FixedScaleOffset casts the NaN padding of a partial chunk to an integer, warning
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_every_input_as_first_and_later_slice(data, name, position, via, tmp_path):
    fmt = BY_NAME[name]
    source = _source(data)
    several, one = source.isel(time=[0, 1]), source.isel(time=[2])  # slices of 2 steps and 1
    base = _base(fmt, via)
    if position == "first":
        items = [fmt.write(several, tmp_path / "a"), base.write(one, tmp_path / "b")]
    else:
        items = [base.write(source.isel(time=[0]), tmp_path / "a")]
        items.append(fmt.write(source.isel(time=[1, 2]), tmp_path / "b"))
    target = f"memory://{uuid.uuid4().hex}"

    _append(items, target, via)

    expected = [opened(item) for item in items]
    head = open_cube(target).to_xarray()
    concatenated = xr.concat(expected, "time", data_vars="minimal")
    if fmt.lossy and position == "first":  # the cube quantises later slices the same way
        xr.testing.assert_allclose(head.load(), concatenated, atol=1e-3)
        assert head.attrs == concatenated.attrs
    else:
        xr.testing.assert_identical(head.load(), concatenated)
    _check_storage(head, expected[0])
    _check_plain_copy(head, tmp_path / "copy.zarr")


def test_every_format_in_one_cube(tmp_path):
    """One cube grown from each (unpacked) format in turn, one day each."""
    formats = [fmt for fmt in FORMATS if not fmt.packed]
    days = sample_slice([f"2024-01-{day:02d}" for day in range(1, len(formats) + 1)], shape=(4, 6))
    items = [
        fmt.write(days.isel(time=[index]), tmp_path / fmt.name) for index, fmt in enumerate(formats)
    ]
    target = f"memory://{uuid.uuid4().hex}"
    assert versioncube.append(items, target_dir=target) == len(formats)
    expected = xr.concat([opened(item) for item in items], "time", data_vars="minimal")
    xr.testing.assert_identical(open_cube(target).to_xarray().load(), expected)


def _append(items: list[Item], target: str, via: str) -> None:
    if via == "api":
        assert versioncube.append(items, target_dir=target) == len(items)
        return
    result = CliRunner().invoke(cli, ["append", "-t", target, *map(str, items)])
    assert result.exit_code == 0, result.output
    assert f"appended {len(items)} slices" in result.output


def _check_storage(head: xr.Dataset, first: xr.Dataset) -> None:
    """Each field is stored with the first slice's dtype and packing."""
    for name, variable in first.data_vars.items():
        if "time" not in variable.dims or variable.dtype.kind != "f":
            continue
        stored = head[name].encoding
        assert stored["dtype"] == variable.encoding.get("dtype", variable.dtype), name
        for key in ("scale_factor", "add_offset"):
            assert stored.get(key) == variable.encoding.get(key), (name, key)


def _check_plain_copy(head: xr.Dataset, destination: Path) -> None:
    head.to_zarr(destination, consolidated=False)
    copied = xr.open_zarr(destination, consolidated=False)
    xr.testing.assert_identical(copied.load(), head.load())
