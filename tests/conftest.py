"""Shared fixtures: sample slices, real NetCDF files, and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import icechunk
import pytest
import xarray as xr
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
def private_seaweedfs(tmp_path):
    """An S3 server of this test's own, which the test may stop and start again."""
    with SeaweedServer(tmp_path / "seaweedfs") as server:
        yield server


@pytest.fixture
def s3_target(seaweedfs) -> tuple[str, dict]:
    """A fresh prefix on the SeaweedFS bucket and its storage options."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}", dict(seaweedfs)


def tip(cube) -> str:
    """The snapshot id at the tip of the cube's branch."""
    return cube.repository.lookup_branch(cube.branch)


def commits(cube) -> list:
    """The branch's commits, newest first, without Icechunk's initial snapshot."""
    return [s for s in cube.repository.ancestry(branch=cube.branch) if s.parent_id is not None]


def appended_in_order(cube) -> list[str]:
    """The slice identities the cube holds (its ledger), in the order of the commits that
    appended them."""
    by_commit = {snapshot: identity for identity, snapshot in cube.appended_slices().items()}
    return [by_commit[s.id] for s in reversed(commits(cube)) if s.id in by_commit]
