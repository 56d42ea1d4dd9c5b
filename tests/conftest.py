"""Shared fixtures: sample slices, real NetCDF files, and real object-store servers: S3
(SeaweedFS), Azure Blob Storage (Azurite) and a Google Cloud Storage emulator.

Only fixtures live here; the helpers they are built from, and that tests import (``tip``,
``commits``, ``open_source``, ``CLOUDS``, ...), are in :mod:`versioncube.testing`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import icechunk
import pytest
import xarray as xr

from versioncube.samples import sample_slice, write_daily_files
from versioncube.testing.azurite import AZURE_CONTAINER, AzuriteServer
from versioncube.testing.clouds import CLOUDS, PRIVATE_SERVERS
from versioncube.testing.gcs_emulator import GcsEmulator
from versioncube.testing.grib_samples import cfgrib_samples
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
def s3_target(seaweedfs) -> tuple[str, dict]:
    """A fresh prefix on the SeaweedFS bucket and its storage options."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}", dict(seaweedfs)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """The session's Azure Blob server; yields the storage options for ``az://cubes/<prefix>``."""
    with AzuriteServer(tmp_path_factory.mktemp("azurite")) as server:
        yield server.options


@pytest.fixture
def azure_target(azurite) -> tuple[str, dict]:
    """A fresh prefix in the Azurite container and its storage options."""
    return f"az://{AZURE_CONTAINER}/{uuid.uuid4().hex}", dict(azurite)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """The session's Google Cloud Storage emulator (which Icechunk cannot use: see
    docs/targets.md); yields the server, whose ``options`` are for ``gs://cubes/<prefix>``."""
    with GcsEmulator(tmp_path_factory.mktemp("gcs-emulator")) as server:
        yield server


@pytest.fixture(params=CLOUDS)
def cloud_target(request) -> tuple[str, dict]:
    """A fresh target on each object store's server in turn, with its storage options."""
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture(params=CLOUDS)
def private_cloud_server(request, tmp_path):
    """A server of this test's own, which the test may stop and start again, for each object
    store in turn; yields the server and a target on it."""
    server_class, target = PRIVATE_SERVERS[request.param]
    with server_class(tmp_path / request.param) as server:
        yield server, target


@pytest.fixture(scope="session")
def grib_samples() -> Path:
    """cfgrib's sample GRIB files (its sdist ships them), fetched from PyPI on first use."""
    return cfgrib_samples()


@pytest.fixture(scope="session")
def dask_cluster():
    """The session's dask LocalCluster (2 worker processes, 1 thread each); yields a client on
    it that is not dask's default (tests point versioncube at ``client.scheduler.address``, or
    make a client of their own current)."""
    from versioncube.testing.cluster import local_cluster

    with local_cluster(2, "1.5GiB", set_as_default=False) as client:
        yield client
