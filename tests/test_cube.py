"""Appending slices: one commit each, read back identical, resumable and idempotent."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.slices.identity import content_stamp
from versioncube.testing import appended_in_order, commits, tip
from versioncube.versions.ledger import Ledger
from versioncube.versions.record import SCHEMA_VERSION, CommitRecord, human_message


def test_each_slice_is_one_commit_and_reads_back_identical(memory_target, small_slice):
    slices = [small_slice(day) for day in pd.date_range("2024-03-01", periods=5)]
    cube = open_cube(memory_target)

    results = [cube.append(item) for item in slices]

    assert [r.status for r in results] == ["appended"] * 5
    history = commits(cube)
    assert len(history) == 5
    assert [s.id for s in history] == [r.snapshot_id for r in reversed(results)]
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(slices, "time"))


def test_commit_metadata_follows_the_schema(daily_files):
    target = str(daily_files[0].parent.parent / "cube")
    versioncube.append(daily_files[:3], target_dir=target)
    cube = open_cube(target)

    history = list(reversed(commits(cube)))
    records = [CommitRecord.of_snapshot(s, "time") for s in history]

    assert [r.operation for r in records] == ["create", "append", "append"]
    assert [r.slice_name for r in records] == [path.name for path in daily_files[:3]]
    assert appended_in_order(cube) == [str(path) for path in daily_files[:3]]
    assert [r.index_range for r in records] == [(0, 1), (1, 2), (2, 3)]
    assert [r.labels for r in records] == [
        ("2024-03-01", "2024-03-01"),
        ("2024-03-02", "2024-03-02"),
        ("2024-03-03", "2024-03-03"),
    ]
    assert {r.append_dim for r in records} == {"time"}
    assert {r.schema for r in records} == {SCHEMA_VERSION}
    stamp = json.dumps(content_stamp(str(daily_files[1])))  # the file's size and mtime
    assert history[1].message == (
        "append 2024-03-02.nc: time 2024-03-02\n\n"
        'versioncube: {"v":3,"o":"append","n":"2024-03-02.nc","r":[1,2],"l":["2024-03-02"],'
        f'"s":{stamp}}}'
    )
    assert {s.metadata.get("versioncube") for s in history} == {None}  # no commit metadata
    assert '"d":"time"' in history[0].message
    assert Ledger.read(cube.repository.readonly_session("main").store).writer == (
        versioncube.__version__
    )
    assert human_message(commits(cube)[0].message) == "append 2024-03-03.nc: time 2024-03-03"
    assert human_message(commits(cube)[-1].message) == "create 2024-03-01.nc: time 2024-03-01"


def test_multi_step_slice_records_its_label_range(memory_target, small_slice):
    cube = open_cube(memory_target)
    cube.append(small_slice(["2024-01-01", "2024-01-02"]))
    result = cube.append(small_slice(pd.date_range("2024-01-03", periods=3, freq="6h")))

    assert result.record.index_range == (2, 5)
    assert result.record.labels == ("2024-01-03", "2024-01-03T12:00:00")
    assert human_message(commits(cube)[0].message).endswith("time 2024-01-03 .. 2024-01-03T12:00")


def test_rerun_skips_what_is_already_committed(daily_files, tmp_path):
    target = str(tmp_path / "cube")
    assert versioncube.append(daily_files[:4], target_dir=target) == 4
    tip_before = tip(open_cube(target))

    assert versioncube.append(daily_files[:4], target_dir=target) == 0
    assert tip(open_cube(target)) == tip_before

    assert versioncube.append(daily_files, target_dir=target) == 6
    cube = open_cube(target)
    assert len(commits(cube)) == 10
    expected = xr.open_mfdataset(daily_files).load()
    xr.testing.assert_identical(cube.to_xarray().load(), expected)


def test_resume_after_a_bad_slice_appends_only_the_missing(daily_files, tmp_path):
    target = str(tmp_path / "cube")
    broken = tmp_path / "slices" / "2024-03-05.nc"
    good_copy = broken.read_bytes()
    broken.write_bytes(b"not a netcdf file")

    with pytest.raises(versioncube.SliceOpenError, match="2024-03-05.nc"):
        versioncube.append(daily_files, target_dir=target)
    cube = open_cube(target)
    assert len(commits(cube)) == 4

    broken.write_bytes(good_copy)
    summary_count = versioncube.append(daily_files, target_dir=target)

    assert summary_count == 6
    cube = open_cube(target)
    assert len(commits(cube)) == 10
    assert appended_in_order(cube) == [str(path) for path in daily_files]


def test_skipped_result_names_the_commit_that_holds_the_slice(memory_target, small_slice):
    cube = open_cube(memory_target)
    first = cube.append(small_slice("2024-01-01"))
    again = cube.append(small_slice("2024-01-01"))

    assert again.status == "skipped"
    assert again.snapshot_id == first.snapshot_id
    assert "already in the cube" in again.describe()


def test_a_new_process_sees_the_history(daily_files, tmp_path):
    """Identities come from the repository, not from the Cube object that appended them."""
    target = str(tmp_path / "cube")
    versioncube.append(daily_files[:2], target_dir=target)
    fresh = open_cube(target)

    assert set(fresh.appended_slices()) == {str(path) for path in daily_files[:2]}


def test_relabelled_copy_of_existing_data_is_refused(memory_target, small_slice):
    cube = open_cube(memory_target)
    cube.append(small_slice("2024-01-01"))
    cube.append(small_slice("2024-01-02"))
    before = tip(cube)
    duplicate = small_slice("2024-01-02").assign_attrs(note="same label, other content")

    with pytest.raises(versioncube.SliceValidationError, match="not after the cube's last label"):
        cube.append(duplicate)
    assert tip(cube) == before


def test_dry_run_validates_everything_and_writes_nothing(memory_target, small_slice):
    slices = [small_slice(day) for day in pd.date_range("2024-03-01", periods=3)]
    summary = versioncube.append_slices(slices, target_dir=memory_target, dry_run=True)

    assert [r.status for r in summary.results] == ["would append"] * 3
    assert [r.record.operation for r in summary.results] == ["create", "append", "append"]
    assert not open_cube(memory_target).exists()


def test_dry_run_on_existing_cube_reports_the_bad_slice(memory_target, small_slice):
    versioncube.append([small_slice("2024-03-01")], target_dir=memory_target)
    before = tip(open_cube(memory_target))
    slices = [small_slice("2024-03-02"), small_slice("2024-03-02T12"), small_slice("2024-03-02")]

    with pytest.raises(versioncube.SliceValidationError, match="not after"):
        versioncube.append(slices, target_dir=memory_target, dry_run=True)
    assert tip(open_cube(memory_target)) == before


def test_append_to_a_named_branch_of_a_new_repository(memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, target_branch="dev")
    cube = open_cube(memory_target, branch="dev")

    assert len(commits(cube)) == 1
    assert set(cube.repository.list_branches()) == {"main", "dev"}
    with pytest.raises(versioncube.CubeNotFoundError, match="holds no cube"):
        open_cube(memory_target).to_xarray()


def test_unknown_branch_of_an_existing_repository_is_an_error(memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target)

    with pytest.raises(versioncube.CubeNotFoundError, match="no branch 'nope'.*branches: main"):
        open_cube(memory_target, branch="nope").to_xarray()


def test_missing_cube_is_a_clear_error(tmp_path):
    with pytest.raises(versioncube.CubeNotFoundError, match="no versioncube repository"):
        open_cube(tmp_path / "nothing").to_xarray()


def test_cube_remembers_its_append_dim(memory_target, small_slice):
    steps = [small_slice("2024-01-01").rename(time="step"), small_slice("2024-01-02")]
    steps[1] = steps[1].rename(time="step")
    versioncube.append(steps[:1], target_dir=memory_target, append_dim="step")

    assert versioncube.append(steps[1:], target_dir=memory_target) == 1
    assert open_cube(memory_target).to_xarray().sizes["step"] == 2
    with pytest.raises(versioncube.ConfigError, match="created with append_dim 'step'"):
        versioncube.append([small_slice("2024-01-03")], target_dir=memory_target, append_dim="time")


def test_append_dim_without_coordinate_appends_by_index(memory_target):
    import numpy as np

    parts = [xr.Dataset({"v": (("n", "x"), np.full((2, 3), float(i)))}) for i in range(3)]
    count = versioncube.append(parts, target_dir=memory_target, append_dim="n")
    cube = open_cube(memory_target)

    assert count == 3
    records = [CommitRecord.of_snapshot(s) for s in reversed(commits(cube))]
    assert [r.index_range for r in records] == [(0, 2), (2, 4), (4, 6)]
    assert {r.labels for r in records} == {None}
    assert human_message(commits(cube)[0].message).endswith("n [4:6]")
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(parts, "n"))
