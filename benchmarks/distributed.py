"""X. Distributed writes: a big lazy slice on dask's threaded scheduler vs a LocalCluster of 1
and 2 workers, and many files appended serially vs with ``parallel`` on 2 workers.

Each case runs in a fresh Python process (``python -m benchmarks.distributed CASE ...``), so
that its peak memory (``VmHWM``) is its own: the process's for the threaded scheduler, every
worker's (read through ``client.run``) on a cluster. The cluster is started before the clock
starts; the cube exists (one step) before it starts too. The big slice is generated lazily
from each chunk's position (:func:`versioncube.testing.cluster.generated_slice`), 1000 x 1000
float32 chunks of 4 MB, one time step each, as the cube stores it.

On one machine a cluster adds processes, not cores: the measured ratio says what it costs or
gains here, and it pays off only across machines (docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Context
from benchmarks.report import Comparison, Goal, Ref, Result, Section

KEY = "X"
THREADED = "big slice, threaded scheduler"
ONE_WORKER = "big slice, LocalCluster 1 worker"
TWO_WORKERS = "big slice, LocalCluster 2 workers"
SERIAL = "files, serial"
PARALLEL = "files, parallel on 2 workers"
ARCHIVE_SERIAL = "archive files, serial"
ARCHIVE_PARALLEL = "archive files, parallel on 2 workers"
NY = NX = 1000


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _big_slice(target: str, steps: int, workers: int, ny: int, nx: int) -> dict[str, Any]:
    import versioncube
    from versioncube.testing.cluster import generated_slice, local_cluster

    chunks = (1, ny, nx)
    config = {"variables": {"v": {"encoding": {"chunks": list(chunks)}}}}
    cube = versioncube.open_cube(target, config=config)
    cube.append(generated_slice(0, 1, ny, nx, chunks).load())
    big = generated_slice(1, steps, ny, nx, chunks)
    if workers == 0:
        started = time.perf_counter()
        cube.append(big)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "peak_worker_mb": _peak_mb(), "client_peak_mb": _peak_mb()}
    with local_cluster(workers, "4GiB") as client:
        client.run(_reset_peak)
        started = time.perf_counter()
        cube.append(big)
        seconds = time.perf_counter() - started
        peaks = client.run(_peak_mb)
    return {"seconds": seconds, "peak_worker_mb": max(peaks.values()), "client_peak_mb": _peak_mb()}


def _reset_peak() -> None:
    """Reset this process's VmHWM (Linux: write 5 to clear_refs), so it counts from now."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _archive_files(folder: str, count: int, ny: int, nx: int) -> list[Path]:
    """Daily files as archives hold them: three fields with noise (so that compression has
    work to do), zlib-compressed NetCDF4."""
    import numpy as np
    import pandas as pd

    from versioncube.samples import sample_slice

    Path(folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)
    paths = []
    for day in pd.date_range("2020-01-01", periods=count, freq="D"):
        dataset = sample_slice(day, shape=(ny, nx), variables=("tas", "pr", "psl"))
        for name, variable in dataset.data_vars.items():
            noise = rng.normal(0, 0.5, variable.shape).astype(variable.dtype)
            dataset[name] = variable + noise
        path = Path(folder) / f"{day:%Y-%m-%d}.nc"
        encoding = {name: {"zlib": True, "complevel": 4} for name in dataset.data_vars}
        dataset.to_netcdf(path, encoding=encoding)
        paths.append(path)
    return paths


def _files(target: str, folder: str, count: int, ny: int, nx: int, mode: str) -> dict[str, Any]:
    import versioncube
    from versioncube.samples import write_daily_files
    from versioncube.testing.cluster import local_cluster

    kind, _, parallel_mode = mode.partition("-")
    parallel = parallel_mode == "parallel"
    if kind == "archive":
        files = _archive_files(folder, count, ny, nx)
    else:
        files = write_daily_files(folder, "2020-01-01", count, shape=(ny, nx))
    versioncube.append(files[:1], target_dir=target)  # the cube exists before the clock starts
    files = files[1:]
    if not parallel:
        started = time.perf_counter()
        versioncube.append(files, target_dir=target)
        return {"seconds": time.perf_counter() - started, "files": len(files)}
    with local_cluster(2, "2GiB", set_as_default=False) as client:
        started = time.perf_counter()
        versioncube.append(
            files, target_dir=target, dask_scheduler=client.scheduler.address, parallel=True
        )
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "files": len(files)}


def _in_process(*arguments: str) -> dict[str, Any]:
    """Run one case in a fresh Python process; its JSON result."""
    env = {**os.environ, "ICECHUNK_LOG": "error"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.distributed", *arguments],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark X case {arguments[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(context: Context) -> Section:
    sizes = context.sizes
    steps, (ny, nx) = sizes.distributed_steps, sizes.distributed_shape
    megabytes = steps * ny * nx * 4 / 1e6
    results = []
    for case, workers in ((THREADED, 0), (ONE_WORKER, 1), (TWO_WORKERS, 2)):
        target = str(context.target("distributed", f"big-{workers}"))
        measured = _in_process("big", target, str(steps), str(workers), str(ny), str(nx))
        measured["megabytes"] = megabytes
        measured["mb_per_s"] = megabytes / measured["seconds"]
        results.append(
            Result(
                case,
                measured,
                f"{megabytes:.0f} MB in {measured['seconds']:.1f} s "
                f"({measured['mb_per_s']:.0f} MB/s), peak {measured['peak_worker_mb']:.0f} MB "
                f"per {'process' if workers == 0 else 'worker'}, one commit",
            )
        )
    file_cases = [
        (SERIAL, "small-serial", sizes.distributed_files, sizes.distributed_file_shape),
        (PARALLEL, "small-parallel", sizes.distributed_files, sizes.distributed_file_shape),
        (ARCHIVE_SERIAL, "archive-serial", sizes.archive_files, sizes.archive_file_shape),
        (ARCHIVE_PARALLEL, "archive-parallel", sizes.archive_files, sizes.archive_file_shape),
    ]
    for case, mode, count, (fy, fx) in file_cases:
        target = str(context.target("distributed", f"files-{mode}"))
        folder = str(context.target("distributed", f"files-{mode}-input"))
        measured = _in_process("files", target, folder, str(count), str(fy), str(fx), mode)
        measured["files_per_s"] = measured["files"] / measured["seconds"]
        results.append(
            Result(
                case,
                measured,
                f"{measured['files']} files of {fy} x {fx} in {measured['seconds']:.1f} s "
                f"({measured['files_per_s']:.1f} files/s), one commit each",
            )
        )
    comparisons = [
        Comparison(
            f"{TWO_WORKERS} / {THREADED}, seconds",
            Ref(KEY, TWO_WORKERS, "seconds"),
            Ref(KEY, THREADED, "seconds"),
        ),
        Comparison(
            f"{TWO_WORKERS} / {ONE_WORKER}, seconds",
            Ref(KEY, TWO_WORKERS, "seconds"),
            Ref(KEY, ONE_WORKER, "seconds"),
            Goal("<=", 1.0),
        ),
        Comparison(
            f"{PARALLEL} / {SERIAL}, seconds",
            Ref(KEY, PARALLEL, "seconds"),
            Ref(KEY, SERIAL, "seconds"),
            Goal("<=", 1.0),
        ),
        Comparison(
            f"{ARCHIVE_PARALLEL} / {ARCHIVE_SERIAL}, seconds",
            Ref(KEY, ARCHIVE_PARALLEL, "seconds"),
            Ref(KEY, ARCHIVE_SERIAL, "seconds"),
            Goal("<=", 1.0),
        ),
    ]
    return Section(
        KEY,
        "Distributed writes",
        f"A {megabytes:.0f} MB lazy slice (1 x {ny} x {nx} float32 chunks) appended as one commit "
        f"on dask's threaded scheduler and on a LocalCluster of 1 and 2 worker processes (one "
        f"thread each); {sizes.distributed_files} small NetCDF files of "
        f"{' x '.join(map(str, sizes.distributed_file_shape))} (two fields, uncompressed) and "
        f"{sizes.archive_files} archive-like NetCDF4 files of "
        f"{' x '.join(map(str, sizes.archive_file_shape))} (three noisy float32 fields, zlib "
        "level 4) appended one commit each, serially and with parallel on 2 workers (the cube "
        "holds the first file before the clock starts). Each case runs in its own process; "
        "peak memory is VmHWM. On one machine a cluster adds processes, not cores.",
        results,
        comparisons,
    )


def main(arguments: list[str]) -> None:
    case, *rest = arguments
    if case == "big":
        target, steps, workers, ny, nx = rest
        result = _big_slice(target, int(steps), int(workers), int(ny), int(nx))
    else:
        target, folder, count, ny, nx, mode = rest
        result = _files(target, folder, int(count), int(ny), int(nx), mode)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
