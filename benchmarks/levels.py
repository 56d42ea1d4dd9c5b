"""L. Levels and groups: appending to a 4-level pyramid and to a tree of 4 groups, one commit each.

versioncube against, in the same run, the floor of a hand-written loop: per slice one Icechunk
session, ``to_icechunk`` into each level's (or node's) group, one commit. The loop downsamples
with the same block means (``coarsen(boundary="pad", coord_func="min").mean()``) but checks
nothing. ``versioncube, flat`` appends level 0 alone, to show what the levels add.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import icechunk
import xarray as xr
from icechunk.xarray import to_icechunk

import versioncube
from benchmarks.common import Context, time_each
from benchmarks.report import Comparison, Goal, Ref, Result, Section
from benchmarks.workloads import APPEND_DIM, DATA_VARIABLES, data_megabytes, make_slices

KEY = "L"
LEVELS = 4
PYRAMID = f"versioncube, {LEVELS} levels"
PYRAMID_LOOP = f"icechunk loop, {LEVELS} levels"
FLAT = "versioncube, flat (level 0 only)"
TREE = "versioncube, tree of 4 groups"
TREE_LOOP = "icechunk loop, tree of 4 groups"
NODES = ("/atmos", "/land", "/ocean")


def downsampled(dataset: xr.Dataset, level: int) -> xr.Dataset:
    """Level ``level`` of a slice: block means of every variable (the loop's levels)."""
    if level == 0:
        return dataset
    step = 2**level
    return xr.Dataset(
        {
            name: dataset[name]
            .coarsen(lat=step, lon=step, boundary="pad", coord_func="min")
            .mean()
            .astype(dataset[name].dtype)
            for name in DATA_VARIABLES
        }
    )


def tree_of(dataset: xr.Dataset) -> xr.DataTree:
    """A slice as a tree: the time coordinate at the root, the fields in three child nodes."""
    fields = dataset.drop_vars(APPEND_DIM)
    root = xr.Dataset(coords={APPEND_DIM: dataset[APPEND_DIM]})
    return xr.DataTree.from_dict({"/": root, **{node: fields for node in NODES}})


def pyramid_loop(target: Path, slices: Sequence[xr.Dataset]) -> list[float]:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(target)))
    created = []

    def append(dataset: xr.Dataset) -> None:
        session = repo.writable_session("main")
        for level in range(LEVELS):
            group = str(level)
            if not created:
                to_icechunk(downsampled(dataset, level), session, group=group, mode="w-")
            else:
                to_icechunk(downsampled(dataset, level), session, group=group, append_dim="time")
        session.commit("append")
        created.append(True)

    return time_each(append, slices)


def tree_loop(target: Path, trees: Sequence[xr.DataTree]) -> list[float]:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(target)))
    created = []

    def append(tree: xr.DataTree) -> None:
        session = repo.writable_session("main")
        for node in tree.subtree:
            group = node.path.strip("/") or None
            own = node.to_dataset(inherit=False)
            if not created:
                to_icechunk(own, session, group=group, mode="w-")
            else:
                to_icechunk(own, session, group=group, append_dim=APPEND_DIM)
        session.commit("append")
        created.append(True)

    return time_each(append, trees)


def versioncube_appends(target: Path, items: Sequence[object], **config: object) -> list[float]:
    cube = versioncube.open_cube(os.fspath(target), config={**config})
    return time_each(cube.append, items)  # type: ignore[arg-type]


def run(context: Context) -> Section:
    sizes = context.sizes
    slices = make_slices(sizes.levels_slices, sizes.levels_shape)
    trees = [tree_of(dataset) for dataset in slices]
    megabytes = data_megabytes(slices)
    levels = {"num_levels": LEVELS, "tile_size": 256, "agg_methods": "mean"}
    seconds = {
        PYRAMID: versioncube_appends(context.target("levels", "pyramid"), slices, levels=levels),
        PYRAMID_LOOP: pyramid_loop(context.target("levels", "pyramid-loop"), slices),
        FLAT: versioncube_appends(context.target("levels", "flat"), slices),
        TREE: versioncube_appends(context.target("levels", "tree"), trees),
        TREE_LOOP: tree_loop(context.target("levels", "tree-loop"), trees),
    }
    results = []
    for case, times in seconds.items():
        later = times[1:]  # the creating append left out
        mean_ms = 1000 * sum(later) / len(later)
        results.append(
            Result(
                case,
                {"ms_per_append": mean_ms, "seconds": sum(times), "level0_megabytes": megabytes},
                f"{mean_ms:.1f} ms per append (appends 2..{len(times)}), {sum(times):.2f} s in all",
            )
        )
    comparisons = [
        Comparison(
            f"{PYRAMID} / {PYRAMID_LOOP}, ms per append",
            Ref(KEY, PYRAMID, "ms_per_append"),
            Ref(KEY, PYRAMID_LOOP, "ms_per_append"),
            Goal("<=", 1.0),
        ),
        Comparison(
            f"{TREE} / {TREE_LOOP}, ms per append",
            Ref(KEY, TREE, "ms_per_append"),
            Ref(KEY, TREE_LOOP, "ms_per_append"),
            Goal("<=", 1.0),
        ),
        Comparison(
            f"{PYRAMID} / {FLAT}, ms per append (what the levels cost)",
            Ref(KEY, PYRAMID, "ms_per_append"),
            Ref(KEY, FLAT, "ms_per_append"),
        ),
    ]
    nlat, nlon = sizes.levels_shape
    description = (
        f"{len(slices)} slices of 1 x {nlat} x {nlon} (tas and pr, float32), each appended as "
        f"one commit to a new local cube: as a pyramid of {LEVELS} levels (block means, tiles of "
        f"256), as level 0 alone, and as a tree (the time coordinate at the root, the two fields "
        f"in each of {len(NODES)} child groups); against a hand-written loop of `to_icechunk` "
        "per group and one commit per slice. Mean wall time per append, the creating one left "
        "out."
    )
    return Section(KEY, "Levels and groups", description, results, comparisons)
