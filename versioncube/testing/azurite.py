"""A real Azure Blob Storage server for the tests: Azurite, Microsoft's emulator, on 127.0.0.1.

A module here, as :mod:`versioncube.testing.seaweed` is; tests/conftest.py wraps it in
fixtures. Azurite comes from the npm registry: the version is pinned in the repository's
ci/azurite/package-lock.json, and the first server installs it into .tools/azurite with the
machine's Node.js (``npm ci``), so that ``make test`` needs no other setup step.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository (an editable install's checkout)
PINNED = ROOT / "ci" / "azurite"  # package.json and package-lock.json
INSTALLED = ROOT / ".tools" / "azurite"

#: Azurite's well-known development account and its published key (the same in every Azurite)
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURE_CONTAINER = "cubes"
STOP_GRACE_SECONDS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def azurite_blob_command() -> list[str]:
    """The command that runs Azurite's blob service, installing the pinned Azurite if needed."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    assert node and npm, "Azurite needs Node.js and npm (Debian: apt-get install nodejs npm)"
    main = INSTALLED / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    lock = (PINNED / "package-lock.json").read_bytes()
    stamp = INSTALLED / ".installed-lock"
    INSTALLED.mkdir(parents=True, exist_ok=True)
    with open(INSTALLED.parent / ".azurite-install.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one install at a time, across test runs
        if not (main.exists() and stamp.exists() and stamp.read_bytes() == lock):
            for name in ("package.json", "package-lock.json"):
                shutil.copy(PINNED / name, INSTALLED / name)
            subprocess.run(
                [npm, "ci", "--prefix", str(INSTALLED), "--ignore-scripts", "--no-audit",
                 "--no-fund", "--loglevel=error"],
                check=True, timeout=600,
            )  # fmt: skip
            stamp.write_bytes(lock)
    return [node, str(main)]


class AzuriteServer:
    """Azurite's blob service on 127.0.0.1 with its own folder and port, stopped by PID.

    ``with AzuriteServer(folder) as server:`` starts it (with the container ``cubes``) and
    stops it on the way out, errors included; ``server.options`` are the storage options for
    ``az://cubes/<prefix>``.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}"
        self.process: subprocess.Popen[bytes] | None = None
        self.options: dict[str, Any] = {
            "account": AZURE_ACCOUNT,
            "access_key": AZURE_KEY,
            "endpoint_url": self.endpoint,
        }

    def __enter__(self) -> AzuriteServer:
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
        command = [
            *azurite_blob_command(),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(self.folder), "--silent",
            "--disableTelemetry",  # no traffic anywhere but 127.0.0.1
            "--skipApiVersionCheck",  # object_store may send a newer API version
        ]  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "azurite.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # a server that never came up is not left running
            raise

    def stop(self) -> None:
        """Stop the server by its PID and wait for it to be gone.

        SIGTERM, not SIGKILL: Azurite keeps its blob index in memory and saves it every five
        seconds, so a killed Azurite forgets writes it had acknowledged (a restart would not
        find the repository it had just created). Stopped this way it saves the index first,
        as a real storage service keeps what it acknowledged.
        """
        if self.process is None:
            return
        if self.process.poll() is None:  # not reaped yet, so the PID is still this server's
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _wait_until_ready(self) -> None:
        """Wait until the server answers, and create the container (Icechunk creates none)."""
        deadline = time.monotonic() + 60
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.folder / "azurite.log").read_text()[-2000:]
                raise RuntimeError(f"Azurite exited early:\n{log}")
            try:
                create_container(self.endpoint, AZURE_CONTAINER)
                return
            except urllib.error.HTTPError:
                raise  # the server answered, and said no: waiting will not help
            except OSError:  # not listening yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def create_container(endpoint: str, container: str) -> None:
    """Create a container with a Shared Key signed request; one that exists already is fine."""
    url = f"{endpoint}/{container}?restype=container"
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items()))
    content_type = "application/octet-stream"  # urllib would add a form type otherwise
    path = urllib.parse.urlparse(url).path
    # the verb and eleven standard headers (only Content-Type set; a zero length is left
    # empty), then the x-ms-* headers and the resource with the account in front
    standard = ["PUT", "", "", "", "", content_type, "", "", "", "", "", ""]
    resource = f"/{AZURE_ACCOUNT}{path}\nrestype:container"
    string_to_sign = "\n".join(standard) + "\n" + canonical_headers + resource
    digest = hmac.new(base64.b64decode(AZURE_KEY), string_to_sign.encode(), hashlib.sha256)
    signature = base64.b64encode(digest.digest()).decode()
    headers |= {
        "Content-Type": content_type,
        "Authorization": f"SharedKey {AZURE_ACCOUNT}:{signature}",
    }
    request = urllib.request.Request(url, data=b"", method="PUT", headers=headers)
    try:
        with contextlib.closing(urllib.request.urlopen(request, timeout=10)):
            return
    except urllib.error.HTTPError as error:
        if error.code != 409:  # 409: the container exists (a restarted server)
            raise
