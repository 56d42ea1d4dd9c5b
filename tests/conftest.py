"""Shared fixtures: sample slices, real NetCDF files, and real object-store servers: S3
(SeaweedFS), Azure Blob Storage (Azurite) and a Google Cloud Storage emulator."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import icechunk
import pytest
import xarray as xr
from azurite import AZURE_CONTAINER, AzuriteServer
from gcs_emulator import GcsEmulator
from seaweed import S3_BUCKET, SeaweedServer

from versioncube.samples import sample_slice, write_daily_files

icechunk.set_logs_filter("error")
os.environ["ICECHUNK_LOG"] = "error"  # and in the subprocesses tests start

#: hgt_djf.nc says "hours since 1-1-1", which xarray reads with a warning about the year
AMBIGUOUS_REFERENCE_DATE = "Ambiguous reference date string"


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


def split_into_steps(source: Path, folder: Path) -> list[Path]:
    """Write each time step of a NetCDF file into its own file, as archives deliver them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", AMBIGUOUS_REFERENCE_DATE)
        dataset = xr.open_dataset(source).load()
        for index in range(dataset.sizes["time"]):
            path = folder / f"{source.stem}_{index:03d}.nc"
            dataset.isel(time=[index]).to_netcdf(path)
            paths.append(path)
    return paths


@pytest.fixture(scope="session")
def eofs_steps(tmp_path_factory) -> dict[str, list[Path]]:
    """The eofs example files (real reanalysis fields), one file per time step."""
    from eofs.examples import example_data_path

    folder = tmp_path_factory.mktemp("eofs")
    return {
        name: split_into_steps(Path(example_data_path(f"{name}.nc")), folder / name)
        for name in ("hgt_djf", "sst_ndjfm_anom")
    }


def open_source(name: str) -> xr.Dataset:
    from eofs.examples import example_data_path

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", AMBIGUOUS_REFERENCE_DATE)
        return xr.open_dataset(example_data_path(f"{name}.nc")).load()


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


#: The object stores whose local server Icechunk can keep a cube on. Google Cloud Storage is
#: not among them: its emulator lacks the API and the conditional writes Icechunk needs.
CLOUDS = ["s3", "azure"]


@pytest.fixture(params=CLOUDS)
def cloud_target(request) -> tuple[str, dict]:
    """A fresh target on each object store's server in turn, with its storage options."""
    return request.getfixturevalue(f"{request.param}_target")


#: Per object store: its server class and a target in the bucket (container) it creates.
PRIVATE_SERVERS = {
    "s3": (SeaweedServer, f"s3://{S3_BUCKET}/down"),
    "azure": (AzuriteServer, f"az://{AZURE_CONTAINER}/down"),
}


@pytest.fixture(params=CLOUDS)
def private_cloud_server(request, tmp_path):
    """A server of this test's own, which the test may stop and start again, for each object
    store in turn; yields the server and a target on it."""
    server_class, target = PRIVATE_SERVERS[request.param]
    with server_class(tmp_path / request.param) as server:
        yield server, target


def tip(cube) -> str:
    """The snapshot id at the tip of the cube's branch."""
    return cube.repository.lookup_branch(cube.branch)


def commits(cube) -> list:
    """The branch's commits, newest first, without Icechunk's initial snapshot."""
    return [s for s in cube.repository.ancestry(branch=cube.branch) if s.parent_id is not None]


#: Downloads the tests need (cfgrib's GRIB samples), kept between runs.
TEST_CACHE = Path(os.environ.get("VERSIONCUBE_TEST_CACHE", Path(__file__).parent / ".cache"))
CFGRIB_SDIST = "cfgrib==0.9.15.1"


@pytest.fixture(scope="session")
def grib_samples() -> Path:
    """cfgrib's sample GRIB files (its sdist ships them): fetched from PyPI with pip on first
    use, so that a fresh machine with only PyPI access has them."""
    import subprocess
    import sys
    import tarfile

    name = CFGRIB_SDIST.replace("==", "-")
    folder = TEST_CACHE / name / "tests" / "sample-data"
    if not folder.is_dir():
        TEST_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", CFGRIB_SDIST, "--no-binary", ":all:",
             "--no-deps", "-d", str(TEST_CACHE)],
            check=True,
        )  # fmt: skip
        with tarfile.open(TEST_CACHE / f"{name}.tar.gz") as sdist:
            samples = [m for m in sdist.getmembers() if "/tests/sample-data/" in m.name]
            sdist.extractall(TEST_CACHE, members=samples, filter="data")
    return folder
