"""What the tests' local storage servers share: a process on 127.0.0.1 with free ports and a
folder of its own, started and waited for, and stopped by its PID.

:class:`LocalServer` runs the life cycle; each server (SeaweedFS for S3, Azurite for Azure, a
GCS emulator) says only how it is started, when it is ready, and how it is stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalServer:
    """A server process for the tests (see the module docstring).

    ``with Server(folder) as server:`` starts it and stops it on the way out, errors included;
    ``server.options`` are the storage options that reach it. Subclasses give ``name``,
    ``command()`` and ``probe()`` (one readiness check: return when ready, raise one of
    ``not_ready`` while it is not up yet), and may give ``environment()`` and ``stop_signal``.
    """

    name = "server"
    log_name = "server.log"
    ready_within = 60.0  # seconds
    poll_every = 0.2  # seconds between readiness checks
    stop_signal = signal.SIGKILL  # as a crash would; SIGTERM for servers that must save state
    stop_grace = 20.0  # seconds to wait after stop_signal before SIGKILL
    #: what ``probe()`` raises while the server is not up yet (an HTTP answer is not that)
    not_ready: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.options: dict[str, Any] = {}

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def environment(self) -> Mapping[str, str]:
        return os.environ

    def probe(self) -> None:
        raise NotImplementedError

    @property
    def log(self) -> Path:
        """The server's output: what it said, for the error when it does not come up."""
        return self.folder / self.log_name

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    #: times a server that lost one of its free ports to another process is started again
    port_retries = 3

    def start(self) -> None:
        """Start the server; when a port chosen free was taken before the server bound it
        (another test's server started meanwhile), choose new ports and start again."""
        for attempt in range(self.port_retries + 1):
            try:
                self._start_once()
                return
            except RuntimeError as error:
                if "address already in use" not in str(error) or attempt == self.port_retries:
                    raise
                type(self).__init__(self, self.folder)  # new free ports, and what follows

    def _start_once(self) -> None:
        command = list(self.command())
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env=dict(self.environment()),
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # a server that never came up is not left running
            raise

    def stop(self) -> None:
        """Stop the server by its PID and wait for it to be gone."""
        if self.process is None:
            return
        if self.process.poll() is None:  # not reaped yet, so the PID is still this server's
            os.kill(self.process.pid, self.stop_signal)
            try:
                self.process.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_within
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                said = self.log.read_text()[-2000:] if self.log.exists() else ""
                raise RuntimeError(f"{self.name} exited early:\n{said}")
            try:
                self.probe()
                return
            except urllib.error.HTTPError:
                raise  # the server answered, and said no: waiting will not help
            except self.not_ready:
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.poll_every)
