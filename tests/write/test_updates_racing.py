"""Writes by label and deletes raced with appends and with each other, in real processes, on
local disk and on an S3 server: exactly the committed operations are visible, in the order of
the history, every version opens and its arrays agree in length."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice
from versioncube.versions.record import CommitRecord

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # writer processes

START = "2024-01-01"
SHAPE = (6, 12)
CONFIG = {
    "variables": {name: {"encoding": {"chunks": [2, 6, 12]}} for name in ("tas", "pr")},
    "max_retries": 200,
}

#: What each writer process does: (operation, days) pairs, one commit each. Disjoint labels,
#: with appends:
APART = {
    "appender": [("append", [20]), ("append", [21]), ("append", [22, 23])],
    "upserter": [("upsert", [5, 6])],
    "inserter": [("insert", [10])],
    "deleter": [("delete", [15, 16])],
    "replacer": [("replace", [2])],
    "time_series": [("time_series", [7, 9])],
}
#: The same labels, where the order decides the result.
OVERLAPPING = {
    "appender": [("append", [20]), ("append", [21])],
    "upserter": [("upsert", [5, 6, 7, 8])],
    "time_series": [("time_series", [6, 8])],
    "deleter": [("delete", [7, 8])],
    "replacer": [("replace", [5]), ("replace", [6])],
    "inserter": [("upsert", [9, 10, 11])],
}


def day(number: int) -> np.datetime64:
    return np.datetime64(START) + np.timedelta64(number, "D")


def slice_for(operation: str, days: list[int]) -> xr.Dataset:
    """The slice an operation writes (re-issued values for writes by label)."""
    data = sample_slice([day(n) for n in days], shape=SHAPE)
    if operation != "append":
        data["tas"] = data.tas + 100 + len(operation)
    return data


def replayed(before: xr.Dataset, operation: str, days: list[int]) -> xr.Dataset:
    """What plain xarray makes of one operation."""
    if operation == "delete":
        gone = before.sel(time=slice(day(days[0]), day(days[-1]))).time.values
        return before.drop_sel(time=gone)
    new = slice_for(operation, days)
    kept = before.drop_sel(time=new.time.values, errors="ignore")
    if operation == "time_series":
        kept = kept.drop_sel(time=kept.sel(time=slice(day(days[0]), day(days[-1]))).time.values)
    return xr.concat([kept, new], "time").sortby("time")


WRITER = textwrap.dedent(
    """
    import json, sys, time
    import versioncube
    from tests.write.test_updates_racing import slice_for
    settings, start_at, steps = json.loads(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
    cube = versioncube.open_cube(settings["target_dir"], storage_options=settings["options"],
                                 config=settings["config"])
    time.sleep(max(0.0, start_at - time.time()))
    done = []
    for operation, days in steps:
        if operation == "delete":
            result = cube.delete((settings["days"][str(days[0])], settings["days"][str(days[-1])]))
        elif operation == "append":
            result = cube.append(slice_for(operation, days))
        else:
            result = cube.write(slice_for(operation, days), mode=operation)
        done.append([operation, days, result.snapshot_id])
    print(json.dumps(done))
    """
)


@pytest.fixture(params=["local", "s3"])
def race_target(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "cube"), {}
    return request.getfixturevalue("s3_target")


@pytest.mark.parametrize("writers", [APART, OVERLAPPING], ids=["apart", "overlapping"])
def test_operations_raced_with_appends_and_each_other(race_target, writers):
    uri, options = race_target
    first = sample_slice([day(n) for n in range(20) if n != 10], shape=SHAPE)  # day 10 missing
    versioncube.append(first, target_dir=uri, target_storage_options=options, **CONFIG)
    cube = open_cube(uri, storage_options=options)
    base = cube.store.tip()
    settings = {
        "target_dir": uri,
        "options": options,
        "config": CONFIG,
        "days": {n: str(day(n)) for n in range(40)},
    }
    start_at = time.time() + 4
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-c", WRITER, json.dumps(settings), str(start_at), json.dumps(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,  # the writers import this module as tests.write.test_updates_racing
        )
        for name, steps in writers.items()
    }
    outputs = {name: process.communicate(timeout=300) for name, process in processes.items()}

    failed = {name: err for name, (_, err) in outputs.items() if processes[name].returncode}
    assert not failed, failed
    reported = {
        snapshot: (operation, days)
        for out, _ in outputs.values()
        for operation, days, snapshot in json.loads(out)
    }
    assert len(reported) == sum(len(steps) for steps in writers.values())
    history = list(cube.repository.ancestry(branch="main"))
    new = history[: [s.id for s in history].index(base)][::-1]  # oldest first
    assert {s.id for s in new} == set(reported)  # none lost, none extra

    # replayed with plain xarray in the history's order, every version is what it must be
    state = first
    for snapshot in new:
        operation, days = reported[snapshot.id]
        record = CommitRecord.of_snapshot(snapshot, "time")
        assert record is not None and record.operation == operation
        state = replayed(state, operation, days)
        xr.testing.assert_identical(cube.to_xarray(snapshot.id).load(), state)
    xr.testing.assert_identical(cube.to_xarray().load(), state)
    report = cube.verify()
    assert report.ok, report.problems
    assert pd.Index(state.time.values).is_monotonic_increasing
