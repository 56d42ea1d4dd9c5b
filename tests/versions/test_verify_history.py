"""verify checks what the version's history really implies: no false alarm after gc expired
old commits or after force_new started the cube afresh, and real damage is still found."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import icechunk
import pytest

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice
from versioncube.testing.cli_checks import run_cli
from versioncube.versions.record import CommitRecord

SHAPE = (4, 8)


def _day(day: int, month: int = 1):
    return sample_slice(f"2024-{month:02d}-{day:02d}", shape=SHAPE)


def _verified(target: Path) -> versioncube.Cube:
    """Assert that verify passes from Python and from the CLI; return the cube."""
    cube = open_cube(target)
    report = cube.verify()
    assert report.ok, report.describe()
    result = run_cli("verify", "-t", target)
    assert result.exit_code == 0, result.output
    assert "ok: no damage found" in result.stdout
    return cube


def test_verify_passes_after_gc_expired_the_oldest_commits(tmp_path):
    target = tmp_path / "cube"
    versioncube.append([_day(d) for d in range(1, 7)], target_dir=str(target))
    time.sleep(1.5)
    versioncube.append([_day(7)], target_dir=str(target))
    gc = open_cube(target).gc("1s", force=True)
    assert gc.expired_snapshots == 6

    cube = _verified(target)
    assert cube.to_xarray().sizes["time"] == 7


def test_verify_passes_after_force_new(tmp_path):
    target = tmp_path / "cube"
    versioncube.append([_day(d) for d in range(1, 6)], target_dir=str(target))
    versioncube.append([_day(1, 6), _day(2, 6)], target_dir=str(target), force_new=True)

    cube = _verified(target)
    report = cube.verify()
    assert report.commits_checked == 2  # the replaced cube's commits are not this cube's
    assert cube.to_xarray().sizes["time"] == 2


@pytest.fixture
def grown(tmp_path: Path) -> Path:
    """Four days of fields big enough to be stored as chunk files (small ones are inlined)."""
    target = tmp_path / "cube"
    days = [sample_slice(f"2024-01-0{day}", shape=(40, 80)) for day in range(1, 5)]
    versioncube.append(days, target_dir=str(target))
    return target


def test_verify_finds_a_missing_chunk(grown):
    chunks = sorted((grown / "chunks").iterdir())
    chunks[len(chunks) // 2].unlink()

    report = open_cube(grown).verify()
    assert not report.ok
    assert any("unreadable" in problem for problem in report.problems)
    result = run_cli("verify", "-t", grown)
    assert result.exit_code == 1 and "DAMAGE" in result.stdout


def test_verify_finds_a_record_that_disagrees_with_the_data(grown):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(grown)))
    tip = repo.lookup_snapshot(repo.lookup_branch("main"))
    record = CommitRecord.of_snapshot(tip, "time")
    assert record is not None
    session = repo.writable_session("main")  # nothing written: an empty commit
    wrong = dataclasses.replace(record, labels=("2023-12-31", "2023-12-31"))
    session.commit(f"a wrong record\n\n{wrong.trailer()}", allow_empty=True)

    report = open_cube(grown).verify()
    assert any("recorded labels ['2023-12-31'" in problem for problem in report.problems)
