"""Shared fixtures: sample slices, real NetCDF files, and a real S3 server (SeaweedFS).

Only fixtures live here; the helpers they are built from, and that tests import (``tip``,
``commits``, ``open_source``, ...), are in :mod:`versioncube.testing`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import icechunk
import pytest
import xarray as xr

from versioncube.samples import sample_slice, write_daily_files
from versioncube.testing.real_data import NAMES, example_path, split_into_steps
from versioncube.testing.seaweed import S3_BUCKET, SeaweedServer

icechunk.set_logs_filter("error")
os.environ["ICECHUNK_LOG"] = "error"  # and in the subprocesses tests start


@pytest.fixture
def small_slice():
    """A factory of small sample slices: small_slice("2024-03-01") or a list of labels."""

    def make(time, **options) -> xr.Dataset:
        options.setdefault("shape", (6, 12))
        return sample_slice(time, **options)

    return make


@pytest.fixture
def daily_files(tmp_path: Path) -> list[Path]:
    """Ten daily NetCDF files of two smooth variables."""
    return write_daily_files(tmp_path / "slices", "2024-03-01", 10, shape=(9, 18))


@pytest.fixture
def memory_target() -> str:
    """A fresh in-process repository target."""
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def eofs_steps(tmp_path_factory) -> dict[str, list[Path]]:
    """The eofs example files (real reanalysis fields), one file per time step."""
    folder = tmp_path_factory.mktemp("eofs")
    return {name: split_into_steps(example_path(name), folder / name) for name in NAMES}


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """The session's S3 server; yields the storage options for ``s3://cubes/<prefix>``."""
    with SeaweedServer(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server.options


@pytest.fixture
def private_seaweedfs(tmp_path):
    """An S3 server of this test's own, which the test may stop and start again."""
    with SeaweedServer(tmp_path / "seaweedfs") as server:
        yield server


@pytest.fixture
def s3_target(seaweedfs) -> tuple[str, dict]:
    """A fresh prefix on the SeaweedFS bucket and its storage options."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}", dict(seaweedfs)
