"""Slice identity is exact: one file by any spelling is one slice, a changed file is refused,
and in-memory cuts of a file are named after the file and the cut."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.errors import SliceChangedError
from versioncube.testing import tip
from versioncube.versions.record import CommitRecord


@pytest.fixture
def linked_file(tmp_path: Path, small_slice) -> Path:
    """tmp_path/real/day.nc, also reachable as tmp_path/link/day.nc."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    path = tmp_path / "real" / "day.nc"
    small_slice("2024-01-01").to_netcdf(path)
    return path


def _spellings(path: Path, tmp_path: Path) -> list[str]:
    relative = os.path.relpath(path)
    linked = tmp_path / "link" / path.name
    return [
        str(path),
        relative,
        f"./{relative}",
        path.as_uri(),
        f"file://localhost{path}",
        str(linked),
        linked.as_uri(),
        str(tmp_path / "real" / ".." / "real" / path.name),
    ]


def test_one_file_by_any_spelling_is_one_slice(linked_file, tmp_path, memory_target):
    assert versioncube.append([str(linked_file)], target_dir=memory_target) == 1
    cube = open_cube(memory_target)
    before = tip(cube)

    for spelling in _spellings(linked_file, tmp_path):
        summary = versioncube.append_slices([spelling], target_dir=memory_target)
        assert [result.status for result in summary.results] == ["skipped"], spelling
    assert tip(cube) == before
    assert list(cube.appended_slices()) == [str(linked_file.resolve())]


def test_a_file_with_spaces_as_an_escaped_file_uri(tmp_path, memory_target, small_slice):
    path = tmp_path / "with space.nc"
    small_slice("2024-01-01").to_netcdf(path)
    versioncube.append([str(path)], target_dir=memory_target)
    summary = versioncube.append_slices([path.as_uri()], target_dir=memory_target)
    assert path.as_uri().count("%20") == 1
    assert summary.skipped == 1


def test_a_changed_file_at_a_known_path_is_refused_naming_the_commit(
    linked_file, memory_target, small_slice
):
    versioncube.append([str(linked_file)], target_dir=memory_target)
    cube = open_cube(memory_target)
    holding = tip(cube)
    record = CommitRecord.of_snapshot(cube.repository.lookup_snapshot(holding))
    assert record is not None and record.stamp is not None and "bytes" in record.stamp

    small_slice("2024-01-02").to_netcdf(linked_file)  # re-issued with other content
    with pytest.raises(SliceChangedError) as raised:
        versioncube.append([str(linked_file)], target_dir=memory_target)
    assert raised.value.snapshot_id == holding
    assert f"its content changed since snapshot {holding} appended it" in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert tip(cube) == holding
    with pytest.raises(SliceChangedError):  # the dry run says so too
        versioncube.append([str(linked_file)], target_dir=memory_target, dry_run=True)


def test_a_changed_zarr_folder_is_refused(tmp_path, memory_target, small_slice):
    path = tmp_path / "day.zarr"
    small_slice("2024-01-01").to_zarr(path, zarr_format=3, consolidated=False)
    versioncube.append([str(path)], target_dir=memory_target)
    assert versioncube.append([str(path)], target_dir=memory_target) == 0

    small_slice("2024-01-02").to_zarr(path, zarr_format=3, consolidated=False, mode="w")
    with pytest.raises(SliceChangedError, match="day.zarr: its content changed"):
        versioncube.append([str(path)], target_dir=memory_target)


def test_an_unchanged_file_touched_by_nobody_is_still_skipped_on_the_cli(linked_file, tmp_path):
    from click.testing import CliRunner

    from versioncube.cli import cli

    target = str(tmp_path / "cube")
    runner = CliRunner()
    assert runner.invoke(cli, ["append", "-t", target, str(linked_file)]).exit_code == 0
    result = runner.invoke(cli, ["append", "-t", target, linked_file.as_uri()])
    assert result.exit_code == 0, result.output
    assert "skipped 1" in result.output


def test_in_memory_cuts_of_a_file_are_named_after_the_file_and_the_cut(
    tmp_path, memory_target, small_slice
):
    path = tmp_path / "month.nc"
    xr.concat([small_slice(f"2024-01-0{day}") for day in (1, 2, 3, 4)], "time").to_netcdf(path)
    source = xr.open_dataset(path)
    cuts = [source.isel(time=[0]), source.isel(time=[1]), source.isel(time=slice(2, 4))]

    summary = versioncube.append_slices(cuts, target_dir=memory_target)
    assert [result.slice_name for result in summary.results] == [
        "month.nc[time=2024-01-01]",
        "month.nc[time=2024-01-02]",
        "month.nc[time=2024-01-03..2024-01-04]",
    ]
    whole = versioncube.append_slices([xr.open_dataset(path)], target_dir="memory://whole-month")
    assert whole.results[0].slice_name == "month.nc"
