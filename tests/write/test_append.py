"""force_new: the append that starts the cube afresh, as a new commit that keeps the old
history readable."""

from __future__ import annotations

import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.slices.identity import dataset_fingerprint
from versioncube.testing import commits, tip
from versioncube.versions.record import CommitRecord


def test_force_new_starts_afresh_as_a_new_commit(memory_target, small_slice):
    old = [small_slice(day) for day in ("2024-01-01", "2024-01-02")]
    versioncube.append(old, target_dir=memory_target)
    cube = open_cube(memory_target)
    old_tip = tip(cube)

    new = [small_slice(day, variables=("psl",)) for day in ("2024-02-01", "2024-02-02")]
    assert versioncube.append(new, target_dir=memory_target, force_new=True, append_step="1D") == 2

    cube = open_cube(memory_target)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(new, "time"))
    records = [CommitRecord.of_snapshot(s, "time") for s in commits(cube)]
    assert [r.operation for r in records] == ["append", "create", "append", "create"]
    old_session = cube.repository.readonly_session(snapshot_id=old_tip)
    old_head = xr.open_zarr(old_session.store, consolidated=False).load()
    xr.testing.assert_identical(old_head, xr.concat(old, "time"))  # still in the history
    assert cube.repository.get_metadata()["versioncube"]["append_step"] == "1D"
    # the old slices are no longer in the cube, so appending them again is not skipped
    assert set(cube.appended_slices()) == {dataset_fingerprint(item) for item in new}


def test_force_new_appends_slices_that_the_old_cube_held(memory_target, small_slice):
    slices = [small_slice(day) for day in ("2024-01-01", "2024-01-02")]
    versioncube.append(slices, target_dir=memory_target)

    assert versioncube.append(slices, target_dir=memory_target, force_new=True) == 2
    assert len(commits(open_cube(memory_target))) == 4
    xr.testing.assert_identical(
        open_cube(memory_target).to_xarray().load(), xr.concat(slices, "time")
    )
    assert versioncube.append(slices, target_dir=memory_target) == 0


def test_force_new_with_dry_run_writes_nothing(memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target)
    before = tip(open_cube(memory_target))
    summary = versioncube.append_slices(
        [small_slice("2023-01-01"), small_slice("2023-01-02")],
        target_dir=memory_target,
        force_new=True,
        dry_run=True,
    )
    assert [r.record.operation for r in summary.results] == ["create", "append"]
    assert tip(open_cube(memory_target)) == before
