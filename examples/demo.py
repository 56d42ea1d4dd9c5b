"""The versioncube demo: grow a cube from 30 daily NetCDF files, survive an interruption,
re-run safely, and look at the result. Offline, in well under a minute.

Run it with ``make demo``; everything it writes goes to ``demo-output/`` (replaced each run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

OUTPUT = Path(
    os.environ.get(
        "VERSIONCUBE_DEMO_OUTPUT", Path(__file__).resolve().parent.parent / "demo-output"
    )
)


def versioncube(*args: str) -> None:
    """Run the real command line, as a user would, and show what it prints."""
    shown = [arg if len(arg) < 40 else Path(arg).name for arg in args]
    print(f"\n$ versioncube {' '.join(shown[:6])}{' ...' if len(shown) > 6 else ''}", flush=True)
    subprocess.run([sys.executable, "-m", "versioncube", *args], check=True)


def main() -> None:
    from versioncube.samples import write_daily_files

    shutil.rmtree(OUTPUT, ignore_errors=True)
    slices = [str(path) for path in write_daily_files(OUTPUT / "slices", "2024-03-01", 30)]
    cube = str(OUTPUT / "cube.icechunk")
    print(f"wrote {len(slices)} daily NetCDF files (tas, pr on a 90 x 180 grid) to {OUTPUT}/slices")

    print("\n# 1. A nightly job appends the first 20 days, then the machine goes down.")
    versioncube("append", "-t", cube, *slices[:20])

    print("\n# 2. The same command over all 30 files resumes: the first 20 are skipped.")
    versioncube("append", "-t", cube, *slices)

    print("\n# 3. Running it again changes nothing: appends are idempotent.")
    versioncube("append", "-t", cube, *slices)

    print("\n# 4. A file from another grid is refused; the cube stays as it was.")
    bad = OUTPUT / "slices" / "2024-03-31-wrong-grid.nc"
    from versioncube.samples import sample_slice

    sample_slice("2024-03-31", shape=(45, 90)).to_netcdf(bad)
    result = subprocess.run([sys.executable, "-m", "versioncube", "append", "-t", cube, str(bad)])
    print(f"(exit status {result.returncode})")

    print("\n# 5. The head of the cube, and its latest commits:")
    versioncube("show", "-t", cube)
    versioncube("log", "-t", cube, "-n", "3")
    print(f"\nOpen it with xarray: versioncube.open_dataset({cube!r})")


if __name__ == "__main__":
    os.environ.setdefault("ICECHUNK_LOG", "error")
    main()
