"""`make demo` keeps working: run the demo script and check what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from versioncube import open_cube
from versioncube.testing import commits

pytestmark = pytest.mark.slow  # the demo script runs in a subprocess, CLI runs of its own

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_runs_resumes_and_refuses_the_bad_file(tmp_path):
    env = {**os.environ, "VERSIONCUBE_DEMO_OUTPUT": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr

    out = run.stdout
    assert "appended 20 slices, skipped 0" in out
    assert "appended 10 slices, skipped 20" in out
    assert "appended 0 slices, skipped 30" in out
    assert "Error: slice 2024-03-31-wrong-grid.nc: dimension 'lat'" in run.stderr
    cube = open_cube(tmp_path / "cube.icechunk")
    assert len(commits(cube)) == 30
    slices = sorted((tmp_path / "slices").glob("2024-03-??.nc"))
    xr.testing.assert_identical(cube.to_xarray().load(), xr.open_mfdataset(slices).load())
