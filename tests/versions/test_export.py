"""``versioncube export`` / ``Cube.export``: a version as a plain Zarr store that zappend's
consumers open with ``xr.open_zarr(target_dir)``."""

from __future__ import annotations

import json

import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.errors import DestinationExistsError

VARIABLES = {
    "tas": {"encoding": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 273.15,
                         "fill_value": -32768, "chunks": [1, 3, 6], "shards": [1, 6, 12]}},
    "pr": {"encoding": {"compressor": {"id": "zlib", "level": 3}}},
    "time": {"encoding": {"units": "hours since 2000-01-01", "dtype": "int32"}},
}  # fmt: skip


@pytest.fixture
def cube(memory_target, small_slice):
    slices = [small_slice(day) for day in ("2024-01-01", "2024-01-02", "2024-01-03")]
    versioncube.append(slices[:2], target_dir=memory_target, variables=VARIABLES)
    cube = open_cube(memory_target)
    cube.tag("v1")
    cube.append(slices[2])
    return cube


@pytest.mark.parametrize(("zarr_format", "consolidated"), [(2, True), (2, False), (3, False)])
def test_an_export_reads_back_as_the_version(zarr_format, consolidated, cube, tmp_path):
    destination = tmp_path / "out.zarr"
    result = cube.export(
        destination, version="v1", zarr_format=zarr_format, consolidated=consolidated
    )
    assert result.describe().startswith(f"exported v1 (snapshot {cube.resolve('v1').snapshot_id}")
    assert f"as Zarr v{zarr_format}" in result.describe()
    assert json.loads(json.dumps(result.to_json()))["zarr_format"] == zarr_format
    assert result._repr_html_()

    plain = xr.open_zarr(destination, consolidated=consolidated)  # as a zappend consumer reads
    xr.testing.assert_identical(plain.load(), cube.to_xarray(version="v1").load())
    assert plain.tas.encoding["dtype"] == "int16" and plain.tas.encoding["scale_factor"] == 0.01
    assert plain.time.encoding["units"] == "hours since 2000-01-01"
    group = zarr.open_group(destination, mode="r")
    assert group.metadata.zarr_format == zarr_format


def test_the_cli_exports_and_refuses_a_non_empty_destination(cube, tmp_path):
    destination = str(tmp_path / "out.zarr")
    runner = CliRunner()
    args = ["export", "-t", cube.target.uri, "--zarr-format", "2", "--consolidated", destination]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "as Zarr v2 with consolidated metadata: 5 variables, time 2024-01-01 .. 2024-01-03" in (
        result.output
    )

    again = runner.invoke(cli, args)
    assert again.exit_code == 1
    assert "Error: export destination" in again.output and "overwrite it" in again.output
    replaced = runner.invoke(cli, [*args[:-1], "--at", "v1", "--overwrite", "--json", destination])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(replaced.stdout)["version"] == "v1"
    assert xr.open_zarr(destination).sizes["time"] == 2


def test_a_non_empty_destination_is_a_file_exists_error(cube, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("mine")
    with pytest.raises(DestinationExistsError) as raised:
        cube.export(tmp_path / "taken")
    assert isinstance(raised.value, FileExistsError)
    assert (tmp_path / "taken" / "file.txt").read_text() == "mine"
    cube.export(tmp_path / "empty")  # a new folder is fine
