"""Refs: every form a version is named by, and reading each version back (time travel)."""

from __future__ import annotations

import datetime as dt

import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.testing import commits


def _expected(days, count):
    return xr.concat(days[:count], "time")


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
