"""E. Reads: opening the first version of a 1000-commit cube against its head; CLI start-up.

Each open is what a new reader does: open the repository, a read-only session on the snapshot,
``xr.open_zarr`` on its store, and compute one small thing (the mean of the last field). The
cube is built from tiny slices, one commit each. ``versioncube --help`` runs as a subprocess.
Every time is the best of several.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import icechunk
import xarray as xr

import versioncube
from benchmarks.common import Context, best_time
from benchmarks.report import Comparison, Goal, Ref, Result, Section
from benchmarks.workloads import make_slices
from versioncube.versions.record import CommitRecord

KEY = "E"
FIRST = "open the first version"
HEAD = "open the head"
HELP = "versioncube --help"


def open_and_compute(path: Path, snapshot_id: str) -> float:
    """Open the cube at ``snapshot_id`` as a new reader would; the mean of its last field."""
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    session = repo.readonly_session(snapshot_id=snapshot_id)
    dataset = xr.open_zarr(session.store, consolidated=False)
    return float(dataset["tas"].isel(time=-1).mean().compute())


def help_command() -> list[str]:
    """``versioncube --help`` through the installed entry point, as users start it."""
    script = Path(sys.executable).with_name("versioncube")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "versioncube", "--help"]


def run(context: Context) -> Section:
    sizes = context.sizes
    target = context.target("reads", "cube")
    cube = versioncube.open_cube(os.fspath(target))
    for dataset in make_slices(sizes.reads_commits, sizes.growth_shape):
        cube.append(dataset)
    commits = [
        snapshot.id
        for snapshot in cube.repository.ancestry(branch=cube.branch)
        if CommitRecord.of_snapshot(snapshot) is not None
    ]
    head, first = commits[0], commits[-1]
    repeats = sizes.repeats
    seconds = {
        FIRST: best_time(lambda: open_and_compute(target, first), repeats),
        HEAD: best_time(lambda: open_and_compute(target, head), repeats),
        HELP: best_time(
            lambda: subprocess.run(help_command(), check=True, capture_output=True), repeats
        ),
    }
    results = [
        Result(case, {"seconds": value}, f"{1000 * value:.0f} ms (best of {repeats})")
        for case, value in seconds.items()
    ]
    comparisons = [
        Comparison(
            "first version / head, open and compute",
            Ref(KEY, FIRST, "seconds"),
            Ref(KEY, HEAD, "seconds"),
            Goal("<=", 1.5),
        ),
        Comparison(f"{HELP} start-up", Ref(KEY, HELP, "seconds"), None, Goal("<=", 0.3), " s"),
    ]
    description = (
        f"A local cube of {len(commits)} commits of 1 x {sizes.growth_shape[0]} x "
        f"{sizes.growth_shape[1]} slices. Opening = a new `Repository`, a read-only session on "
        "the snapshot, `xr.open_zarr(session.store, consolidated=False)` and the mean of the "
        "last `tas` field; best of "
        f"{repeats}. `{HELP}`: the installed entry point in a subprocess, best of {repeats}."
    )
    return Section(KEY, "Reads", description, results, comparisons)
