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
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

GCS_BUCKET = "cubes"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GcsEmulator:
    """gcp-storage-emulator on 127.0.0.1 with its own folder and port, stopped by PID.

    ``with GcsEmulator(folder) as server:`` starts it (with the bucket ``cubes``) and stops it
    on the way out, errors included; ``server.options`` are the storage options for
    ``gs://cubes/<prefix>``.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.options: dict[str, Any] = {"endpoint_url": self.url, "anonymous": True}

    def __enter__(self) -> GcsEmulator:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def log(self) -> Path:
        """The emulator's log: one line per request it served."""
        return self.folder / "gcs-emulator.log"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gcp_storage_emulator", "start",
            "--host", "127.0.0.1", "--port", str(self.port), f"--default-bucket={GCS_BUCKET}",
        ]  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "STORAGE_BASE": str(self.folder)}  # its data stays in the folder
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # a server that never came up is not left running
            raise

    def stop(self) -> None:
        """Kill the server by its PID and wait for it to be gone."""
        if self.process is None:
            return
        if self.process.poll() is None:  # not reaped yet, so the PID is still this server's
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _wait_until_ready(self) -> None:
        """Wait until the emulator answers its health check."""
        deadline = time.monotonic() + 60
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited early:\n{self.log.read_text()}")
            try:
                with contextlib.closing(urllib.request.urlopen(f"{self.url}/", timeout=5)):
                    return
            except urllib.error.HTTPError:
                raise  # the server answered, and said no: waiting will not help
            except OSError:  # not listening yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
