"""B. Growth: does an append get slower as the store grows? 1000 tiny slices (1 x 16 x 16).

The mean time per append over the first appends (the creating one left out) and over the last
ones, for versioncube, xarray and the hand-written Icechunk loop.
"""

from __future__ import annotations

from benchmarks.common import Context
from benchmarks.report import Comparison, Goal, Ref, Section
from benchmarks.workloads import (
    VERSIONCUBE,
    WRITERS,
    XARRAY,
    Workload,
    growth_result,
    run_writer,
)

KEY = "B"


def workload(context: Context) -> Workload:
    """B's slices (C appends the same ones with zappend)."""
    sizes = context.sizes
    return Workload(context, "growth", sizes.growth_slices, sizes.growth_shape)


def run(context: Context) -> Section:
    data = workload(context).slices()
    window = context.sizes.growth_window
    results = []
    for name, writer in WRITERS.items():
        seconds = run_writer(writer, data, context.target("growth", name))
        results.append(growth_result(name, seconds, window))
    comparisons = [
        Comparison(
            f"{name}: last {window} / first {window}, ms per append",
            Ref(KEY, name, "last_ms"),
            Ref(KEY, name, "first_ms"),
            Goal("<=", 1.3) if name == VERSIONCUBE else None,
        )
        for name in WRITERS
    ]
    comparisons.append(
        Comparison(
            f"{VERSIONCUBE} / {XARRAY}, last {window} ms per append",
            Ref(KEY, VERSIONCUBE, "last_ms"),
            Ref(KEY, XARRAY, "last_ms"),
            Goal("<=", 1.0),
        )
    )
    nlat, nlon = context.sizes.growth_shape
    description = (
        f"{len(data)} slices of 1 x {nlat} x {nlon} (tas and pr, float32), each appended as one "
        f"commit (one `to_zarr` call for xarray) to a new local store; mean wall time per append "
        f"over appends 2..{window + 1} and over the last {window}."
    )
    return Section(KEY, "Growth", description, results, comparisons)
