"""P. Where versioncube's time goes: each step of ``Cube.append`` timed, per append.

The steps of the pipeline (see versioncube/cube.py) are wrapped with timers for the length of
this benchmark only, and A's and B's slices are appended again. A step that a later version of
the code no longer has is reported as missing, not silently dropped. The wrappers cost about a
microsecond per call; everything ``Cube.append`` does outside the listed steps is "other".
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import icechunk
import icechunk.xarray

import versioncube.cube
import versioncube.write.append
import versioncube.write.in_place
from benchmarks import growth, throughput
from benchmarks.common import Context
from benchmarks.report import Result, Section

KEY = "P"
TOTAL = "total per append"
OTHER = "other (Cube.append outside these steps)"

#: Names that start with this are parts of the step above them, not counted twice in "other".
PART = "- "

#: (step, object that holds the function, attribute name), in pipeline order. Appends of
#: in-memory slices write in place (versioncube/write/in_place.py); the first slice and dask-backed
#: ones go through to_icechunk, whose parts are Icechunk internals (icechunk/xarray.py):
#: xarray's metadata path, which opens the group and decodes the existing variables, against
#: the chunk writes.
STEPS: list[tuple[str, Any, str]] = [
    ("fingerprint the slice (slice_ref)", versioncube.write.append, "slice_ref"),
    ("open a writable session", icechunk.Repository, "writable_session"),
    ("read the cube outline (read_outline)", versioncube.write.append, "read_outline"),
    ("validate the slice (plan_append)", versioncube.write.append, "checked_plan"),
    ("write in place (append_in_place)", versioncube.write.append, "append_in_place"),
    (f"{PART}encode (encode_for_zarr)", versioncube.write.in_place, "encode_for_zarr"),
    ("write the slice (to_icechunk)", versioncube.write.append, "to_icechunk"),
    (f"{PART}open the group", icechunk.xarray._XarrayDatasetWriter, "_open_group"),
    (f"{PART}xarray metadata", icechunk.xarray._XarrayDatasetWriter, "write_metadata"),
    (f"{PART}write the chunks", icechunk.xarray._XarrayDatasetWriter, "write_eager"),
    ("commit (session.commit)", icechunk.Session, "commit"),
]


class StepClock:
    """Collects, for each ``Cube.append`` call, the seconds spent in each of :data:`STEPS`."""

    def __init__(self) -> None:
        self.appends: list[dict[str, float]] = []
        self.missing: list[str] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[StepClock]:
        originals = [(versioncube.cube.Cube, "append", versioncube.cube.Cube.append)]
        versioncube.cube.Cube.append = self._frame(versioncube.cube.Cube.append)  # type: ignore[method-assign]
        for step, owner, name in STEPS:
            if not hasattr(owner, name):
                self.missing.append(step)
                continue
            function = getattr(owner, name)
            originals.append((owner, name, function))
            setattr(owner, name, self._timed(step, function))
        try:
            yield self
        finally:
            for owner, name, function in originals:
                setattr(owner, name, function)

    def _frame(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def append(*args: Any, **kwargs: Any) -> Any:
            record: dict[str, float] = {}
            self.appends.append(record)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                record[TOTAL] = time.perf_counter() - started

        return append

    def _timed(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.appends:
                    record = self.appends[-1]
                    record[step] = record.get(step, 0.0) + time.perf_counter() - started

        return timed


def mean_ms(appends: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean milliseconds per append of every step, of the total, and of the rest ("other")."""
    steps = [step for step, _, _ in STEPS]
    means = {
        name: 1000 * sum(record.get(name, 0.0) for record in appends) / len(appends)
        for name in [*steps, TOTAL]
    }
    means[OTHER] = means[TOTAL] - sum(means[step] for step in steps if not step.startswith(PART))
    return means


def appends_timed(context: Context, items: Sequence[Any], folder: str) -> StepClock:
    """Append ``items`` to a new cube with every step timed."""
    clock = StepClock()
    cube = versioncube.cube.open_cube(os.fspath(context.target("phases", folder)))
    with clock.installed():
        for item in items:
            cube.append(item)
    return clock


def run(context: Context) -> Section:
    window = context.sizes.growth_window
    a = appends_timed(context, throughput.workload(context).slices(), "throughput")
    b = appends_timed(context, growth.workload(context).slices(), "growth")
    columns = [  # metric, label, means
        ("a_ms", "A", mean_ms(a.appends[1:])),
        ("b_first_ms", f"B first {window}", mean_ms(b.appends[1 : window + 1])),
        ("b_last_ms", f"B last {window}", mean_ms(b.appends[-window:])),
    ]
    results = []
    for step in [name for name, _, _ in STEPS] + [OTHER, TOTAL]:
        metrics = {metric: means[step] for metric, _, means in columns}
        summary = " · ".join(
            f"{label}: {means[step]:.2f} ms ({100 * means[step] / means[TOTAL]:.0f}%)"
            for _, label, means in columns
        )
        results.append(Result(step, metrics, summary))
    description = (
        "versioncube's `Cube.append` with each pipeline step timed, in ms per append: A's "
        f"slices (appends 2..{len(a.appends)}) and B's (appends 2..{window + 1} and the last "
        f"{window}); percentages are of the total per append."
    )
    if a.missing:
        description += f" Steps not found in this version: {', '.join(a.missing)}."
    return Section(KEY, "Where versioncube's time goes", description, results, [])
