"""The slice ledger: exactly-once appends without reading the history.

Resume follows rollbacks, branches, tags and gc; an append reads no history whatever its length
(counted with a spy on ``Repository.ancestry``, not timed); cubes written with commit record
schema 2 (no ledger) resume and are migrated once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from icechunk.xarray import to_icechunk

import versioncube
from versioncube import open_cube
from versioncube.config import Config
from versioncube.config.outline import TargetOutline
from versioncube.display.json import label_to_json
from versioncube.slices.identity import content_stamp, dataset_fingerprint
from versioncube.store.repository import repository_config
from versioncube.store.target import parse_target
from versioncube.testing import appended_in_order, commits, tip
from versioncube.versions.ledger import LEDGER_GROUP, Ledger, LedgerEntry
from versioncube.versions.record import CommitRecord
from versioncube.write.append import outline_settings, with_creation_encoding

DAYS = pd.date_range("2024-03-01", periods=12)


@pytest.fixture
def days(small_slice):
    return [small_slice(day) for day in DAYS]


@dataclasses.dataclass
class AncestrySpy:
    """Counts the walks over the history and the commits they read."""

    walks: int = 0
    commits_read: int = 0


@pytest.fixture
def ancestry_spy(monkeypatch) -> AncestrySpy:
    spy = AncestrySpy()
    original = icechunk.Repository.ancestry

    def ancestry(self: icechunk.Repository, *args: Any, **kwargs: Any) -> Iterator[Any]:
        spy.walks += 1
        for snapshot in original(self, *args, **kwargs):
            spy.commits_read += 1
            yield snapshot

    monkeypatch.setattr(icechunk.Repository, "ancestry", ancestry)
    return spy


def _reset(spy: AncestrySpy) -> None:
    spy.walks = spy.commits_read = 0


# -- exactly once across the history -------------------------------------------------------


def test_resume_after_a_rollback_appends_what_the_rollback_discarded(memory_target, days):
    cube = open_cube(memory_target)
    cube.append_all(days[:6])
    cube.rollback("~3")  # the cube holds days 1-3 again

    summary = cube.append_all(days[:6])

    assert [r.status for r in summary.results] == ["skipped"] * 3 + ["appended"] * 3
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days[:6], "time"))
    assert len(appended_in_order(cube)) == 6


def test_resume_on_another_branch_sees_that_branch_only(memory_target, days):
    main = open_cube(memory_target)
    main.append_all(days[:5])
    main.create_branch("staging", at="~3")  # days 1-2
    staging = open_cube(memory_target, branch="staging")

    summary = staging.append_all(days[:4])

    assert [r.status for r in summary.results] == ["skipped"] * 2 + ["appended"] * 2
    xr.testing.assert_identical(staging.to_xarray().load(), xr.concat(days[:4], "time"))
    assert main.append_all(days[:5]).skipped == 5  # main still holds its five


def test_resume_on_a_branch_created_at_a_tag(memory_target, days):
    cube = open_cube(memory_target)
    cube.append_all(days[:3])
    cube.tag("v1")
    cube.append_all(days[3:5])
    cube.create_branch("fix", at="v1")
    fix = open_cube(memory_target, branch="fix")

    summary = fix.append_all(days[:6])

    assert [r.status for r in summary.results] == ["skipped"] * 3 + ["appended"] * 3
    assert [r.snapshot_id for r in summary.results[:3]] == [s.id for s in commits(cube)[4:1:-1]]
    xr.testing.assert_identical(fix.to_xarray().load(), xr.concat(days[:6], "time"))


def test_a_skipped_slice_names_the_commit_that_appended_it(memory_target, days, ancestry_spy):
    cube = open_cube(memory_target)
    results = [cube.append(item) for item in days[:4]]
    _reset(ancestry_spy)

    again = open_cube(memory_target).append_all(days[:4])

    assert [r.snapshot_id for r in again.results] == [r.snapshot_id for r in results]
    assert ancestry_spy.walks == 1  # one walk serves the whole run


def test_after_gc_rerunning_the_file_list_skips_every_file(daily_files, tmp_path):
    target = str(tmp_path / "cube")
    versioncube.append(daily_files[:6], target_dir=target)
    cube = open_cube(target)
    assert cube.gc("0s", force=True).expired_snapshots == 5  # all but the tip

    again = cube.append_all(daily_files[:6])

    assert again.skipped == 6 and again.appended == 0
    # the commits that appended them are gone: each is reported by the version it is found in
    assert {r.snapshot_id for r in again.results} == {tip(cube)}
    assert versioncube.append(daily_files, target_dir=target) == 4
    expected = xr.open_mfdataset(daily_files).load()
    xr.testing.assert_identical(open_cube(target).to_xarray().load(), expected)
    assert open_cube(target).verify().ok


def test_expire_with_icechunk_directly_keeps_resume_exact(memory_target, days):
    cube = open_cube(memory_target)
    cube.append_all(days[:4])
    cutoff = dt.datetime.now(dt.UTC)
    cube.append(days[4])
    cube.repository.expire_snapshots(cutoff)

    summary = open_cube(memory_target).append_all(days[:6])

    assert [r.status for r in summary.results] == ["skipped"] * 5 + ["appended"]


def test_time_travel_reads_each_version_with_its_own_ledger(memory_target, days):
    cube = open_cube(memory_target)
    cube.append_all(days[:5])
    ids = [s.id for s in reversed(commits(cube))]

    for count, snapshot_id in enumerate(ids, start=1):
        store = cube.repository.readonly_session(snapshot_id=snapshot_id).store
        ledger = Ledger.read(store)
        assert ledger is not None and ledger.count == ledger.rows == count
        held = {entry.identity for entry in ledger.entries()}
        assert held == {dataset_fingerprint(item) for item in days[:count]}


# -- cost: no history is read --------------------------------------------------------------


@pytest.mark.parametrize("commits_before", [3, 40])
def test_an_append_reads_no_history(memory_target, small_slice, ancestry_spy, commits_before):
    slices = [small_slice(day, shape=(2, 3)) for day in pd.date_range("2000-01-01", periods=45)]
    versioncube.append(slices[:commits_before], target_dir=memory_target)
    _reset(ancestry_spy)

    assert versioncube.append(slices[commits_before], target_dir=memory_target) == 1  # one call
    assert versioncube.append(slices[commits_before], target_dir=memory_target) == 0  # skipped

    # skipping names the commit that appended the slice: the newest, one commit read
    assert (ancestry_spy.walks, ancestry_spy.commits_read) == (1, 1)


def test_a_cube_of_40_commits_costs_an_append_the_reads_of_a_cube_of_3(
    memory_target, small_slice, monkeypatch
):
    """The zarr-level reads of a one-call append (the ledger's and the outline's) do not
    depend on the length of the history."""
    reads: list[str] = []
    original = icechunk.IcechunkStore.get

    async def get(self: icechunk.IcechunkStore, key: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(icechunk.IcechunkStore, "get", get)
    slices = [small_slice(day, shape=(2, 3)) for day in pd.date_range("2000-01-01", periods=50)]
    counts = []
    for name, count in (("short", 3), ("long", 40)):
        target = f"{memory_target}-{name}"
        versioncube.append(slices[:count], target_dir=target)
        reads.clear()
        versioncube.append(slices[count], target_dir=target)
        counts.append(sorted(re.sub(r"/c/[0-9/]+$", "/c/...", key) for key in reads))
    assert counts[0] == counts[1]


# -- the ledger in the snapshot --------------------------------------------------------------


def test_plain_readers_see_exactly_the_cube(memory_target, days):
    cube = open_cube(memory_target)
    cube.append_all(days[:3])
    store = cube.repository.readonly_session("main").store

    plain = xr.open_zarr(store, consolidated=False)

    assert set(plain.variables) == set(days[0].variables)
    assert LEDGER_GROUP in dict(zarr.open_group(store, mode="r").groups())


def test_an_entry_removed_by_a_later_commit_lets_the_slice_be_appended_again(memory_target, days):
    """What a later delete of a slice's rows does: cut the rows and remove its entry."""
    cube = open_cube(memory_target)
    cube.append_all(days[:3])
    session = cube.repository.writable_session("main")
    group = zarr.open_group(session.store, mode="r+")
    for _, array in group.arrays():
        if array.metadata.dimension_names and array.metadata.dimension_names[0] == "time":
            array.resize((2, *array.shape[1:]))
    ledger = Ledger.read(session.store)
    assert ledger is not None
    removed = ledger.remove(dataset_fingerprint(days[2]))
    assert removed is not None and removed.rows == (2, 3)
    ledger.write(session.store, rows=2)
    record = 'versioncube: {"v":3,"o":"delete","n":"2024-03-03","r":[2,3],"l":["2024-03-03"]}'
    session.commit(f"delete 2024-03-03\n\n{record}")

    assert cube.append(days[2]).status == "appended"
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days[:3], "time"))
    assert cube.verify().ok


def test_entries_keep_rows_labels_base_and_a_stamp():
    entry = LedgerEntry("/data/a.nc", (3, 5), ("2024-03-04", "2024-03-05"), "ABCD", "1024:17")
    stored = entry.to_stored()
    assert stored == {"r": [3, 5], "l": ["2024-03-04", "2024-03-05"], "p": "ABCD", "s": "1024:17"}
    assert LedgerEntry.from_stored("/data/a.nc", json.loads(json.dumps(stored))) == entry
    bare = LedgerEntry("/data/b.nc", (0, 1), None, None)
    assert bare.to_stored() == {"r": [0, 1]}


def test_verify_checks_the_ledger_against_the_data(memory_target, days):
    cube = open_cube(memory_target)
    cube.append_all(days[:3])
    session = cube.repository.writable_session("main")
    ledger = Ledger.read(session.store)
    assert ledger is not None
    identity = dataset_fingerprint(days[1])
    ledger.add(LedgerEntry(identity, (1, 2), ("2024-03-09", "2024-03-09"), None))
    ledger.write(session.store, rows=3)
    session.commit("a damaged ledger")

    report = cube.verify()

    assert [problem for problem in report.problems if "ledger" in problem] == [
        f"the slice ledger's entry of {identity} has labels ['2024-03-09', '2024-03-09'], the "
        "data has ['2024-03-02', '2024-03-02']"
    ]


def test_force_new_starts_an_empty_ledger(memory_target, days):
    versioncube.append(days[:3], target_dir=memory_target)
    versioncube.append(days[5:7], target_dir=memory_target, force_new=True)

    cube = open_cube(memory_target)
    assert set(cube.appended_slices()) == {dataset_fingerprint(item) for item in days[5:7]}
    assert cube.verify().ok


# -- cubes written before the ledger (commit record schema 2) ---------------------------------


def _schema_2_record(
    operation: str,
    identity: str,
    name: str,
    rows: tuple[int, int],
    item: Any,
    stamp: str | None = None,
) -> dict[str, Any]:
    labels = item["time"].values
    optional = {"stamp": stamp} if stamp is not None else {}
    return {
        "schema": 2,
        "operation": operation,
        "slice": identity,
        "slice_name": name,
        "append_dim": "time",
        "index_range": list(rows),
        "labels": [label_to_json(labels[0]), label_to_json(labels[-1])],
        **optional,
        "tool_version": "0.1.0",
    }


def _commit_as_schema_2(
    repo: icechunk.Repository,
    item: xr.Dataset,
    identity: str,
    name: str,
    stamp: str | None = None,
) -> None:
    """Append ``item`` as the previous versioncube did: no ledger, the identity (and the content
    stamp of a file) in the record."""
    session = repo.writable_session("main")
    existing = [c for c in repo.ancestry(branch="main") if c.parent_id is not None]
    start = sum(1 for _ in existing)  # one time step per commit in these tests
    outline = dataclasses.replace(TargetOutline.from_config(Config()), append_dim="time")
    if start == 0:
        to_icechunk(with_creation_encoding(item, outline), session, mode="w-")
        operation = "create"
    else:
        to_icechunk(item, session, append_dim="time")
        operation = "append"
    record = _schema_2_record(operation, identity, name, (start, start + 1), item, stamp)
    text = json.dumps(record, separators=(",", ":"))
    session.commit(f"{operation} {name}: time", metadata={"versioncube": text})


def _schema_2_cube(
    target: str, items: list[tuple[xr.Dataset, str, str]], stamps: Sequence[str | None] = ()
) -> None:
    storage = parse_target(target).storage()
    repo = icechunk.Repository.create(storage, config=repository_config("time"))
    outline = dataclasses.replace(TargetOutline.from_config(Config()), append_dim="time")
    repo.set_metadata({"versioncube": outline_settings(outline)})
    for index, (item, identity, name) in enumerate(items):
        stamp = stamps[index] if index < len(stamps) else None
        _commit_as_schema_2(repo, item, identity, name, stamp)


def _legacy_identity(item: xr.Dataset) -> str:
    """sha256 identities exactly as commit record schema 2 computed them (frozen here)."""
    import hashlib

    def json_bytes(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, default=str).encode()

    digest = hashlib.sha256()
    digest.update(json_bytes(item.attrs))
    for name in sorted(map(str, item.variables)):
        variable = item.variables[name]
        header = {
            "name": name,
            "dims": list(map(str, variable.dims)),
            "dtype": variable.dtype.str,
            "shape": list(variable.shape),
            "attrs": variable.attrs,
        }
        digest.update(json_bytes(header))
        values = np.ascontiguousarray(np.asarray(variable.data)).view(np.uint8).ravel()
        digest.update(hashlib.sha256(values).digest())
    return "sha256:" + digest.hexdigest()


def test_a_schema_2_cube_resumes_and_is_migrated_once(memory_target, days, ancestry_spy):
    old = days[:4]
    _schema_2_cube(
        memory_target,
        [(item, _legacy_identity(item), f"dataset {_legacy_identity(item)[:19]}") for item in old],
    )
    assert _legacy_identity(days[0]) == dataset_fingerprint(days[0], "sha256")
    _reset(ancestry_spy)

    summary = open_cube(memory_target).append_all(days[:6])

    assert [r.status for r in summary.results] == ["skipped"] * 4 + ["appended"] * 2
    cube = open_cube(memory_target)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days[:6], "time"))
    migrated = Ledger.read(cube.repository.readonly_session("main").store)
    assert migrated is not None and migrated.count == 6 and migrated.legacy_hashes == ("sha256",)
    assert {entry.identity for entry in migrated.entries()} == {
        *(_legacy_identity(item) for item in old),
        *(dataset_fingerprint(item) for item in days[4:6]),
    }
    records = [CommitRecord.of_snapshot(s, "time") for s in commits(cube)]
    assert [r.schema for r in records] == [3, 3, 2, 2, 2, 2]
    assert cube.verify().ok

    _reset(ancestry_spy)
    assert versioncube.append(days[6], target_dir=memory_target) == 1
    assert ancestry_spy.walks == 0  # migrated: the history is not read again
    assert versioncube.append(days[:7], target_dir=memory_target) == 0


def test_a_schema_2_cube_of_files_resumes(daily_files, tmp_path):
    target = str(tmp_path / "cube")
    items = [(xr.open_dataset(path).load(), str(path), path.name) for path in daily_files[:3]]
    _schema_2_cube(target, items)

    assert versioncube.append(daily_files, target_dir=target) == 7
    cube = open_cube(target)
    assert appended_in_order(cube) == [str(path) for path in daily_files]
    xr.testing.assert_identical(cube.to_xarray().load(), xr.open_mfdataset(daily_files).load())


def test_a_schema_2_cube_keeps_its_content_stamps_in_the_migrated_ledger(daily_files, tmp_path):
    """A file changed at a known path is refused after the migration too, naming the commit
    that holds its old content."""
    target = str(tmp_path / "cube")
    items = [(xr.open_dataset(path).load(), str(path), path.name) for path in daily_files[:3]]
    stamps = [content_stamp(str(path)) for path in daily_files[:3]]
    _schema_2_cube(target, items, stamps)
    cube = open_cube(target)
    holding = commits(cube)[1].id  # the commit that appended daily_files[1]

    assert versioncube.append(daily_files[:4], target_dir=target) == 1  # migrates the ledger
    migrated = Ledger.read(cube.repository.readonly_session("main").store)
    assert migrated is not None
    entries = [migrated.get(str(path)) for path in daily_files[:3]]
    assert [entry.stamp if entry else None for entry in entries] == stamps

    changed = xr.open_dataset(daily_files[1]).load()
    changed["tas"] += 1.0
    changed.to_netcdf(tmp_path / "changed.nc")
    (tmp_path / "changed.nc").replace(daily_files[1])  # re-issued at the same path
    before = tip(cube)
    with pytest.raises(versioncube.SliceChangedError) as raised:
        versioncube.append(daily_files[:5], target_dir=target)
    assert raised.value.snapshot_id == holding
    assert tip(cube) == before


def test_a_materialize_on_a_schema_2_cube_keeps_its_slices(memory_target, days):
    """materialize writes no ledger (it adds no slice): the history before it is still read
    to build the ledger of a cube that had none."""
    old = days[:3]
    _schema_2_cube(memory_target, [(item, _legacy_identity(item), "old") for item in old])
    repo = open_cube(memory_target).repository
    materialized = CommitRecord("materialize", None, "", "time", (0, 3), None)
    session = repo.writable_session("main")
    session.commit(f"materialize: time [0:3]\n\n{materialized.trailer()}", allow_empty=True)

    summary = open_cube(memory_target).append_all(days[:4])

    assert [r.status for r in summary.results] == ["skipped"] * 3 + ["appended"]
    assert open_cube(memory_target).verify().ok


def test_commits_an_older_versioncube_added_on_top_of_a_ledger_are_caught_up(memory_target, days):
    versioncube.append(days[:3], target_dir=memory_target)
    repo = open_cube(memory_target).repository
    identity = _legacy_identity(days[3])
    _commit_as_schema_2(repo, days[3], identity, "day 4")  # no ledger update

    summary = open_cube(memory_target).append_all(days[:5])

    assert [r.status for r in summary.results] == ["skipped"] * 4 + ["appended"]
    cube = open_cube(memory_target)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(days[:5], "time"))
    ledger = Ledger.read(cube.repository.readonly_session("main").store)
    assert ledger is not None and ledger.count == ledger.rows == 5
    assert cube.verify().ok


# -- reads that do not scan the history ------------------------------------------------------


@pytest.fixture
def thirty(memory_target, small_slice):
    slices = [small_slice(day, shape=(2, 3)) for day in pd.date_range("2000-01-01", periods=30)]
    cube = open_cube(memory_target)
    cube.append_all(slices[:3])
    cube.tag("early")
    cube.append_all(slices[3:])
    return memory_target


def test_log_show_tags_and_reading_a_tag_do_not_walk_the_history(thirty, ancestry_spy, monkeypatch):
    ops_log_reads = []
    original = icechunk.Repository.ops_log
    monkeypatch.setattr(
        icechunk.Repository, "ops_log", lambda self: ops_log_reads.append(1) or original(self)
    )
    _reset(ancestry_spy)

    assert len(open_cube(thirty).log(10)) == 10
    assert ancestry_spy.commits_read <= 11
    _reset(ancestry_spy)
    info = open_cube(thirty).info()
    assert [t.name for t in open_cube(thirty).tags()] == ["early"]
    early = versioncube.open_dataset(thirty, "early")
    assert info.dims["time"] == 30 and early.sizes["time"] == 3
    assert ancestry_spy.commits_read == 0 and ops_log_reads == []


def test_log_pages_by_count_and_dates(thirty, ancestry_spy):
    cube = open_cube(thirty)
    newest_first = [s for s in commits(cube)]
    middle = newest_first[10].written_at
    _reset(ancestry_spy)

    assert [e.snapshot_id for e in cube.log(5, until=middle)] == [s.id for s in newest_first[10:15]]
    assert ancestry_spy.commits_read <= 16  # the walk stops at the page's end
    since = cube.log(since=newest_first[3].written_at)
    assert [e.snapshot_id for e in since] == [s.id for s in newest_first[:4]]
    older = cube.log(3, version=f"{newest_first[2].id}~1")
    assert [e.snapshot_id for e in older] == [s.id for s in newest_first[3:6]]
    day = (newest_first[-1].written_at - dt.timedelta(days=1)).date().isoformat()
    assert len(cube.log(since=day)) == 30 and len(cube.log(until="2000-01-01")) == 0
    with pytest.raises(versioncube.ConfigError, match="not an ISO 8601 date"):
        cube.log(since="yesterday")


def test_cli_log_pages(thirty):
    from click.testing import CliRunner

    from versioncube.cli import cli

    cube = open_cube(thirty)
    newest_first = commits(cube)
    until = newest_first[10].written_at.isoformat()
    result = CliRunner().invoke(cli, ["log", "-t", thirty, "-n", "2", "--until", until, "--json"])
    assert result.exit_code == 0, result.output
    assert [e["snapshot_id"] for e in json.loads(result.stdout)] == [
        s.id for s in newest_first[10:12]
    ]
    page = CliRunner().invoke(cli, ["log", "-t", thirty, "-n", "1", "--at", "main~29"])
    assert page.exit_code == 0 and "create" in page.stdout
    bad = CliRunner().invoke(cli, ["log", "-t", thirty, "--since", "soon"])
    assert bad.exit_code == 1 and "is not an ISO 8601 date" in bad.output
