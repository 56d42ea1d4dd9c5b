"""U. Writes by label: rewriting 10 of N steps (contiguous and scattered) and inserting 10 steps
in the middle, with a time chunk of 1 and of 24, against plain xarray region writes.

One float32 variable of 64 x 64 random values per step (16 KiB, not compressible, never inlined
into a manifest), on local disk. versioncube rewrites with ``write --mode replace`` and inserts
with ``write --mode insert`` (chunk references moved when the shift is a whole number of chunks,
the tail rewritten otherwise). Plain xarray rewrites with region writes into one Icechunk
session (one region per contiguous run of steps); it has no insert, so its counterpart grows
the arrays and rewrites the whole tail with a region write (what an insert costs without moving
references). Objects and bytes are the new files under the repository's chunks/ and manifests/
folders; each operation starts from the same version (rolled back in between).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import versioncube
from benchmarks.common import Context
from benchmarks.report import Comparison, Ref, Result, Section
from versioncube.cube import Cube

KEY = "U"
SHAPE = (64, 64)
CHUNKS = (1, 24)
STEPS = 10


def dataset(days: pd.DatetimeIndex, seed: int = 0) -> xr.Dataset:
    values = np.random.default_rng(seed).random((len(days), *SHAPE), dtype=np.float32)
    return xr.Dataset(
        {"v": (("time", "y", "x"), values)},
        coords={"time": days.values},
    )


def stored_files(repo: Path) -> dict[str, int]:
    found = {}
    for folder in ("chunks", "manifests"):
        for path in (repo / folder).rglob("*"):
            if path.is_file():
                found[str(path)] = path.stat().st_size
    return found


def measure(repo: Path, action: Callable[[], object]) -> dict[str, float]:
    """Objects and bytes written and seconds taken by ``action``."""
    before = stored_files(repo)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    new = {path: size for path, size in stored_files(repo).items() if path not in before}
    return {"objects": len(new), "bytes": sum(new.values()), "seconds": seconds}


def runs(rows: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted rows, ``[start, stop)``."""
    found: list[tuple[int, int]] = []
    for row in rows:
        if found and found[-1][1] == row:
            found[-1] = (found[-1][0], row + 1)
        else:
            found.append((row, row + 1))
    return found


def xarray_rewrite(target: Path, new: xr.Dataset, rows: list[int]) -> None:
    """Plain xarray: a region write per contiguous run, one session, one commit."""
    import icechunk
    from icechunk.xarray import to_icechunk

    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(os.fspath(target)))
    session = repo.writable_session("main")
    offset = 0
    for start, stop in runs(rows):
        part = new.isel(time=slice(offset, offset + stop - start)).drop_vars("time")
        to_icechunk(part, session, region={"time": slice(start, stop)}, mode="r+")
        offset += stop - start
    session.commit("xarray region writes")


def xarray_insert(target: Path, cube: xr.Dataset, new: xr.Dataset, at: int) -> None:
    """Plain xarray's way to insert: grow the arrays, rewrite the whole tail (labels too)."""
    import icechunk
    import zarr
    from icechunk.xarray import to_icechunk

    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(os.fspath(target)))
    session = repo.writable_session("main")
    tail = xr.concat([new, cube.isel(time=slice(at, None))], "time")
    group = zarr.open_group(session.store, mode="r+")
    size = cube.sizes["time"] + new.sizes["time"]
    for name in ("v", "time"):
        array = group[name]
        assert isinstance(array, zarr.Array)
        array.resize((size, *array.shape[1:]))
    to_icechunk(tail.drop_vars("time"), session, region={"time": slice(at, size)}, mode="r+")
    times = group["time"]
    assert isinstance(times, zarr.Array)
    encoded, _, _ = xr.coding.times.encode_cf_datetime(
        tail.time.values, times.attrs["units"], times.attrs.get("calendar"), dtype=times.dtype
    )
    times[at:size] = encoded
    session.commit("xarray tail rewrite")


def cube_of(context: Context, name: str, data: xr.Dataset, chunk: int) -> tuple[Path, Cube]:
    target = context.target("updates", name)
    config = {"variables": {"v": {"encoding": {"chunks": [chunk, *SHAPE]}}}}
    versioncube.append(data, target_dir=os.fspath(target), **config)
    return target, versioncube.open_cube(os.fspath(target))


def run(context: Context) -> Section:
    results: list[Result] = []
    comparisons: list[Comparison] = []
    for chunk in CHUNKS:
        rewrite(context, chunk, results, comparisons)
        insert(context, chunk, results, comparisons)
    description = __doc__.split("\n\n", 1)[1].replace("\n", " ").strip()
    return Section(KEY, "Writes by label: rewrite and insert", description, results, comparisons)


def rewrite(
    context: Context, chunk: int, results: list[Result], comparisons: list[Comparison]
) -> None:
    """Rewrite 10 steps of the smaller cube, contiguous and scattered."""
    steps = context.sizes.updates_rewrite_steps
    days = pd.date_range("2000-01-01", periods=steps, freq="D")
    target, cube = cube_of(context, f"rewrite-{chunk}", dataset(days), chunk)
    tip = cube.store.tip()
    picks = {
        "contiguous": list(range(steps // 2, steps // 2 + STEPS)),
        "scattered": list(range(0, steps, steps // STEPS))[:STEPS],
    }
    for how, rows in picks.items():
        new = dataset(days[rows], seed=1)
        case = f"rewrite {STEPS} {how} of {steps}, chunk {chunk}"
        metrics = measure(target, lambda new=new: cube.write(new, mode="replace"))
        cube.rollback(to=tip)
        results.append(_result(f"versioncube, {case}", metrics))
        metrics = measure(target, lambda new=new, rows=rows: xarray_rewrite(target, new, rows))
        cube.rollback(to=tip)
        results.append(_result(f"xarray, {case}", metrics))
        comparisons.append(_compare(case))


def insert(
    context: Context, chunk: int, results: list[Result], comparisons: list[Comparison]
) -> None:
    """Insert 10 steps in the middle of the bigger cube."""
    steps = context.sizes.updates_insert_steps
    days = pd.date_range("2000-01-01", periods=steps + STEPS, freq="D")
    at = steps // 2
    missing = days[at : at + STEPS]
    full = dataset(days)
    held = full.drop_sel(time=missing)
    target, cube = cube_of(context, f"insert-{chunk}", held, chunk)
    new = full.sel(time=missing)
    tip = cube.store.tip()
    case = f"insert {STEPS} in the middle of {steps}, chunk {chunk}"
    metrics = measure(target, lambda: cube.write(new, mode="insert"))
    cube.rollback(to=tip)
    results.append(_result(f"versioncube, {case}", metrics))
    metrics = measure(target, lambda: xarray_insert(target, held, new, at))
    cube.rollback(to=tip)
    results.append(_result(f"xarray (tail rewrite), {case}", metrics))
    comparisons.append(
        Comparison(
            f"{case}: xarray (tail rewrite) / versioncube, objects written",
            Ref(KEY, f"xarray (tail rewrite), {case}", "objects"),
            Ref(KEY, f"versioncube, {case}", "objects"),
        )
    )


def _result(case: str, metrics: dict[str, float]) -> Result:
    return Result(
        case,
        metrics,
        f"{int(metrics['objects'])} objects, {metrics['bytes'] / 2**20:.2f} MiB, "
        f"{metrics['seconds']:.2f} s",
    )


def _compare(case: str) -> Comparison:
    return Comparison(
        f"{case}: versioncube / xarray, objects written",
        Ref(KEY, f"versioncube, {case}", "objects"),
        Ref(KEY, f"xarray, {case}", "objects"),
    )
