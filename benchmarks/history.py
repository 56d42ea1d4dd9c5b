"""H. History: does an append cost the same on the 10,000th commit as on the 100th?

A cube grown for years gets one new slice a day (or an hour) from a scheduled job that starts
a new process each time. A local cube is grown commit by commit to each size in
``Sizes.history_commits`` (100, 1,000 and 10,000 at full size), and an S3 one (SeaweedFS on
127.0.0.1) to each of ``Sizes.history_s3_commits``; at each size:

* one-call appends: ``versioncube.append([slice], target_dir=...)``, a fresh call (a new
  ``Cube``, the repository opened again) per tiny slice (1 x 16 x 16), as such a job runs; the
  median of ``Sizes.history_samples``, with the part of it spent in Icechunk's
  ``session.commit`` and in opening the repository (both Icechunk's, and both grow with the
  history: Icechunk rewrites and rereads the one object that lists every snapshot), and
  versioncube's own part, the rest;
* the same in a fresh process (``versioncube append -t TARGET FILE.nc``), imports included:
  the median of ``Sizes.history_processes`` (local only);
* ``log -n 10``, ``show`` and reading a tag (``open_dataset(version=TAG)`` and the mean of
  its last field), each from a new ``Cube``, best of ``Sizes.repeats``;
* the floors, in the same run and at the same sizes: a bare Icechunk commit (a hand-written
  loop appending one row to each of two arrays per commit, no metadata), opening a bare
  repository and looking up its branch, and plain xarray ``to_zarr(append_dim=...)`` one call
  per slice on a Zarr store of the same length (written at once, then appended to).

Then the largest local cube runs ``gc`` keeping its last 100 commits, and one-call appends are
measured again: what a user who wants a bounded history gets. The one-call times, their
Icechunk parts and versioncube's own part are fitted with a line over the sizes and projected
to 100,000 commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import xarray as xr
import zarr

import versioncube
from benchmarks.common import Context, best_time
from benchmarks.report import Comparison, Goal, Ref, Result, Section
from benchmarks.workloads import APPEND_DIM, make_slices, write_files
from versioncube.store.target import parse_target
from versioncube.testing.seaweed import S3_BUCKET, SeaweedServer

KEY = "H"
PROJECTED = 100_000
KEPT_BY_GC = 100
SHAPE = (16, 16)
TAG = "first-release"


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a cube of the benchmark lives: a URI and its storage options."""

    name: str  # "local" or "S3"
    uri: str
    storage_options: Mapping[str, Any]

    def settings(self) -> dict[str, Any]:
        return {"target_dir": self.uri, "target_storage_options": dict(self.storage_options)}

    def cube(self) -> versioncube.Cube:
        return versioncube.open_cube(self.uri, storage_options=self.storage_options)

    def storage(self) -> icechunk.Storage:
        return parse_target(self.uri, self.storage_options).storage()


def case(place: str, commits: int, what: str) -> str:
    return f"{place}, {commits:,} commits: {what}"


ONE_CALL = "one-call append"
PROCESS = "one-call append, fresh process"
LOG = "log -n 10"
SHOW = "show"
TAG_READ = "read a tag"
BARE = "bare Icechunk one-call append (floor)"
OPEN = "open the repository (floor)"
XARRAY = "xarray to_zarr one call (reference)"


class CommitClock:
    """Seconds spent in Icechunk's ``Session.commit`` and ``Repository.open`` (and its branch
    look-up) while installed: Icechunk's part of an append."""

    def __init__(self) -> None:
        self.commit = 0.0
        self.open = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[CommitClock]:
        originals = [
            (icechunk.Session, "commit", icechunk.Session.commit, "commit"),
            (icechunk.Repository, "open", icechunk.Repository.open, "open"),
            (icechunk.Repository, "exists", icechunk.Repository.exists, "open"),
            (icechunk.Repository, "list_branches", icechunk.Repository.list_branches, "open"),
            (icechunk.Repository, "lookup_branch", icechunk.Repository.lookup_branch, "open"),
        ]
        for owner, name, function, part in originals:
            timed = self._timed(function, part)
            setattr(owner, name, staticmethod(timed) if name in ("open", "exists") else timed)
        try:
            yield self
        finally:
            for owner, name, function, _ in originals:
                setattr(
                    owner, name, staticmethod(function) if name in ("open", "exists") else function
                )

    def _timed(self, function: Callable[..., Any], part: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                setattr(self, part, getattr(self, part) + time.perf_counter() - started)

        return timed


@dataclasses.dataclass
class Growing:
    """A cube grown commit by commit, and the bare Icechunk repository grown beside it."""

    place: Place
    slices: list[xr.Dataset]
    bare: icechunk.Repository
    bare_storage: icechunk.Storage
    commits: int = 0
    bare_commits: int = 0

    def grow(self, commits: int) -> None:
        """Append slices in one process (fast) until the cube has ``commits`` commits."""
        cube = self.place.cube()
        while self.commits < commits:
            cube.append(self.slices[self.commits])
            self.commits += 1
            if self.commits == 3:
                cube.tag(TAG)
        while self.bare_commits < commits:
            bare_commit(self.bare, self.bare_commits)
            self.bare_commits += 1

    def next_slices(self, count: int) -> list[xr.Dataset]:
        taken = self.slices[self.commits : self.commits + count]
        self.commits += len(taken)
        return taken


def bare_repository(storage: icechunk.Storage) -> icechunk.Repository:
    repo = icechunk.Repository.create(storage)
    session = repo.writable_session("main")
    group = zarr.group(session.store)
    for name in ("tas", "pr"):
        group.create_array(name, shape=(0, *SHAPE), chunks=(1, *SHAPE), dtype="float32")
    session.commit("create")
    return repo


def bare_commit(repo: icechunk.Repository, number: int) -> None:
    """Append one row to each array and commit (no metadata)."""
    session = repo.writable_session("main")
    row = np.full((1, *SHAPE), float(number), dtype="float32")
    for name in ("tas", "pr"):
        zarr.open_array(session.store, path=name).append(row)
    session.commit(f"append slice {number}")


def bare_one_call(storage: icechunk.Storage, number: int) -> float:
    """Seconds of what a job appending with Icechunk alone does for one slice: open the
    repository, start a session on the branch, append a row to each array and commit. Every
    step is Icechunk's and every one of them reads the object that lists the history."""
    started = time.perf_counter()
    bare_commit(icechunk.Repository.open(storage), number)
    return time.perf_counter() - started


def one_call_appends(growing: Growing, count: int) -> dict[str, float]:
    """Median milliseconds of one-call appends, and of the Icechunk parts in them."""
    totals, commits, opens = [], [], []
    settings = growing.place.settings()
    for item in growing.next_slices(count):
        clock = CommitClock()
        with clock.installed():
            started = time.perf_counter()
            appended = versioncube.append([item], **settings)
            totals.append(time.perf_counter() - started)
        if appended != 1:
            raise RuntimeError(f"{growing.place.uri}: a one-call append appended {appended}")
        commits.append(clock.commit)
        opens.append(clock.open)
    return {
        "ms": 1000 * statistics.median(totals),
        "commit_ms": 1000 * statistics.median(commits),
        "open_ms": 1000 * statistics.median(opens),
        "own_ms": 1000
        * statistics.median(t - c - o for t, c, o in zip(totals, commits, opens, strict=True)),
    }


def process_appends(growing: Growing, count: int, folder: Path) -> float:
    """Median seconds of ``versioncube append -t TARGET FILE.nc`` in a new process."""
    files = write_files(growing.next_slices(count), folder)
    command = [sys.executable, "-m", "versioncube", "append", "-t", growing.place.uri]
    seconds = []
    for path in files:
        started = time.perf_counter()
        subprocess.run([*command, str(path)], check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def xarray_one_calls(slices: Sequence[xr.Dataset], commits: int, target: Path, count: int) -> float:
    """Median seconds of ``to_zarr(append_dim=...)`` on a store ``commits`` steps long."""
    whole = xr.concat(list(slices[:commits]), APPEND_DIM)
    encoding = {name: {"chunks": (1, *SHAPE)} for name in ("tas", "pr")}
    whole.to_zarr(target, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    seconds = []
    for item in slices[commits : commits + count]:
        started = time.perf_counter()
        item.to_zarr(target, append_dim=APPEND_DIM, consolidated=False)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def read_tag(place: Place) -> float:
    dataset = versioncube.open_dataset(place.uri, TAG, storage_options=place.storage_options)
    return float(dataset["tas"].isel({APPEND_DIM: -1}).mean().compute())


def open_floor(place: Place) -> None:
    repo = icechunk.Repository.open(place.storage())
    repo.lookup_branch("main")


def measure(
    growing: Growing, context: Context, folder: Path, xarray_target: Path | None
) -> list[Result]:
    """Every case at the cube's current size."""
    sizes, place, commits = context.sizes, growing.place, growing.commits
    results = []
    appends = one_call_appends(growing, sizes.history_samples)
    bare = [
        bare_one_call(growing.bare_storage, growing.bare_commits + n)
        for n in range(sizes.history_samples)
    ]
    growing.bare_commits += len(bare)
    bare_ms = 1000 * statistics.median(bare)
    # what versioncube adds to an append beyond what Icechunk alone needs for one
    appends["over_floor_ms"] = appends["ms"] - bare_ms
    results.append(
        Result(
            case(place.name, commits, ONE_CALL),
            appends,
            f"{appends['ms']:.1f} ms (median of {sizes.history_samples}): Icechunk's commit "
            f"{appends['commit_ms']:.1f} ms, opening the repository {appends['open_ms']:.1f} ms, "
            f"versioncube's own part {appends['own_ms']:.1f} ms; "
            f"{appends['over_floor_ms']:.1f} ms more than the bare one-call append",
        )
    )
    results.append(
        Result(case(place.name, commits, BARE), {"ms": bare_ms}, f"{bare_ms:.1f} ms (median)")
    )
    opened = 1000 * best_time(lambda: open_floor(place), sizes.repeats)
    results.append(
        Result(
            case(place.name, commits, OPEN),
            {"ms": opened},
            f"{opened:.1f} ms (best of {sizes.repeats})",
        )
    )
    if place.name == "local":
        seconds = process_appends(growing, sizes.history_processes, folder / f"files-{commits}")
        results.append(
            Result(
                case(place.name, commits, PROCESS),
                {"ms": 1000 * seconds},
                f"{1000 * seconds:.0f} ms (median of {sizes.history_processes}, imports included)",
            )
        )
    if xarray_target is not None:
        seconds = xarray_one_calls(growing.slices, commits, xarray_target, sizes.history_samples)
        results.append(
            Result(
                case(place.name, commits, XARRAY),
                {"ms": 1000 * seconds},
                f"{1000 * seconds:.1f} ms (median of {sizes.history_samples})",
            )
        )
    reads: dict[str, Callable[[], object]] = {
        LOG: lambda: place.cube().log(10),
        SHOW: lambda: place.cube().info(),
        TAG_READ: lambda: read_tag(place),
    }
    for what, action in reads.items():
        seconds = best_time(action, sizes.repeats)
        results.append(
            Result(
                case(place.name, commits, what),
                {"ms": 1000 * seconds},
                f"{1000 * seconds:.1f} ms (best of {sizes.repeats})",
            )
        )
    return results


def grow_and_measure(
    place: Place, commits: Sequence[int], context: Context, folder: Path, *, xarray: bool
) -> tuple[list[Result], Growing]:
    samples = context.sizes.history_samples + context.sizes.history_processes
    total = max(commits) + len(commits) * (samples + 5) + KEPT_BY_GC
    bare_place = dataclasses.replace(place, uri=f"{place.uri}-bare")
    bare_storage = bare_place.storage()
    growing = Growing(place, make_slices(total, SHAPE), bare_repository(bare_storage), bare_storage)
    results = []
    for size in commits:
        growing.grow(size)
        target = folder / f"xarray-{size}.zarr" if xarray else None
        results += measure(growing, context, folder, target)
    return results, growing


def after_gc(growing: Growing, context: Context) -> Result:
    """One-call appends after ``gc`` expired all but the last commits."""
    cube = growing.place.cube()
    history = list(cube.repository.ancestry(branch=cube.branch))
    keep_from = history[min(KEPT_BY_GC, len(history) - 1)].written_at
    cube.gc(dt.datetime.now(dt.UTC) - keep_from, force=True)
    commits = sum(1 for _ in cube.repository.ancestry(branch=cube.branch)) - 1
    appends = one_call_appends(growing, context.sizes.history_samples)
    return Result(
        case(growing.place.name, growing.commits, f"{ONE_CALL} after gc kept {commits}"),
        {**appends, "commits_kept": commits},
        f"{appends['ms']:.1f} ms (median): Icechunk's commit {appends['commit_ms']:.1f} ms, "
        f"opening {appends['open_ms']:.1f} ms, versioncube's own part {appends['own_ms']:.1f} ms",
    )


def projection(results: Sequence[Result], place: str, commits: Sequence[int]) -> Result | None:
    """A least-squares line through the one-call medians, evaluated at 100,000 commits."""
    rows = [(n, r) for n in commits for r in results if r.case == case(place, n, ONE_CALL)]
    if len(rows) < 2:
        return None
    sizes = np.array([r.metrics.get("commits", n) for n, r in rows], dtype=float)
    metrics = {}
    for metric in ("ms", "commit_ms", "open_ms", "own_ms", "over_floor_ms"):
        values = np.array([r.metrics[metric] for _, r in rows])
        slope, intercept = np.polyfit(sizes, values, 1)
        metrics[metric] = float(intercept + slope * PROJECTED)
        metrics[f"{metric}_per_1000_commits"] = float(1000 * slope)
    return Result(
        f"{place}, projected to {PROJECTED:,} commits: {ONE_CALL}",
        metrics,
        f"{metrics['ms']:.0f} ms: Icechunk's commit {metrics['commit_ms']:.0f} ms, opening "
        f"{metrics['open_ms']:.0f} ms, versioncube's own part {metrics['own_ms']:.0f} ms "
        f"(growth per 1,000 commits: {metrics['ms_per_1000_commits']:+.2f} ms in all, "
        f"{metrics['own_ms_per_1000_commits']:+.2f} ms versioncube's own)",
    )


def run(context: Context) -> Section:
    sizes = context.sizes
    local_sizes, s3_sizes = sizes.history_commits, sizes.history_s3_commits
    folder = context.target("history")
    folder.mkdir(parents=True)
    local = Place("local", os.fspath(folder / "cube"), {})
    results, growing = grow_and_measure(local, local_sizes, context, folder, xarray=True)
    results.append(after_gc(growing, context))
    if (projected := projection(results, "local", local_sizes)) is not None:
        results.append(projected)
    if s3_sizes:
        with SeaweedServer(folder / "seaweedfs") as server:
            s3 = Place("S3", f"s3://{S3_BUCKET}/history-{uuid.uuid4().hex}", server.options)
            s3_results, _ = grow_and_measure(s3, s3_sizes, context, folder, xarray=False)
        results += s3_results
    return Section(KEY, "History", description(sizes), results, comparisons(local_sizes, s3_sizes))


def comparisons(local: Sequence[int], s3: Sequence[int]) -> list[Comparison]:
    first, last = min(local), max(local)
    rows = [
        Comparison(
            f"local: one-call append at {last:,} / at {first:,} commits",
            Ref(KEY, case("local", last, ONE_CALL), "ms"),
            Ref(KEY, case("local", first, ONE_CALL), "ms"),
            Goal("<=", 1.3),
        ),
        Comparison(
            f"local: versioncube's own part at {last:,} / at {first:,} commits",
            Ref(KEY, case("local", last, ONE_CALL), "own_ms"),
            Ref(KEY, case("local", first, ONE_CALL), "own_ms"),
        ),
        Comparison(
            f"local: bare Icechunk one-call append at {last:,} / at {first:,} commits",
            Ref(KEY, case("local", last, BARE), "ms"),
            Ref(KEY, case("local", first, BARE), "ms"),
        ),
        Comparison(
            f"local: one-call append minus the bare one at {last:,} / at {first:,} commits",
            Ref(KEY, case("local", last, ONE_CALL), "over_floor_ms"),
            Ref(KEY, case("local", first, ONE_CALL), "over_floor_ms"),
            Goal("<=", 1.3),
        ),
    ]
    rows += [
        Comparison(
            f"local, {n:,} commits: one-call append / xarray to_zarr one call",
            Ref(KEY, case("local", n, ONE_CALL), "ms"),
            Ref(KEY, case("local", n, XARRAY), "ms"),
            Goal("<=", 1.0),
        )
        for n in local
    ]
    rows += [
        Comparison(
            f"local, {last:,} commits: {what}",
            Ref(KEY, case("local", last, what), "ms"),
            None,
            Goal("<=", 300.0),
            " ms",
        )
        for what in (LOG, SHOW)
    ]
    if len(s3) > 1:
        rows.append(
            Comparison(
                f"S3: one-call append at {max(s3):,} / at {min(s3):,} commits",
                Ref(KEY, case("S3", max(s3), ONE_CALL), "ms"),
                Ref(KEY, case("S3", min(s3), ONE_CALL), "ms"),
            )
        )
    return rows


def description(sizes: Any) -> str:
    local = ", ".join(f"{n:,}" for n in sizes.history_commits)
    s3 = ", ".join(f"{n:,}" for n in sizes.history_s3_commits) or "none"
    return (
        f"A cube of 1 x {SHAPE[0]} x {SHAPE[1]} slices (tas and pr, float32), one commit each, "
        f"grown to {local} commits on local disk and {s3} on SeaweedFS (S3) on 127.0.0.1. At "
        f"each size: {sizes.history_samples} one-call appends (`versioncube.append([slice], "
        "target_dir=...)`, a fresh call each; the median, split into Icechunk's "
        "`session.commit`, Icechunk's opening of the repository and versioncube's own part); "
        f"{sizes.history_processes} appends in a fresh process (`versioncube append -t T "
        "FILE.nc`, imports included; local only); `log -n 10`, `show` and reading a tag from a "
        f"new `Cube`, best of {sizes.repeats}; the floors: a bare Icechunk one-call append (open "
        "the repository, a session, one row per array, commit with no metadata) in a "
        "repository grown beside the cube, opening a bare "
        "repository and looking up its branch, and xarray `to_zarr(append_dim=...)` one call "
        "per slice on a Zarr store as long as the cube. Then `gc` keeps the last "
        f"{KEPT_BY_GC} commits of the largest local cube and one-call appends are measured "
        f"again. The projection to {PROJECTED:,} commits is a least-squares line through the "
        "local one-call medians."
    )
