"""Real reanalysis fields (the eofs example files), delivered one file per time step."""

from __future__ import annotations

import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.testing import commits
from versioncube.testing.real_data import AMBIGUOUS_REFERENCE_DATE, open_source

pytestmark = [
    pytest.mark.filterwarnings(f"ignore:{AMBIGUOUS_REFERENCE_DATE}"),
    pytest.mark.slow,  # hundreds of real files, a few seconds each test
]


@pytest.mark.parametrize("name", ["hgt_djf", "sst_ndjfm_anom"])
def test_per_step_files_rebuild_the_original(name, eofs_steps, tmp_path):
    paths = eofs_steps[name]
    target = tmp_path / "cube"

    assert versioncube.append(paths, target_dir=str(target)) == len(paths)

    cube = open_cube(target)
    assert len(commits(cube)) == len(paths)
    xr.testing.assert_identical(cube.to_xarray().load(), open_source(name))


def test_interrupted_real_run_resumes(eofs_steps, tmp_path):
    paths = eofs_steps["sst_ndjfm_anom"]
    target = str(tmp_path / "cube")
    versioncube.append(paths[:17], target_dir=target)

    assert versioncube.append(paths, target_dir=target) == len(paths) - 17
    xr.testing.assert_identical(open_cube(target).to_xarray().load(), open_source("sst_ndjfm_anom"))
