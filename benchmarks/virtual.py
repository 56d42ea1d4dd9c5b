"""V. Virtual vs copied appends: NetCDF4 files appended as references (``--virtual``) or as
copies, one commit per file, to a new local cube: time per commit and bytes stored.

Two sets: many small files (eofs-sized fields, 1 x 18 x 30 float64) and fewer larger ones (one
float32 field of a global grid each); both zlib level 4 with shuffle, one chunk per time step,
as archives often hold them. The copied cube stores the values again (versioncube's Blosc
lz4); the virtual one stores references and the natively stored time labels. The larger files
also make a pyramid of 3 levels: referenced, only level 0 is references (levels 1 and 2 are
computed from the file's values and copied); copied, every level is stored.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import versioncube
from benchmarks.common import Context
from benchmarks.report import Comparison, Ref, Result, Section
from versioncube.versions.summary import folder_size

KEY = "V"


def write_files(folder: Path, count: int, shape: tuple[int, int], dtype: str) -> list[Path]:
    """``count`` NetCDF4 files of one time step each (smooth fields, zlib 4 + shuffle)."""
    folder.mkdir(parents=True, exist_ok=True)
    lat, lon = shape
    y, x = np.meshgrid(np.linspace(-1, 1, lat), np.linspace(-1, 1, lon), indexing="ij")
    paths = []
    for index, day in enumerate(pd.date_range("2024-01-01", periods=count, freq="D")):
        field = (np.sin(3 * x + index / 7) * np.cos(2 * y) * 10).astype(dtype)[None]
        dataset = xr.Dataset(
            {"v": (("time", "lat", "lon"), field)},
            coords={"time": [day], "lat": np.linspace(-90, 90, lat), "lon": np.arange(lon)},
        )
        path = folder / f"f_{index:04d}.nc"
        encoding = {"v": {"zlib": True, "complevel": 4, "shuffle": True,
                          "chunksizes": (1, lat, lon)}}  # fmt: skip
        dataset.to_netcdf(path, engine="netcdf4", encoding=encoding)
        paths.append(path)
    return paths


#: The pyramid the larger files also make.
PYRAMID_LEVELS = 3


def append_all(
    paths: list[Path], target: Path, virtual: bool, levels: int | None = None
) -> tuple[float, int]:
    """Seconds per commit (median) and bytes of the cube on disk."""
    config: dict[str, object] = {"virtual": virtual}
    if levels is not None:
        config["levels"] = {"num_levels": levels, "tile_size": 256}
    cube = versioncube.open_cube(os.fspath(target), config=config)
    seconds = []
    for path in paths:
        started = time.perf_counter()
        cube.append(str(path))
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds)), folder_size(target)


def run(context: Context) -> Section:
    sizes = context.sizes
    sets = {
        f"{sizes.virtual_small_files} small files": write_files(
            context.target("virtual", "small"), sizes.virtual_small_files, (18, 30), "float64"
        ),
        f"{sizes.virtual_large_files} larger files": write_files(
            context.target("virtual", "large"),
            sizes.virtual_large_files,
            sizes.virtual_large_shape,
            "float32",
        ),
    }
    results, comparisons = [], []
    larger = list(sets)[1]
    runs = [(label, paths, None) for label, paths in sets.items()]
    runs.append((f"{larger}, {PYRAMID_LEVELS}-level pyramid", sets[larger], PYRAMID_LEVELS))
    for label, paths, levels in runs:
        source_bytes = sum(path.stat().st_size for path in paths)
        for mode in ("virtual", "copied"):
            target = context.target("virtual", f"{label}-{mode}".replace(" ", "-"))
            per_commit, stored = append_all(paths, target, mode == "virtual", levels)
            results.append(
                Result(
                    f"{mode}, {label}",
                    {
                        "seconds_per_commit": per_commit,
                        "bytes_stored": stored,
                        "source_bytes": source_bytes,
                    },
                    f"{1000 * per_commit:.1f} ms per commit, {stored / 1e6:.2f} MB stored "
                    f"(files: {source_bytes / 1e6:.2f} MB)",
                )
            )
        comparisons += [
            Comparison(
                f"{label}: virtual / copied, time per commit",
                Ref(KEY, f"virtual, {label}", "seconds_per_commit"),
                Ref(KEY, f"copied, {label}", "seconds_per_commit"),
            ),
            Comparison(
                f"{label}: virtual / copied, bytes stored",
                Ref(KEY, f"virtual, {label}", "bytes_stored"),
                Ref(KEY, f"copied, {label}", "bytes_stored"),
            ),
        ]
    description = __doc__.split("\n\n", 1)[1].replace("\n", " ").strip()
    return Section(KEY, "Virtual vs copied appends", description, results, comparisons)
