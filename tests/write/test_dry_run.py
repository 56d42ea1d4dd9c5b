"""A dry run gives the same verdict per slice as the real run, for every slice."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice
from versioncube.testing.cli_checks import assert_one_line_error, run_cli


@pytest.fixture
def files(tmp_path):
    """Daily NetCDF files, then one at noon: NetCDF stores the first ones in "days since", so
    the noon label is only exact in the cube's own (seconds) units, as the real run keeps them."""
    folder = tmp_path / "slices"
    folder.mkdir()
    paths = []
    for time in ["2024-03-01", "2024-03-02", "2024-03-02T12:00", "2024-03-03"]:
        path = folder / f"{pd.Timestamp(time):%Y%m%dT%H}.nc"
        sample_slice(time, shape=(3, 6)).to_netcdf(path)
        paths.append(path)
    return paths


def test_a_dry_run_on_a_fresh_target_agrees_with_the_real_run(tmp_path, files):
    target = tmp_path / "cube"
    dry = versioncube.append_slices(files, target_dir=str(target), dry_run=True)
    assert [result.status for result in dry.results] == ["would append"] * 4
    assert not target.exists()

    real = versioncube.append_slices(files, target_dir=str(target))
    assert [result.status for result in real.results] == ["appended"] * 4
    assert [r.record.labels for r in dry.results] == [r.record.labels for r in real.results]


def test_a_dry_run_reports_every_slice_and_fails_at_the_end(tmp_path, files):
    target = tmp_path / "cube"
    versioncube.append(files[:1], target_dir=str(target))
    before = open_cube(target).store.tip()
    bad = tmp_path / "bad.nc"
    sample_slice("2024-03-02", shape=(4, 6)).to_netcdf(bad)  # another grid
    items = [files[1], bad, files[2], files[3]]

    with pytest.raises(versioncube.SliceValidationError, match="bad.nc") as caught:
        versioncube.append_slices(items, target_dir=str(target), dry_run=True)
    summary = caught.value.summary
    assert [r.status for r in summary.results] == [
        "would append", "would fail", "would append", "would append"
    ]  # fmt: skip
    assert summary.tally() == "would append 3, would fail 1, skipped 0"
    assert open_cube(target).store.tip() == before

    result = run_cli("append", "--dry-run", "-t", target, *items)
    assert_one_line_error(result, "bad.nc")
    assert "would fail bad.nc: " in result.stderr
    assert result.stderr.count("would append 20240") == 3

    as_json = run_cli("append", "--dry-run", "--json", "-t", target, *items)
    payload = json.loads(as_json.stdout)
    assert payload["error"]["type"] == "SliceValidationError"
    assert [r["status"] for r in payload["summary"]["results"]][1] == "would fail"


def test_the_real_run_stops_where_the_dry_run_said(tmp_path, files):
    target = tmp_path / "cube"
    bad = tmp_path / "bad.nc"
    sample_slice("2024-03-02", shape=(4, 6)).to_netcdf(bad)
    with pytest.raises(versioncube.SliceValidationError) as caught:
        versioncube.append([files[0], files[1], bad, files[2]], target_dir=str(target))
    assert caught.value.summary.tally() == "appended 2, skipped 0"
    expected = xr.concat([xr.open_dataset(path).load() for path in files[:2]], "time")
    xr.testing.assert_equal(open_cube(target).to_xarray().load(), expected)
