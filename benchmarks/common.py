"""What every benchmark shares: the sizes, the run context, timing and the machine description."""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Libraries whose versions go into every report (the zappend ones come from its own venv).
LIBRARIES = ("versioncube", "icechunk", "zarr", "xarray", "numpy", "dask", "numcodecs", "pandas")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each benchmark is; ``full`` is the size the goals of issue 6 are stated for."""

    throughput_slices: int = 100  # A: slices of one time step
    throughput_shape: tuple[int, int] = (720, 1440)  # A: lat x lon of each slice
    throughput_rounds: int = 3  # A: runs of every case, interleaved; the fastest one counts
    growth_slices: int = 1000  # B: tiny slices
    growth_window: int = 100  # B: appends averaged at the start and at the end
    growth_shape: tuple[int, int] = (16, 16)
    memory_shape: tuple[int, int, int] = (8, 8000, 8000)  # D: the big slice, 2 GB of float32
    memory_chunks: tuple[int, int, int] = (1, 2000, 2000)  # D: its dask chunks (16 MB)
    reads_commits: int = 1000  # E: commits in the cube whose first version and head are opened
    repeats: int = 5  # E: best of this many timings of each open and of `versioncube --help`
    writers_slices: int = 40  # W: slices every writer process appends
    writers_shape: tuple[int, int] = (180, 360)
    writers_rounds: int = 3  # W: runs of every case, interleaved; the fastest one counts
    history_commits: tuple[int, ...] = (100, 1000, 10000)  # H: sizes of the local cube
    history_s3_commits: tuple[int, ...] = (100, 1000)  # H: sizes of the cube on S3
    history_samples: int = 20  # H: one-call appends (and bare commits) per size
    history_processes: int = 3  # H: appends in a fresh process per size (local)
    levels_slices: int = 50  # L: slices appended to a pyramid and to a tree
    levels_shape: tuple[int, int] = (720, 1440)
    virtual_small_files: int = 100  # V: small NetCDF4 files (1 x 18 x 30 float64, zlib)
    virtual_large_files: int = 20  # V: larger NetCDF4 files of one field each
    virtual_large_shape: tuple[int, int] = (721, 1440)  # V: lat x lon of the larger files
    distributed_steps: int = 500  # X: time steps of the big slice (x shape x 4 B: 2 GB)
    distributed_shape: tuple[int, int] = (1000, 1000)  # X: y x x of the big slice (one chunk)
    distributed_files: int = 500  # X: files appended serially and with parallel
    distributed_file_shape: tuple[int, int] = (180, 360)
    archive_files: int = 200  # X: archive-like files (three zlib-compressed noisy fields)
    archive_file_shape: tuple[int, int] = (720, 1440)
    updates_rewrite_steps: int = 1000  # U: the cube 10 steps of which are rewritten
    updates_insert_steps: int = 10000  # U: the cube 10 steps are inserted in the middle of


SIZES: dict[str, Sizes] = {
    "full": Sizes(),
    "quick": Sizes(
        throughput_slices=20,
        throughput_shape=(360, 720),
        throughput_rounds=1,
        growth_slices=200,
        growth_window=20,
        memory_shape=(4, 4000, 4000),
        memory_chunks=(1, 1000, 1000),
        reads_commits=200,
        repeats=3,
        writers_slices=20,
        writers_rounds=1,
        history_commits=(100, 1000),
        history_s3_commits=(100,),
        history_samples=10,
        history_processes=2,
        levels_slices=20,
        levels_shape=(360, 720),
        virtual_small_files=30,
        virtual_large_files=6,
        virtual_large_shape=(361, 720),
        distributed_steps=100,
        distributed_files=100,
        archive_files=40,
        updates_rewrite_steps=200,
        updates_insert_steps=1000,
    ),
    # for the test suite: proves every part runs, measures nothing meaningful
    "tiny": Sizes(
        throughput_slices=3,
        throughput_shape=(18, 36),
        throughput_rounds=1,
        growth_slices=12,
        growth_window=4,
        growth_shape=(4, 4),
        memory_shape=(2, 64, 64),
        memory_chunks=(1, 32, 32),
        reads_commits=5,
        repeats=2,
        writers_slices=3,
        writers_shape=(9, 18),
        writers_rounds=1,
        history_commits=(4, 8),
        history_s3_commits=(4,),
        history_samples=2,
        history_processes=1,
        levels_slices=3,
        levels_shape=(18, 36),
        virtual_small_files=2,
        virtual_large_files=2,
        virtual_large_shape=(18, 36),
        distributed_steps=3,
        distributed_shape=(32, 32),
        distributed_files=4,
        distributed_file_shape=(4, 8),
        archive_files=3,
        archive_file_shape=(8, 16),
        updates_rewrite_steps=60,
        updates_insert_steps=100,
    ),
}


@dataclasses.dataclass
class Context:
    """What a benchmark gets: the sizes, a scratch folder, and the zappend interpreter if any."""

    sizes: Sizes
    workdir: Path
    zappend_python: Path | None = None  # the zappend venv's python, when C is selected
    trace_memory: bool = False  # D: also report the biggest Python allocations
    _cache: dict[str, Any] = dataclasses.field(default_factory=dict)

    def target(self, *names: str) -> Path:
        """A fresh (not yet existing) path under the scratch folder for a cube or store."""
        path = self.workdir.joinpath(*names)
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per run, so A and C (or B and C) time the very same slices."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def time_each(action: Callable[[Any], object], items: Sequence[Any]) -> list[float]:
    """Call ``action`` on every item in order; return the wall time of each call in seconds."""
    seconds = []
    for item in items:
        started = time.perf_counter()
        action(item)
        seconds.append(time.perf_counter() - started)
    return seconds


def best_time(action: Callable[[], object], repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls of ``action``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def folder_bytes(path: Path) -> int:
    """The bytes stored in the files below ``path`` (what a cube or store costs on disk)."""
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, and the load average (a shared machine is noisy)."""
    import psutil

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def library_versions() -> dict[str, str]:
    """Installed versions of the libraries in :data:`LIBRARIES`."""
    return {name: _version(name) for name in LIBRARIES}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision(folder: Path) -> str:
    """The commit the benchmarked code is at, with ``+changes`` when the tree is dirty."""
    try:
        head = _git(folder, "rev-parse", "--short", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _git(folder: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", *arguments], cwd=folder, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
