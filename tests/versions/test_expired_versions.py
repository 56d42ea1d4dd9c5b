"""Versions that gc removed, and dates before the cube existed, are named as such."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice
from versioncube.testing.cli_checks import assert_one_line_error, run_cli


def _days(first: int, last: int) -> list:
    return [sample_slice(f"2024-01-{day:02d}", shape=(3, 6)) for day in range(first, last + 1)]


@pytest.fixture(scope="module")
def expired(tmp_path_factory) -> tuple[Path, list[str], dt.datetime]:
    """A cube whose first three commits gc expired: (target, their ids, a moment between)."""
    target = tmp_path_factory.mktemp("expired") / "cube"
    for day in _days(1, 3):
        versioncube.append([day], target_dir=str(target))
    old = [entry.snapshot_id for entry in open_cube(target).log()]
    between = open_cube(target).log()[1].written_at
    time.sleep(1.5)
    versioncube.append(_days(4, 4), target_dir=str(target))
    open_cube(target).gc("1s", force=True)
    return target, old, between


@pytest.mark.parametrize("form", ["full id", "short id"])
def test_an_expired_snapshot_id_is_named_as_expired(expired, form):
    target, old, _ = expired
    ref = old[1] if form == "full id" else old[1][:10]
    cube = open_cube(target)
    before = cube.store.tip()

    for call in (lambda: cube.rollback(ref), lambda: cube.info(ref)):
        with pytest.raises(versioncube.RefNotFoundError, match="was removed by gc") as caught:
            call()
        assert "the oldest" in str(caught.value)  # says what remains
    for command in (["rollback", "--to", ref], ["show", "--at", ref]):
        result = run_cli(command[0], "-t", target, *command[1:])
        assert_one_line_error(result, "was removed by gc (expired)", "what remains")
    assert open_cube(target).store.tip() == before


def test_a_date_between_expired_commits_is_named_as_expired(expired):
    target, _, between = expired
    with pytest.raises(versioncube.RefNotFoundError, match="removed by gc"):
        open_cube(target).info(between)
    result = run_cli("show", "-t", target, "--at", between.isoformat())
    assert_one_line_error(result, "removed by gc")


def test_a_date_before_the_first_commit_says_there_was_no_data(tmp_path):
    target = tmp_path / "cube"
    versioncube.append(_days(1, 2), target_dir=str(target))
    created = open_cube(target).log()[-1].written_at
    just_before = created - dt.timedelta(microseconds=1)

    with pytest.raises(versioncube.RefNotFoundError, match="the cube had no data yet"):
        open_cube(target).to_xarray(just_before)
    result = run_cli("show", "-t", target, "--at", just_before.isoformat())
    assert_one_line_error(result, "no data yet", "the first commit")
