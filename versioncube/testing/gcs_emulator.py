"""A Google Cloud Storage emulator for the tests: gcp-storage-emulator (PyPI) on 127.0.0.1.

A module here, as :mod:`versioncube.testing.seaweed` is; tests/conftest.py wraps it in
fixtures. The emulator comes with the test extras. Icechunk cannot keep a repository on it
(docs/targets.md says why: the emulator lacks the XML API and the conditional writes that
Icechunk's object store uses), so the tests use it to show that a ``gs://`` target reaches a
custom endpoint and to pin what the emulator lacks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from versioncube.testing.servers import LocalServer

GCS_BUCKET = "cubes"


class GcsEmulator(LocalServer):
    """gcp-storage-emulator on 127.0.0.1 with its own folder and port (and the bucket
    ``cubes``), killed by PID; ``server.options`` are the storage options for
    ``gs://cubes/<prefix>``; ``server.log`` has one line per request it served."""

    name = "gcp-storage-emulator"
    log_name = "gcs-emulator.log"

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = {"endpoint_url": self.url, "anonymous": True}

    def command(self) -> Sequence[str]:
        return [
            sys.executable, "-m", "gcp_storage_emulator", "start",
            "--host", "127.0.0.1", "--port", str(self.port), f"--default-bucket={GCS_BUCKET}",
        ]  # fmt: skip

    def environment(self) -> Mapping[str, str]:
        return {**os.environ, "STORAGE_BASE": str(self.folder)}  # its data stays in the folder

    def probe(self) -> None:
        """Ready when it answers its health check."""
        with contextlib.closing(urllib.request.urlopen(f"{self.url}/", timeout=5)):
            return
