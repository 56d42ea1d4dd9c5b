"""cfgrib's sample GRIB files, fetched reproducibly: its sdist on PyPI ships them.

``cfgrib_samples(cache)`` downloads ``cfgrib==0.9.15.1``'s sdist with pip (only PyPI access is
needed) into ``cache`` once and extracts ``tests/sample-data``; later calls reuse it. It fails
loudly (never skips) when the download fails. ``split_by_time`` cuts a GRIB file into files of
whole analysis times, as archives deliver them (GRIB files are concatenated messages).

(A GRIB-sample fixture with the same source is being added for copied GRIB slices on the
``inputs`` branch; the two are meant to be merged into this helper.)
"""

from __future__ import annotations

import collections
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

CFGRIB_SDIST = "cfgrib==0.9.15.1"
#: Downloads the tests need, kept between runs.
#: tests/.cache in the repository checkout (gitignored), unless VERSIONCUBE_TEST_CACHE says.
TEST_CACHE = Path(
    os.environ.get(
        "VERSIONCUBE_TEST_CACHE", Path(__file__).resolve().parents[2] / "tests" / ".cache"
    )
)


def cfgrib_samples(cache: Path = TEST_CACHE) -> Path:
    """The folder of cfgrib's sample GRIB files (downloaded on first use; test processes
    running side by side, as pytest-xdist's workers do, download it once: the first holds a
    lock while it downloads and extracts, the others wait and reuse it)."""
    name = CFGRIB_SDIST.replace("==", "-")
    folder = cache / name / "tests" / "sample-data"
    if folder.is_dir() and any(folder.glob("*.grib")):
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if folder.is_dir() and any(folder.glob("*.grib")):
            return folder  # another process fetched it while this one waited
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", CFGRIB_SDIST, "--no-binary",
             ":all:", "--no-deps", "-d", str(cache)],
            check=True,
        )  # fmt: skip
        # extracted beside, then renamed into place: a process that does not wait for the
        # lock (the check above) never sees half the files
        partial = cache / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(cache / f"{name}.tar.gz") as sdist:
            samples = [m for m in sdist.getmembers() if "/tests/sample-data/" in m.name]
            sdist.extractall(partial, members=samples, filter="data")
        shutil.rmtree(cache / name, ignore_errors=True)
        (partial / name).rename(cache / name)
        partial.rmdir()
    return folder


def split_by_time(source: Path, folder: Path, steps: int = 1) -> list[Path]:
    """Write the messages of ``source`` into files of ``steps`` analysis times each."""
    import eccodes

    by_time: dict[tuple[int, int], list[bytes]] = collections.defaultdict(list)
    with source.open("rb") as file:
        while (message := eccodes.codes_grib_new_from_file(file)) is not None:
            when = (eccodes.codes_get(message, "dataDate"), eccodes.codes_get(message, "dataTime"))
            by_time[when].append(eccodes.codes_get_message(message))
            eccodes.codes_release(message)
    times = sorted(by_time)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(times), steps):
        path = folder / f"{source.stem}-{start:02d}.grib"
        path.write_bytes(
            b"".join(m for when in times[start : start + steps] for m in by_time[when])
        )
        paths.append(path)
    return paths


def dated_copies(source: Path, folder: Path, dates: list[int]) -> list[Path]:
    """Copies of a one-message GRIB file with other data dates (``20240301``, ...)."""
    import eccodes

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with source.open("rb") as file:
        message = eccodes.codes_grib_new_from_file(file)
    try:
        for date in dates:
            eccodes.codes_set(message, "dataDate", date)
            path = folder / f"{source.stem}-{date}.grib"
            path.write_bytes(eccodes.codes_get_message(message))
            paths.append(path)
    finally:
        eccodes.codes_release(message)
    return paths
