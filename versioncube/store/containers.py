"""Virtual chunk containers: where a cube's referenced (virtual) chunks may come from, and who
may read them.

A cube of virtual slices holds references into files that live outside the repository. Icechunk
reads a reference only when its URL falls under a *virtual chunk container* of the repository's
configuration, and only when the reader *authorised* that container when it opened the
repository (so that opening someone else's cube never reads your files or spends your
credentials unasked).

versioncube creates one container per folder of slice files (``file:///data/2024/``,
``s3://bucket/archive/``), or per prefix named in ``virtual_containers``, saves it in the
repository's configuration, and records in the repository's metadata how its files are
reached (:data:`ACCESS_KINDS`). Opening a cube through versioncube authorises, by default,
the containers it set up for local folders and those whose credentials come from the
environment or that need none; containers reached with explicit keys need the reader's
credentials (``virtual_credentials``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import icechunk

from versioncube.errors import ConfigError, VirtualAccessError
from versioncube.store.target import s3_options

#: How the files under a container are reached: ``local`` files, S3 with credentials from the
#: ``env``\ ironment, ``anonymous`` S3, or S3 with explicit ``keys`` (which are never stored).
AccessKind = Literal["local", "env", "anonymous", "keys"]
ACCESS_KINDS: tuple[AccessKind, ...] = ("local", "env", "anonymous", "keys")
#: Access kinds authorised by default when versioncube opens a cube.
DEFAULT_AUTHORISED: frozenset[str] = frozenset({"local", "env", "anonymous"})
#: The key, in versioncube's settings in the repository metadata, of the containers it set up.
SETTINGS_CONTAINERS = "virtual_containers"

#: Credentials as a user gives them: "local", "env", "anonymous", a mapping of S3 keys, or an
#: Icechunk credentials object.
CredentialsLike = str | Mapping[str, Any] | Any


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """One container: its URL prefix (ending in ``/``), how it is reached, and its store."""

    prefix: str
    access: AccessKind
    store_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def container(self) -> icechunk.VirtualChunkContainer:
        """The Icechunk container for the repository's configuration."""
        if self.prefix.startswith("file://"):
            return icechunk.VirtualChunkContainer(
                self.prefix, icechunk.local_filesystem_store(urlparse(self.prefix).path)
            )
        options = self.store_options
        endpoint = options.get("endpoint_url")
        store = icechunk.s3_store(
            region=options.get("region"),
            endpoint_url=endpoint,
            allow_http=bool(options.get("allow_http", False)),
            anonymous=self.access == "anonymous",
            s3_compatible=endpoint is not None,
            force_path_style=bool(options.get("force_path_style", endpoint is not None)),
        )
        return icechunk.VirtualChunkContainer(self.prefix, store)

    def writer_credentials(self, storage_options: Mapping[str, Any]) -> Any:
        """What the writer authorises the container with (it has the slices' own options)."""
        if self.access == "keys":
            keys = s3_options(storage_options, "slice_storage_options")
            return icechunk.s3_credentials(
                access_key_id=keys.get("access_key_id"),
                secret_access_key=keys.get("secret_access_key"),
                session_token=keys.get("session_token"),
            )
        return credentials_for(self.prefix, self.access)


def location_url(location: str) -> str:
    """A slice location as the URL its references carry: ``file:///abs/path`` or the URI."""
    scheme = urlparse(location).scheme
    if len(scheme) <= 1:
        return Path(location).expanduser().absolute().as_uri()
    return location


def folder_prefix(url: str) -> str:
    """The container prefix of a file's own folder: ``file:///data/2024/`` for a file in it."""
    return url.rsplit("/", 1)[0] + "/"


def normalised_prefix(prefix: str) -> str:
    """A configured container prefix as a URL ending in ``/`` (local paths become file://)."""
    url = location_url(prefix)
    return url if url.endswith("/") else url + "/"


def container_for(
    url: str, storage_options: Mapping[str, Any], configured: Iterable[str] = ()
) -> ContainerSpec:
    """The container that covers a slice file's URL: the longest configured prefix it falls
    under (``virtual_containers``), else its own folder."""
    scheme = urlparse(url).scheme
    if scheme not in ("file", "s3"):
        raise ConfigError(
            f"virtual slices must be local files or s3:// objects, not {scheme}:// ({url}); "
            "append it without --virtual to copy it"
        )
    candidates = [normalised_prefix(prefix) for prefix in configured]
    covering = [prefix for prefix in candidates if url.startswith(prefix)]
    prefix = max(covering, key=len) if covering else folder_prefix(url)
    if scheme == "file":
        return ContainerSpec(prefix, "local")
    options = s3_options(storage_options, "slice_storage_options")
    if options.get("access_key_id"):
        access: AccessKind = "keys"
    elif options.get("anonymous"):
        access = "anonymous"
    else:
        access = "env"
    kept = ("region", "endpoint_url", "allow_http", "force_path_style")
    store: dict[str, Any] = {key: options[key] for key in kept if key in options}
    return ContainerSpec(prefix, access, store)


def credentials_for(prefix: str, spec: CredentialsLike) -> Any:
    """Icechunk credentials for a container from what a user gives (see the module docstring)."""
    scheme = urlparse(prefix).scheme
    if isinstance(spec, str):
        if spec == "local":
            return icechunk.credentials.LocalFileSystemAccess
        if spec == "env" and scheme in ("s3", "file"):
            return icechunk.s3_from_env_credentials()
        if spec == "env" and scheme in ("gs", "gcs"):
            return icechunk.gcs_from_env_credentials()
        if spec == "anonymous":
            return icechunk.s3_anonymous_credentials()
        raise ConfigError(
            f'virtual_credentials for {prefix!r}: {spec!r} is not understood; give "local", '
            '"env", "anonymous" or a mapping with access_key_id and secret_access_key'
        )
    if isinstance(spec, Mapping):
        keys = s3_options(spec, f"virtual_credentials.{prefix}")
        if not keys.get("access_key_id") or not keys.get("secret_access_key"):
            raise ConfigError(
                f"virtual_credentials for {prefix!r} need access_key_id and secret_access_key"
            )
        return icechunk.s3_credentials(
            access_key_id=keys["access_key_id"],
            secret_access_key=keys["secret_access_key"],
            session_token=keys.get("session_token"),
        )
    return spec  # an Icechunk credentials object


def recorded_containers(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Prefix -> access kind of the containers versioncube set up (from its settings)."""
    recorded = metadata.get(SETTINGS_CONTAINERS)
    if not isinstance(recorded, Mapping):
        return {}
    return {str(prefix): str(access) for prefix, access in recorded.items()}


def authorisations(
    containers: Iterable[str],
    recorded: Mapping[str, str],
    given: Mapping[str, CredentialsLike] | None,
) -> dict[str, Any]:
    """What to authorise: the given credentials by prefix, over the default ones (containers
    versioncube set up for local folders, the environment's credentials or anonymous access)."""
    access: dict[str, Any] = {}
    for prefix in containers:
        kind = recorded.get(prefix)
        if kind in DEFAULT_AUTHORISED:
            access[prefix] = credentials_for(prefix, kind)
    for prefix, spec in (given or {}).items():
        access[normalised_prefix(prefix)] = credentials_for(normalised_prefix(prefix), spec)
    return access


def authorised(
    repo: icechunk.Repository,
    settings: Mapping[str, Any],
    given: Mapping[str, CredentialsLike] | None,
    extra: Mapping[str, Any] | None = None,
) -> icechunk.Repository:
    """The repository reopened with its containers authorised (itself when it has none)."""
    containers = repo.config.virtual_chunk_containers or {}
    if not containers:
        return repo
    access = authorisations(containers, recorded_containers(settings), given)
    access.update(extra or {})
    if not access:
        return repo
    return repo.reopen(authorize_virtual_chunk_access=icechunk.containers_credentials(access))


def unauthorised_message(prefixes: Iterable[str], where: str) -> str:
    """How to authorise the containers a read needs (for :class:`VirtualAccessError`)."""
    names = sorted(prefixes)
    example = json.dumps({names[0]: {"access_key_id": "...", "secret_access_key": "..."}})
    return (
        f"{where} references files under {', '.join(names)} (virtual chunks) that this reader "
        "has not authorised: pass virtual_credentials={PREFIX: credentials} to open_cube or "
        'open_dataset (credentials: "local", "env", "anonymous" or S3 keys), set '
        f"virtual_credentials in a config file, or use --virtual-credentials '{example}' on "
        "the command line"
    )


def check_authorised(repo: icechunk.Repository, locations: Iterable[str], where: str) -> None:
    """Refuse, naming the containers and how to authorise them, when a version's referenced
    files fall under containers this reader has not authorised."""
    authorised_prefixes = repo.authorized_virtual_container_prefixes
    containers = list((repo.config.virtual_chunk_containers or {}).keys())
    missing = set()
    for url in locations:
        covering = [prefix for prefix in containers if url.startswith(prefix)]
        if covering and not any(prefix in authorised_prefixes for prefix in covering):
            missing.add(max(covering, key=len))
    if missing:
        raise VirtualAccessError(unauthorised_message(missing, where))


def parse_credentials_option(text: str) -> dict[str, Any]:
    """``--virtual-credentials``: JSON ``{"PREFIX": credentials}`` or ``PREFIX=KIND``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"--virtual-credentials is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise ConfigError("--virtual-credentials must be a JSON object {prefix: credentials}")
        return parsed
    prefix, equals, kind = text.rpartition("=")
    if not equals or not prefix:
        raise ConfigError(
            f"--virtual-credentials {text!r}: give PREFIX=local|env|anonymous or a JSON object"
        )
    return {prefix: kind}


def referenced_files(repo: icechunk.Repository, snapshot_id: str) -> list[str]:
    """The files a version references (URLs of its virtual chunks), sorted; [] at once for a
    repository without virtual chunk containers (reading every manifest is left to cubes that
    can hold references)."""
    if not repo.config.virtual_chunk_containers:
        return []
    session = repo.readonly_session(snapshot_id=snapshot_id)
    return sorted(set(session.all_virtual_chunk_locations()))  # one per file, not per manifest


def check_version_authorised(repo: icechunk.Repository, snapshot_id: str, where: str) -> None:
    """Refuse to open a version whose referenced files this reader may not read (the data
    would fail only later, at the first read of a chunk, with Icechunk's message)."""
    containers = set(repo.config.virtual_chunk_containers or {})
    if containers - set(repo.authorized_virtual_container_prefixes):
        check_authorised(repo, referenced_files(repo, snapshot_id), where)
