"""D. Memory: the peak RSS of appending one 2 GB dask-backed slice with versioncube.

The slice is computed chunk by chunk by dask from a function, so it is never held whole unless
the append itself holds it. It runs in a child process (``python -m benchmarks.memory``) that
creates a cube with one time step of the same grid, appends the big slice, and reports its
own peak RSS (``VmHWM``), so nothing else of the run is counted. With ``--trace-memory`` the
child also reports the peak of Python's own allocations during the big append and the biggest
ones still alive after it (tracemalloc), to show where a slice gets held.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Context
from benchmarks.report import Comparison, Goal, Ref, Result, Section

KEY = "D"
CASE = "versioncube"
ROOT = Path(__file__).resolve().parent.parent


def lazy_slice(shape: tuple[int, int, int], chunks: tuple[int, int, int], first_day: int) -> Any:
    """A dask-backed slice of a smooth float32 field ``tas``, ``shape`` = (time, lat, lon)."""
    import dask.array as da
    import numpy as np
    import pandas as pd
    import xarray as xr

    ntime, nlat, nlon = shape

    def block(block_info: dict | None = None) -> np.ndarray:
        (t0, t1), (y0, y1), (x0, x1) = block_info[None]["array-location"]  # type: ignore[index]
        t = np.arange(first_day + t0, first_day + t1, dtype="float32")[:, None, None]
        y = np.arange(y0, y1, dtype="float32")[None, :, None] / nlat
        x = np.arange(x0, x1, dtype="float32")[None, None, :] / nlon
        return 288 + 30 * np.cos(np.pi * y) + 3 * np.sin(2 * np.pi * (3 * x - t / 10))

    data = da.map_blocks(
        block,
        chunks=da.core.normalize_chunks(chunks, shape),
        dtype="float32",
        meta=np.empty((0, 0, 0), "float32"),
    )
    times = pd.date_range("2000-01-01", periods=ntime, freq="D") + pd.Timedelta(days=first_day)
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), data, {"units": "K"})},
        coords={
            "time": times,
            "lat": np.linspace(-90, 90, nlat),
            "lon": np.linspace(0, 360, nlon, endpoint=False),
        },
    )


def measure(target: Path, shape: tuple[int, int, int], chunks: tuple[int, int, int], trace: bool):
    """In the child: create the cube with one step, append the big slice, report memory."""
    import icechunk

    import versioncube

    icechunk.set_logs_filter("error")
    cube = versioncube.open_cube(str(target))
    cube.append(lazy_slice((1, *shape[1:]), chunks, first_day=0))
    big = lazy_slice(shape, chunks, first_day=1)
    before = _peak_rss()
    if trace:
        import tracemalloc

        tracemalloc.start()
    started = time.perf_counter()
    cube.append(big)
    seconds = time.perf_counter() - started
    report: dict[str, Any] = {
        "slice_gb": big.nbytes / 1e9,
        "peak_before_gb": before / 1e9,
        "peak_gb": _peak_rss() / 1e9,
        "seconds": seconds,
    }
    if trace:
        report["python_peak_gb"] = tracemalloc.get_traced_memory()[1] / 1e9
        snapshot = tracemalloc.take_snapshot()
        report["top_allocations"] = [str(stat) for stat in snapshot.statistics("lineno")[:10]]
    return report


def _peak_rss() -> int:
    """This process's peak RSS in bytes.

    ``VmHWM`` counts this program only. ``ru_maxrss`` would do on macOS, but Linux carries it
    over ``exec`` from the forked parent, so a child of a big benchmark run would report the
    parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS


def run(context: Context) -> Section:
    sizes = context.sizes
    request = {
        "target": str(context.target("memory", "cube")),
        "shape": sizes.memory_shape,
        "chunks": sizes.memory_chunks,
        "trace": context.trace_memory,
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", json.dumps(request)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory benchmark child failed:\n{done.stderr}")
    numbers = json.loads(done.stdout)
    allocations = numbers.pop("top_allocations", None)
    summary = (
        f"peak RSS {numbers['peak_gb']:.2f} GB appending a {numbers['slice_gb']:.2f} GB slice "
        f"in {numbers['seconds']:.1f} s (peak {numbers['peak_before_gb']:.2f} GB before it)"
    )
    if allocations:
        summary += "; biggest allocations: " + "; ".join(allocations[:3])
    ntime, nlat, nlon = sizes.memory_shape
    description = (
        f"A dask-backed slice of {ntime} x {nlat} x {nlon} float32 in chunks of "
        f"{' x '.join(map(str, sizes.memory_chunks))}, appended by `Cube.append` to a local cube "
        "created with one time step of the same grid, in a child process that reports its "
        "own peak RSS (imports and the first step included)."
    )
    return Section(
        KEY,
        "Memory",
        description,
        [Result(CASE, numbers, summary)],
        [
            Comparison(
                "versioncube peak RSS", Ref(KEY, CASE, "peak_gb"), None, Goal("<=", 1.0), " GB"
            )
        ],
    )


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(
        json.dumps(
            measure(
                Path(arguments["target"]),
                tuple(arguments["shape"]),
                tuple(arguments["chunks"]),
                arguments["trace"],
            )
        )
    )
