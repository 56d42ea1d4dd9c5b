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
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from email.utils import formatdate
from pathlib import Path

from versioncube.testing.servers import LocalServer

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


class AzuriteServer(LocalServer):
    """Azurite's blob service on 127.0.0.1 with its own folder and port (and the container
    ``cubes``), stopped by PID; ``server.options`` are the storage options for
    ``az://cubes/<prefix>``.

    It is stopped with SIGTERM, not SIGKILL: Azurite keeps its blob index in memory and saves
    it every five seconds, so a killed Azurite forgets writes it had acknowledged (a restart
    would not find the repository it had just created). Stopped this way it saves the index
    first, as a real storage service keeps what it acknowledged.
    """

    name = "Azurite"
    log_name = "azurite.log"
    stop_signal = signal.SIGTERM
    stop_grace = STOP_GRACE_SECONDS

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}"
        self.options = {
            "account": AZURE_ACCOUNT,
            "access_key": AZURE_KEY,
            "endpoint_url": self.endpoint,
        }

    def command(self) -> Sequence[str]:
        return [
            *azurite_blob_command(),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(self.folder), "--silent",
            "--disableTelemetry",  # no traffic anywhere but 127.0.0.1
            "--skipApiVersionCheck",  # object_store may send a newer API version
        ]  # fmt: skip

    def probe(self) -> None:
        """Ready when it answers; creates the container (Icechunk creates none)."""
        create_container(self.endpoint, AZURE_CONTAINER)


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
