"""C. zappend: A's and B's slices appended with zappend 0.8, compared with versioncube.

zappend needs zarr 2 and versioncube zarr 3, so zappend runs in its own virtual environment
(``benchmarks/.zappend-venv``, created on first use) through :mod:`benchmarks.zappend_runner`,
which times each append inside that process. Slices reach it as NetCDF files; for the
in-memory case it loads them all before timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import growth, throughput
from benchmarks.common import Context
from benchmarks.report import Comparison, Goal, Ref, Section
from benchmarks.workloads import (
    APPEND_DIM,
    DATA_VARIABLES,
    VERSIONCUBE,
    data_megabytes,
    growth_result,
    throughput_result,
)

KEY = "C"
VENV = Path(__file__).resolve().parent / ".zappend-venv"
REQUIREMENTS = ("zappend==0.8.0", "zarr>=2.18,<3", "xarray==2026.7.*", "h5netcdf", "h5py")
RUNNER = Path(__file__).resolve().with_name("zappend_runner.py")
IN_MEMORY = "zappend, A's slices in memory"
FROM_FILES = "zappend, A's slices from NetCDF files"
TINY = "zappend, B's tiny slices in memory"


def zappend_python(venv: Path = VENV) -> Path:
    """The python of zappend's venv, created (or re-created) when missing or outdated."""
    python = venv / "bin" / "python"
    marker = venv / "benchmark-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"creating {venv} for zappend: {', '.join(REQUIREMENTS)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def zappend_versions(python: Path) -> dict[str, str]:
    """Versions of zappend and its libraries in its venv."""
    return json.loads(_run_runner(python, "--versions"))


def run_zappend(
    python: Path, files: Sequence[Path], target: Path, *, in_memory: bool
) -> list[float]:
    """Append ``files`` to a new Zarr store at ``target`` with zappend; seconds per append."""
    shape = _chunk_shape(files[0])
    request = {
        "target": str(target),
        "slices": [str(path) for path in files],
        "in_memory": in_memory,
        "chunks": {name: shape for name in DATA_VARIABLES},
        "append_dim": APPEND_DIM,
    }
    request_file = target.parent / f"{target.name}-request.json"
    request_file.write_text(json.dumps(request))
    return json.loads(_run_runner(python, str(request_file)))["seconds"]


def _chunk_shape(path: Path) -> list[int]:
    """One chunk per time step holding the full field, as every other tool stores."""
    import xarray as xr

    with xr.open_dataset(path) as dataset:
        sizes = dataset[DATA_VARIABLES[0]].sizes
        return [1 if dim == APPEND_DIM else size for dim, size in sizes.items()]


def _run_runner(python: Path, argument: str) -> str:
    done = subprocess.run(
        [str(python), str(RUNNER), argument], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"zappend runner failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def run(context: Context) -> Section:
    python = context.zappend_python or zappend_python()
    slices = throughput.workload(context)
    megabytes = data_megabytes(slices.slices())
    results = []
    for case, in_memory, folder in ((IN_MEMORY, True, "in-memory"), (FROM_FILES, False, "files")):
        target = context.target("zappend", folder)
        seconds = run_zappend(python, slices.files(), target, in_memory=in_memory)
        results.append(throughput_result(case, seconds, megabytes, target))
    tiny = growth.workload(context).files()
    seconds = run_zappend(python, tiny, context.target("zappend", "tiny"), in_memory=True)
    window = context.sizes.growth_window
    results.append(growth_result(TINY, seconds, window))

    comparisons = [
        Comparison(
            f"A: {VERSIONCUBE} / zappend, MB/s, slices in memory",
            Ref(throughput.KEY, VERSIONCUBE, "mb_per_s"),
            Ref(KEY, IN_MEMORY, "mb_per_s"),
            Goal(">=", 1.0),
        ),
        Comparison(
            f"A: {VERSIONCUBE} / zappend, MB/s, slices from NetCDF files",
            Ref(throughput.KEY, throughput.VERSIONCUBE_FILES, "mb_per_s"),
            Ref(KEY, FROM_FILES, "mb_per_s"),
            Goal(">=", 1.0),
        ),
        Comparison(
            f"B: zappend: last {window} / first {window}, ms per append",
            Ref(KEY, TINY, "last_ms"),
            Ref(KEY, TINY, "first_ms"),
        ),
        Comparison(
            f"B: {VERSIONCUBE} / zappend, last {window} ms per append",
            Ref(growth.KEY, VERSIONCUBE, "last_ms"),
            Ref(KEY, TINY, "last_ms"),
        ),
    ]
    description = (
        "zappend 0.8.0 in its own venv, appending A's and B's slices with the same chunks "
        "(configured in `variables`) and its own default codec (zarr 2: Blosc lz4), one "
        "`Processor.process_slice` per slice, timed inside its process. Its ratios to "
        "versioncube take versioncube's numbers from A and B."
    )
    return Section(KEY, "zappend", description, results, comparisons)
