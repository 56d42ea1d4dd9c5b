"""The object stores the tests keep cubes on, each with the local server that stands in for it.

One list, so that the cloud tests (tests/store/test_s3.py, the racing commits of
tests/store/test_commit.py) and the fixtures that start the servers (tests/conftest.py) agree
on which stores there are.
"""

from __future__ import annotations

from versioncube.testing.azurite import AZURE_CONTAINER, AzuriteServer
from versioncube.testing.seaweed import S3_BUCKET, SeaweedServer

#: The object stores whose local server Icechunk can keep a cube on. Google Cloud Storage is
#: not among them: its emulator lacks the API and the conditional writes Icechunk needs.
CLOUDS = ["s3", "azure"]

#: Per object store: its server class and a target in the bucket (container) it creates.
PRIVATE_SERVERS: dict[str, tuple[type[SeaweedServer] | type[AzuriteServer], str]] = {
    "s3": (SeaweedServer, f"s3://{S3_BUCKET}/down"),
    "azure": (AzuriteServer, f"az://{AZURE_CONTAINER}/down"),
}
