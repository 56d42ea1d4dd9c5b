"""GRIB through the cfgrib engine (ecCodes from PyPI wheels): a real ERA5 sample from cfgrib's
sdist, split into files of two time steps each, rebuilds what cfgrib reads from the whole."""

from __future__ import annotations

import pytest
import xarray as xr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.testing.grib_samples import split_by_time

SAMPLE = "era5-levels-members.grib"  # 10 members x 4 times x 2 levels, 61 x 120 points


@pytest.mark.parametrize("via", ["api", "cli"])
def test_a_real_grib_sample_appended_in_parts(via, grib_samples, tmp_path):
    source = grib_samples / SAMPLE
    parts = split_by_time(source, tmp_path / "parts", steps=2)
    assert len(parts) == 2
    target = str(tmp_path / "cube")
    if via == "api":
        summary = versioncube.append_slices([str(path) for path in parts], target_dir=target)
        extents = [result.record.extent() for result in summary.results]
        assert extents == [
            "time 2017-01-01 .. 2017-01-01T12:00",
            "time 2017-01-02 .. 2017-01-02T12:00",
        ]
    else:
        result = CliRunner().invoke(cli, ["append", "-t", target, *map(str, parts)])
        assert result.exit_code == 0, result.output

    head = open_cube(target).to_xarray().load()
    whole = xr.open_dataset(source, engine="cfgrib", backend_kwargs={"indexpath": ""}).load()
    # cfgrib writes the time of reading and the file's path into "history"
    for dataset in (head, whole):
        assert "GRIB to CDM+CF via cfgrib-0.9.15.1" in dataset.attrs.pop("history")
    xr.testing.assert_identical(head, whole)
