"""Append slice files with zappend, timing each append; runs in zappend's own venv.

Started by :mod:`benchmarks.versus_zappend` with that venv's python, so it imports nothing from
versioncube or the benchmarks package (zappend needs zarr 2, versioncube zarr 3).

    python zappend_runner.py REQUEST.json   # prints {"seconds": [...]} as JSON
    python zappend_runner.py --versions     # prints the versions of zappend and its libraries

REQUEST.json: ``target`` (a new Zarr directory), ``slices`` (NetCDF paths), ``in_memory``
(load every file before timing, so zappend gets ``xarray.Dataset`` objects as versioncube
does), ``chunks`` (variable name -> chunk shape) and ``append_dim``.
"""

import importlib.metadata
import json
import sys
import time
import warnings

LIBRARIES = ("zappend", "zarr", "xarray", "numpy", "dask", "numcodecs")


def main(arguments: list[str]) -> None:
    if arguments == ["--versions"]:
        print(json.dumps({name: importlib.metadata.version(name) for name in LIBRARIES}))
        return
    with open(arguments[0]) as file:
        request = json.load(file)
    warnings.simplefilter("ignore", FutureWarning)  # xarray: zarr_version is deprecated
    print(json.dumps({"seconds": append_slices(request)}))


def append_slices(request: dict) -> list[float]:
    import xarray as xr
    from zappend.api import Processor

    engine = "h5netcdf"
    items = request["slices"]
    if request["in_memory"]:
        items = [xr.open_dataset(path, engine=engine).load() for path in items]
    config = {
        "target_dir": request["target"],
        "append_dim": request["append_dim"],
        "slice_engine": engine,
        "variables": {
            name: {"encoding": {"chunks": chunks}} for name, chunks in request["chunks"].items()
        },
    }
    processor = Processor(config)
    seconds = []
    for index, item in enumerate(items):
        started = time.perf_counter()
        processor.process_slice(item, slice_index=index)
        seconds.append(time.perf_counter() - started)
    return seconds


if __name__ == "__main__":
    main(sys.argv[1:])
