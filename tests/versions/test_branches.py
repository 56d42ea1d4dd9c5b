"""Branches: rollback (and undoing it), staging on a branch and promoting it, branch errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.store.commit import move_branch
from versioncube.testing import commits, tip

DAYS = pd.date_range("2024-03-01", periods=20)


def _expected(days, count):
    return xr.concat(days[:count], "time")


# -- rollback -----------------------------------------------------------------------------------


def test_rollback_then_appends_continue_from_the_rolled_back_state(grown, days):
    result = grown.rollback("~2")

    assert [entry.labels for entry in result.discarded] == ["time 2024-03-05", "time 2024-03-04"]
    assert "discarded 2 commits (time 2024-03-04 .. 2024-03-05)" in result.describe()
    xr.testing.assert_identical(grown.to_xarray().load(), _expected(days, 3))

    assert versioncube.append(days[:7], target_dir=grown.target.uri) == 4
    assert len(commits(grown)) == 7
    xr.testing.assert_identical(grown.to_xarray().load(), _expected(days, 7))


def test_rollback_deletes_nothing_and_can_be_undone(grown, days):
    discarded_tip = tip(grown)
    result = grown.rollback("~3")

    old = grown.to_xarray(discarded_tip)  # still readable by snapshot id
    xr.testing.assert_identical(old.load(), _expected(days, 5))
    undo = grown.rollback(result.previous_tip)
    assert [entry.labels for entry in undo.restored][-1] == "time 2024-03-03"
    assert len(undo.restored) == 3 and not undo.discarded
    assert tip(grown) == discarded_tip
    xr.testing.assert_identical(grown.to_xarray().load(), _expected(days, 5))


def test_rollback_is_a_compare_and_swap_on_the_inspected_tip(grown, days):
    inspected = tip(grown)
    other_writer = open_cube(grown.target.uri)
    other_writer.append(days[5])  # slips in after the inspection

    with pytest.raises(versioncube.ConcurrentUpdateError, match="moved"):
        move_branch(
            grown.repository, grown.target, "main", commits(grown)[3].id, expected_tip=inspected
        )
    assert len(commits(grown)) == 6  # the append is not lost


WRITER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    import versioncube
    from versioncube.samples import sample_slice

    target = sys.argv[1]
    cube = versioncube.open_cube(target)
    for day in pd.date_range("2024-03-06", periods=15):
        while True:
            try:
                result = cube.append(sample_slice(day, shape=(6, 12)))
                print(result.snapshot_id, flush=True)
                break
            except versioncube.ConcurrentUpdateError:
                cube = versioncube.open_cube(target)
    """
)


@pytest.mark.slow  # a writer process
def test_rollback_racing_an_append_in_another_process_loses_neither(tmp_path, small_slice):
    target = str(tmp_path / "cube")
    versioncube.append([small_slice(day) for day in DAYS[:5]], target_dir=target)
    cube = open_cube(target)
    discarded: set[str] = set()
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, target], stdout=subprocess.PIPE, text=True
    ) as writer:
        while writer.poll() is None:
            if len(cube.log()) <= 5:  # keep the first five days; roll back what the writer adds
                continue
            # a ConcurrentUpdateError means the writer committed first and nothing was changed
            with contextlib.suppress(versioncube.ConcurrentUpdateError):
                discarded |= {entry.snapshot_id for entry in cube.rollback("~1").discarded}
        written = set(writer.stdout.read().split())
    assert writer.returncode == 0

    on_branch = {s.id for s in commits(open_cube(target))}
    assert written <= on_branch | discarded  # every append is on the branch or was rolled back
    assert len(written) == 15
    for snapshot_id in written - on_branch:  # rolled-back commits stay readable
        assert open_cube(target).to_xarray(snapshot_id).sizes["time"] >= 1
    labels = open_cube(target).to_xarray().time.values
    assert (labels[1:] > labels[:-1]).all()


# -- branches ----------------------------------------------------------------------------------


def test_stage_on_a_branch_then_promote(grown, days):
    grown.create_branch("staging")
    staging = open_cube(grown.target.uri, branch="staging")
    versioncube.append(days[5:8], target_dir=grown.target.uri, target_branch="staging")

    assert len(commits(grown)) == 5
    result = grown.promote("staging")
    assert len(result.restored) == 3
    assert tip(grown) == tip(staging)
    xr.testing.assert_identical(grown.to_xarray().load(), _expected(days, 8))
    assert [b.name for b in grown.branches()] == ["main", "staging"]
    grown.delete_branch("staging")
    assert [b.name for b in grown.branches()] == ["main"]


def test_promote_refuses_when_main_moved(grown, days, small_slice):
    grown.create_branch("staging")
    versioncube.append(days[5:6], target_dir=grown.target.uri, target_branch="staging")
    grown.append(days[5])  # main moves on its own
    main_tip = tip(grown)

    with pytest.raises(versioncube.VersionError, match="'main' has 1 commit that 'staging' lacks"):
        grown.promote("staging")
    assert tip(grown) == main_tip


def test_branch_errors(grown):
    with pytest.raises(versioncube.VersionError, match="main branch cannot be deleted"):
        grown.delete_branch("main")
    grown.create_branch("dev")
    with pytest.raises(versioncube.VersionError, match="branch 'dev' already exists"):
        grown.create_branch("dev")
    with pytest.raises(versioncube.RefNotFoundError, match="no branch 'nope'"):
        grown.delete_branch("nope")
