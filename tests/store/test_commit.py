"""Concurrent writers and crashes, without lock files: exactly-once appends on local disk and
on real object-store servers (SeaweedFS for S3, Azurite for Azure), and racing commits that
prove each server's conditional writes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.samples import write_daily_files
from versioncube.store.commit import RetryPolicy
from versioncube.testing import appended_in_order, commits, tip
from versioncube.testing.clouds import CLOUDS
from versioncube.testing.racing import race
from versioncube.versions.record import CommitRecord


@pytest.fixture(params=["local", *CLOUDS])
def target(request, tmp_path):
    """A fresh target on local disk or on each object store's server, with its options."""
    if request.param == "local":
        return str(tmp_path / "cube"), {}
    return request.getfixturevalue(f"{request.param}_target")


def _settings(target):
    uri, options = target
    return {"target_dir": uri, "target_storage_options": options}


def _cube(target):
    uri, options = target
    return open_cube(uri, storage_options=options)


# -- another writer slips a commit in while a slice is being written ----------------------------


def _slipping(item, other_writer_appends):
    """``item`` whose data, when the append computes it, first lets another writer commit."""
    fired = []

    def load(block):
        if not fired:
            fired.append(True)
            other_writer_appends()
        return block

    values = da.from_array(item.tas.values, chunks=-1).map_blocks(
        load, dtype=item.tas.dtype, meta=np.array((), dtype=item.tas.dtype)
    )
    return item.assign(tas=(item.tas.dims, values, item.tas.attrs))


@pytest.fixture
def two_days(memory_target, small_slice):
    versioncube.append(
        [small_slice("2024-01-01"), small_slice("2024-01-02")], target_dir=memory_target
    )
    return memory_target


def test_the_same_slice_appended_by_another_writer_is_skipped_on_retry(two_days, small_slice):
    other = open_cube(two_days)
    item = _slipping(small_slice("2024-01-03"), lambda: other.append(item))

    result = open_cube(two_days).append(item)

    assert result.status == "skipped"
    assert result.snapshot_id == tip(other)
    records = [CommitRecord.of_snapshot(s) for s in commits(other)]
    assert [r.labels[0] for r in records] == ["2024-01-03", "2024-01-02", "2024-01-01"]


def test_a_later_slice_committed_meanwhile_is_revalidated(two_days, small_slice):
    other = open_cube(two_days)
    item = _slipping(small_slice("2024-01-03"), lambda: other.append(small_slice("2024-01-04")))

    with pytest.raises(versioncube.SliceValidationError, match="not after the cube's last label"):
        open_cube(two_days).append(item)
    assert open_cube(two_days).to_xarray().sizes["time"] == 3  # the other writer's append stays


def test_an_earlier_slice_committed_meanwhile_is_followed_after_retry(two_days, small_slice):
    other = open_cube(two_days)
    item = _slipping(small_slice("2024-01-04"), lambda: other.append(small_slice("2024-01-03")))

    result = open_cube(two_days).append(item)

    assert result.status == "appended"
    assert result.record.index_range == (3, 4)
    expected = xr.concat([small_slice(f"2024-01-0{d}") for d in range(1, 5)], "time")
    xr.testing.assert_identical(open_cube(two_days).to_xarray().load(), expected)


def test_on_conflict_fail(two_days, small_slice):
    other = open_cube(two_days)
    item = _slipping(small_slice("2024-01-04"), lambda: other.append(small_slice("2024-01-03")))
    cube = open_cube(two_days)
    fail = versioncube.CommitOptions(retry=RetryPolicy(on_conflict="fail"))

    with pytest.raises(versioncube.ConcurrentUpdateError, match="moved while committing"):
        cube.append(item, options=fail)
    assert tip(cube) == tip(other)


def test_backoff_is_jittered_exponential_and_capped():
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    delays = [policy.delay(attempt) for attempt in range(1, 8) for _ in range(20)]
    assert min(delays[:20]) >= 0.1 and max(delays[:20]) <= 0.3
    assert max(delays) <= 1.5
    assert len(set(delays)) > 100  # jittered: writers do not retry in lockstep


# -- real writer processes ----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, sys, time
    import versioncube
    settings, start_at, paths = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    time.sleep(max(0.0, start_at - time.time()))
    count = versioncube.append(paths, settings)
    print(count)
    """
)


@pytest.mark.slow  # four writer processes
def test_four_writers_append_the_same_list_exactly_once(target, tmp_path):
    paths = [
        str(p) for p in write_daily_files(tmp_path / "slices", "2024-01-01", 20, shape=(9, 18))
    ]
    start_at = time.time() + 3  # all four start appending at the same moment
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, json.dumps(_settings(target)), str(start_at), *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [writer.communicate(timeout=300) for writer in writers]

    assert [writer.returncode for writer in writers] == [0] * 4, [err for _, err in outputs]
    assert sum(int(out) for out, _ in outputs) == 20  # each slice appended by exactly one writer
    cube = _cube(target)
    records = [CommitRecord.of_snapshot(s) for s in reversed(commits(cube))]
    assert len(records) == 20
    assert appended_in_order(cube) == paths
    assert [r.index_range for r in records] == [(n, n + 1) for n in range(20)]
    xr.testing.assert_identical(cube.to_xarray().load(), xr.open_mfdataset(paths).load())
    assert cube.verify().ok


#: Runs of ``versioncube append`` of 30 files, each killed at a random moment 0.4-2 s in (some
#: during start-up, some mid-slice; a run that finishes first is counted, not killed).
KILLED_RUNS = 12


@pytest.mark.slow  # 12 runs killed by SIGKILL
@pytest.mark.parametrize("target", ["local", "s3"], indirect=True)  # 12 runs: not every cloud
def test_sigkill_at_random_moments_never_shows_a_partial_slice(target, tmp_path):
    paths = [
        str(p) for p in write_daily_files(tmp_path / "slices", "2024-01-01", 30, shape=(9, 18))
    ]
    expected = xr.open_mfdataset(paths).load()
    config = tmp_path / "target.json"
    config.write_text(json.dumps(_settings(target)))
    command = [sys.executable, "-m", "versioncube", "append", "-c", str(config), *paths]
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    completed_runs = 0
    for run in range(KILLED_RUNS):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 2.0))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        else:
            completed_runs += 1
        process.wait()
        cube = _cube(target)
        if not cube.exists() or cube.log() == []:
            continue
        head = cube.to_xarray().load()
        count = head.sizes["time"]
        message = f"run {run} (seed {seed}) left {count} steps"
        assert len(commits(cube)) == count, message
        xr.testing.assert_identical(head, expected.isel(time=slice(0, count)))

    final = subprocess.run(command, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    cube = _cube(target)
    xr.testing.assert_identical(cube.to_xarray().load(), expected)
    assert len(commits(cube)) == 30
    report = cube.verify()
    assert report.ok, report.describe()
    assert completed_runs < KILLED_RUNS  # the kills did interrupt runs


# -- racing commits: the server's conditional writes, not the client, keep every commit ---------

RACE = {"writers": 3, "commits": 6}  # commits by each writer


@pytest.mark.slow
@pytest.mark.parametrize("cloud", CLOUDS)
def test_racing_commits_are_never_lost(cloud, request):
    uri, options = request.getfixturevalue(f"{cloud}_target")

    count = race(uri, options, **RACE)

    print(f"race on {cloud}: {count}")
    assert count.conflicts_retried > 0, count  # the writers did race
    assert count.reported == count.on_branch == count.groups_at_tip == count.attempted, count
    assert count.lost == 0, count


@pytest.mark.slow
def test_the_race_loses_commits_without_conditional_writes(azure_target):
    """The same race with Icechunk's conditional writes switched off loses commits: the race
    above tells a server that enforces them from one that does not."""
    count = race(*azure_target, **RACE, unconditional=True)

    print(f"race on azure without conditional writes: {count}")
    assert count.reported == count.attempted
    assert count.lost > 0, count
    assert count.on_branch == count.groups_at_tip == count.reported - count.lost
