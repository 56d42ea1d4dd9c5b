"""Versions: refs, log, tags, rollback, time travel, diff, branches, promote and gc."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import xarray as xr
import zarr
from conftest import commits, tip

import versioncube
from versioncube import open_cube
from versioncube.store.commit import move_branch
from versioncube.versions.record import CommitRecord
from versioncube.versions.summary import folder_size

DAYS = pd.date_range("2024-03-01", periods=20)


@pytest.fixture
def days(small_slice):
    """The slices of 20 consecutive days."""
    return [small_slice(day) for day in DAYS]


@pytest.fixture
def grown(memory_target, days):
    """A cube of the first five days, one commit each."""
    cube = open_cube(memory_target)
    for item in days[:5]:
        cube.append(item)
    return cube


def _expected(days, count):
    return xr.concat(days[:count], "time")


# -- refs --------------------------------------------------------------------------------------


def test_every_ref_form_resolves(grown, days):
    history = commits(grown)  # newest first: day 5 .. day 1
    grown.tag("v3", at=history[2].id)
    grown.create_branch("dev", at="~1")

    assert grown.resolve().snapshot_id == history[0].id
    assert grown.resolve("v3").snapshot_id == history[2].id
    assert grown.resolve("dev").snapshot_id == history[1].id
    assert grown.resolve("~2").snapshot_id == history[2].id
    assert grown.resolve("main~4").snapshot_id == history[4].id
    assert grown.resolve("dev~1").snapshot_id == history[2].id
    assert grown.resolve(history[3].id).snapshot_id == history[3].id
    assert grown.resolve(history[3].id[:8]).snapshot_id == history[3].id
    as_of = history[1].written_at
    assert grown.resolve(as_of).snapshot_id == history[1].id
    assert grown.resolve(as_of.isoformat()).snapshot_id == history[1].id
    naive_utc = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    assert grown.resolve(naive_utc).snapshot_id == history[1].id
    assert grown.resolve(dt.datetime(2999, 1, 1)).snapshot_id == history[0].id


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("v33", "unknown version 'v33'.*closest: v3"),
        ("main~99", "branch 'main' has fewer than 99 earlier commits"),
        ("2001-01-01", "no commit on branch 'main' at or before 2001-01-01"),
        ("ZZZZZZZZZZZZZZZZZZZZ", "unknown version 'ZZZZZZZZZZZZZZZZZZZZ'"),
    ],
)
def test_unknown_refs_are_clear_errors(grown, ref, message):
    grown.tag("v3")
    with pytest.raises(versioncube.RefNotFoundError, match=message):
        grown.resolve(ref)


# -- log and tags ------------------------------------------------------------------------------


def test_log_newest_first_with_tags(grown):
    grown.tag("release-1", message="first five days")
    log = grown.log()

    assert [entry.snapshot_id for entry in log] == [s.id for s in commits(grown)]
    assert [entry.labels for entry in log] == [f"time 2024-03-0{n}" for n in range(5, 0, -1)]
    assert [entry.operation for entry in log] == ["append"] * 4 + ["create"]
    assert log[0].tags == ("release-1",)
    assert len(grown.log(2)) == 2
    table = str(log)
    assert table.splitlines()[0].split() == [
        "short", "id", "time", "operation", "slice", "labels", "tag", "names"
    ]  # fmt: skip
    assert "release-1" in table.splitlines()[2]
    assert re.match(r"<table[^>]*><thead><tr><th[^>]*>short id</th>", log._repr_html_())
    records = log.to_json()
    assert records[0]["record"]["labels"] == ["2024-03-05", "2024-03-05"]
    assert records[0]["tags"] == ["release-1"]


def test_tags_are_immutable_and_keep_message_and_time(grown):
    before = dt.datetime.now(dt.UTC)
    grown.tag("v1", at="~1", message="nightly release")
    (info,) = grown.tags()

    assert info.name == "v1"
    assert info.snapshot_id == commits(grown)[1].id
    assert info.message == "nightly release"
    assert before <= info.created_at <= dt.datetime.now(dt.UTC)
    with pytest.raises(versioncube.VersionError, match="tag 'v1' already exists.*immutable"):
        grown.tag("v1")
    grown.repository.delete_tag("v1")
    with pytest.raises(versioncube.VersionError, match="used before and deleted"):
        grown.tag("v1")


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


# -- time travel ---------------------------------------------------------------------------------


def test_every_version_of_a_20_append_history_reads_back_as_it_was(memory_target, days):
    versioncube.append(days, target_dir=memory_target)
    history = list(reversed(commits(open_cube(memory_target))))
    assert len(history) == 20

    for count, snapshot in enumerate(history, start=1):
        dataset = versioncube.open_dataset(memory_target, version=snapshot.id)
        xr.testing.assert_identical(dataset.load(), _expected(days, count))


def test_time_travel_by_tag_branch_ancestor_and_date(grown, days):
    grown.tag("three", at="~2")
    target = grown.target.uri
    moment = commits(grown)[1].written_at

    xr.testing.assert_identical(
        versioncube.open_dataset(target, "three").load(), _expected(days, 3)
    )
    xr.testing.assert_identical(versioncube.open_dataset(target, "~4").load(), _expected(days, 1))
    xr.testing.assert_identical(versioncube.open_dataset(target, "main").load(), _expected(days, 5))
    as_of = versioncube.open_dataset(target, moment.isoformat())
    xr.testing.assert_identical(as_of.load(), _expected(days, 4))


# -- diff and show -------------------------------------------------------------------------------


def test_diff_reports_added_removed_and_rewritten_labels(grown, days, small_slice):
    before_rollback = tip(grown)
    grown.rollback("~2")
    changed = small_slice(DAYS[3]).assign(tas=lambda d: d.tas + 1)
    grown.append(changed)

    changes = grown.diff(before_rollback)

    assert (
        changes.labels_removed is not None and str(changes.labels_removed) == "2024-03-05 (1 step)"
    )
    assert [str(span) for span in changes.labels_rewritten] == ["2024-03-04 (1 step)"]
    assert changes.labels_added is None
    forward = grown.diff("~3")
    assert str(forward.labels_added) == "2024-03-02 .. 2024-03-04 (3 steps)"
    assert not forward.labels_rewritten
    assert grown.diff("main").is_empty


def test_diff_reports_variable_and_attribute_changes(grown):
    """Changes made by any Icechunk user show up too."""
    session = grown.repository.writable_session("main")
    mask = xr.Dataset({"mask": (("lat", "lon"), grown.to_xarray().tas[0].values > 280)})
    mask.attrs = grown.to_xarray().attrs
    mask.to_zarr(session.store, mode="a", consolidated=False)
    group = zarr.open_group(session.store)
    group.attrs["title"] = "renamed cube"
    group["tas"].attrs["units"] = "degC"
    session.commit("edited by hand")

    changes = grown.diff("~1")

    assert changes.variables_added == ["mask"]
    assert changes.variables_changed == {"tas": ["attribute units: 'K' -> 'degC'"]}
    assert changes.attrs_changed == {"title": ("versioncube sample fields", "renamed cube")}
    assert "+ variable mask" in changes.describe()
    assert changes.to_json()["attrs_changed"] == {
        "title": ["versioncube sample fields", "renamed cube"]
    }


def test_info_summarises_a_version(grown):
    grown.tag("v1", at="~1")
    info = grown.info("v1")

    assert info.snapshot_id == commits(grown)[1].id
    assert info.refs == ["tag:v1"]
    assert info.dims == {"time": 4, "lat": 6, "lon": 12}
    assert info.variables["tas"] == "(time, lat, lon) float32"
    assert str(info.first_label)[:10] == "2024-03-01" and str(info.last_label)[:10] == "2024-03-04"
    assert info.uncompressed_bytes == grown.to_xarray("v1").nbytes
    # tas and pr per day; lat, lon, time; a ledger bucket per slice (none shares one here)
    assert info.chunk_refs == 4 * 2 + 3 + 4 and info.manifests >= 1
    assert info.chunk_bytes is None and info.disk_bytes is None  # measured when asked for
    assert "time       2024-03-01 .. 2024-03-04" in info.describe()
    measured = grown.info("v1", storage=True)
    assert measured.chunk_bytes > 0 and measured.disk_bytes is None  # in memory: no folder
    assert "of chunks, all versions" in measured.describe()


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


# -- retention -----------------------------------------------------------------------------------


def test_gc_keeps_tags_and_frees_rolled_back_commits(tmp_path, small_slice):
    days = [small_slice(day, shape=(45, 90)) for day in DAYS[:6]]  # chunks too big to inline
    target = str(tmp_path / "cube")
    cube = open_cube(target)
    for item in days[:6]:
        cube.append(item)
    cube.tag("release", at="~3")  # three days
    discarded_tip = tip(cube)
    cube.rollback("~2")  # discard days 5 and 6
    size_before = folder_size(tmp_path / "cube")
    assert cube.to_xarray(discarded_tip).sizes["time"] == 6  # readable until gc

    dry = cube.gc("0s", force=True, dry_run=True)
    assert dry.dry_run and dry.chunks_deleted > 0
    assert folder_size(tmp_path / "cube") == size_before

    result = cube.gc("0s", force=True)

    assert result.chunks_deleted >= 4  # tas and pr of the two discarded days
    assert result.bytes_deleted > 0
    assert folder_size(tmp_path / "cube") < size_before
    xr.testing.assert_identical(cube.to_xarray("release").load(), _expected(days, 3))
    xr.testing.assert_identical(cube.to_xarray().load(), _expected(days, 4))
    with pytest.raises(versioncube.RefNotFoundError):
        cube.to_xarray(discarded_tip)
    assert [entry.kind for entry in cube.reflog()][:2] == ["gc ran", "expiration ran"]


def test_gc_below_the_safe_minimum_needs_force(grown):
    with pytest.raises(versioncube.VersionError, match="shorter than the safe minimum 1d"):
        grown.gc("2h")
    with pytest.raises(versioncube.ConfigError, match="duration 'soon' is not understood"):
        grown.gc("soon")


def test_reflog_traces_rollbacks(grown):
    grown.rollback("~1")
    entries = grown.reflog()
    assert entries[0].kind == "branch reset"
    assert "previous_snap_id=" in entries[0].details
    records = [CommitRecord.of_snapshot(s) for s in commits(grown)]
    assert len(records) == 4
