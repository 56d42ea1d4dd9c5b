"""Turn a target string plus storage options into an Icechunk storage and repository.

This is the only module that knows how target URIs map onto Icechunk's storage constructors:

============================  ==========================================================
target                        Icechunk storage
============================  ==========================================================
``/path`` or ``file:///path``  ``local_filesystem_storage(path)``
``memory://NAME``              ``in_memory_storage()``, one per NAME within this process
``s3://bucket/prefix``         ``s3_storage(bucket=..., prefix=..., **options)``
``gs://bucket/prefix``         ``gcs_storage(bucket=..., prefix=..., **options)``
``az://container/prefix``      ``azure_storage(container=..., prefix=..., account=..., ...)``
============================  ==========================================================

Options use Icechunk's names; the fsspec/s3fs spellings zappend users already have (``key``,
``secret``, ``token``, ``anon``, ``client_kwargs.endpoint_url``, ``region_name``,
``account_name``, ``account_key``) are accepted too. Settings that Icechunk takes for Google
Cloud Storage and Azure only inside the object store's ``config`` dictionary (a custom endpoint,
plain http, the Azure emulator) are accepted as options of their own and moved into ``config``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import icechunk

from versioncube.errors import TargetError
from versioncube.store.fork import check_not_forked, note_icechunk_use

TargetLike = str | os.PathLike[str]
TargetKind = Literal["local", "memory", "s3", "gcs", "azure"]

_SCHEMES: dict[str, TargetKind] = {
    "file": "local",
    "memory": "memory",
    "s3": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
}

# Accepted option name -> Icechunk's parameter name, per storage kind.
_OPTION_NAMES: dict[TargetKind, dict[str, str]] = {
    "local": {},
    "memory": {},
    "s3": {
        "endpoint_url": "endpoint_url",
        "region": "region",
        "region_name": "region",
        "allow_http": "allow_http",
        "access_key_id": "access_key_id",
        "aws_access_key_id": "access_key_id",
        "key": "access_key_id",
        "secret_access_key": "secret_access_key",
        "aws_secret_access_key": "secret_access_key",
        "secret": "secret_access_key",
        "session_token": "session_token",
        "token": "session_token",
        "anonymous": "anonymous",
        "anon": "anonymous",
        "from_env": "from_env",
        "force_path_style": "force_path_style",
        "requester_pays": "requester_pays",
    },
    "gcs": {
        "service_account_file": "service_account_file",
        "service_account_key": "service_account_key",
        "application_credentials": "application_credentials",
        "bearer_token": "bearer_token",
        "token": "bearer_token",
        "anonymous": "anonymous",
        "anon": "anonymous",
        "from_env": "from_env",
        "config": "config",
    },
    "azure": {
        "account": "account",
        "account_name": "account",
        "access_key": "access_key",
        "account_key": "access_key",
        "sas_token": "sas_token",
        "bearer_token": "bearer_token",
        "anonymous": "anonymous",
        "anon": "anonymous",
        "from_env": "from_env",
        "config": "config",
    },
}

# Accepted option name -> key of the object store's ``config`` dictionary, per storage kind:
# settings that Icechunk's gcs_storage and azure_storage take only inside ``config``.
_CONFIG_NAMES: dict[TargetKind, dict[str, str]] = {
    "gcs": {"endpoint_url": "google_base_url", "base_url": "google_base_url"},
    "azure": {
        "endpoint_url": "endpoint",
        "endpoint": "endpoint",
        "allow_http": "allow_http",
        "use_emulator": "use_emulator",
    },
}

#: The storage account of Azure's emulator (Azurite), which object_store uses with
#: ``use_emulator`` together with the emulator's published key.
AZURE_EMULATOR_ACCOUNT = "devstoreaccount1"

# In-process repositories live as long as the process; one storage per memory://NAME.
_MEMORY_STORAGES: dict[str, icechunk.Storage] = {}


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a cube lives: the normalised URI, its kind, and the Icechunk storage for it."""

    uri: str
    kind: TargetKind
    location: str  # local path, memory name, or "bucket/prefix"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return self.uri

    def storage(self) -> icechunk.Storage:
        """Build the Icechunk storage (cheap; nothing is contacted until it is used)."""
        check_not_forked()
        note_icechunk_use()
        quiet_icechunk_logs()
        if self.kind == "local":
            return icechunk.local_filesystem_storage(self.location)
        if self.kind == "memory":
            if self.location not in _MEMORY_STORAGES:
                _MEMORY_STORAGES[self.location] = icechunk.in_memory_storage()
            return _MEMORY_STORAGES[self.location]
        bucket, _, prefix = self.location.partition("/")
        if self.kind == "s3":
            return icechunk.s3_storage(bucket=bucket, prefix=prefix, **self.options)
        if self.kind == "gcs":
            return icechunk.gcs_storage(bucket=bucket, prefix=prefix, **self.options)
        options = dict(self.options)
        account = options.pop("account", None)
        if not account and options.get("config", {}).get("use_emulator") == "true":
            account = AZURE_EMULATOR_ACCOUNT
        if not account:
            raise TargetError(
                f"target {self.uri}: Azure needs the storage account name in "
                "target_storage_options (account or account_name)"
            )
        return icechunk.azure_storage(account=account, container=bucket, prefix=prefix, **options)


_quieted = False


def quiet_icechunk_logs() -> None:
    """Keep Icechunk's Rust warnings off the user's terminal and notebook, once per process.

    Icechunk warns on every open of a local-disk repository that its commits are not safe
    between processes; versioncube makes them safe with its commit lock (see
    :mod:`versioncube.store.commit`), so the warning would only mislead. A user who set
    ``ICECHUNK_LOG`` keeps their own filter.
    """
    global _quieted
    if not _quieted and "ICECHUNK_LOG" not in os.environ:
        icechunk.set_logs_filter("error")
    _quieted = True


def parse_target(target: TargetLike, storage_options: Mapping[str, Any] | None = None) -> Target:
    """Parse a target string (see the module docstring) and check its storage options."""
    text = os.fspath(target)
    if not text:
        raise TargetError("no target given: set target_dir (the cube's path or URI)")
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        kind: TargetKind = "local"
    elif scheme in _SCHEMES:
        kind = _SCHEMES[scheme]
    else:
        known = ", ".join(sorted(f"{name}://" for name in _SCHEMES))
        raise TargetError(
            f"target {text!r}: unknown scheme {scheme!r}; use a path or one of {known}"
        )
    options = _icechunk_options(kind, text, storage_options or {})
    if kind == "local":
        path = parsed.path if scheme == "file" else text
        location = str(Path(path).expanduser().absolute())
        return Target(uri=location, kind=kind, location=location)
    if kind == "memory":
        name = (parsed.netloc + parsed.path).strip("/")
        if not name:
            raise TargetError(
                f"target {text!r}: give the in-memory repository a name, memory://NAME"
            )
        return Target(uri=f"memory://{name}", kind=kind, location=name)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if not bucket or not prefix:
        raise TargetError(
            f"target {text!r}: needs a bucket and a prefix, {scheme}://BUCKET/PREFIX "
            "(Icechunk never writes to the root of a bucket)"
        )
    return Target(
        uri=f"{scheme}://{bucket}/{prefix}",
        kind=kind,
        location=f"{bucket}/{prefix}",
        options=options,
    )


def _icechunk_options(kind: TargetKind, text: str, given: Mapping[str, Any]) -> dict[str, Any]:
    names = _OPTION_NAMES[kind] | _CONFIG_NAMES.get(kind, {})
    flat = dict(given)
    client_kwargs = flat.pop("client_kwargs", None)  # s3fs nests endpoint and region here
    if isinstance(client_kwargs, Mapping) and kind == "s3":
        flat = {**client_kwargs, **flat}
    elif client_kwargs is not None:
        flat["client_kwargs"] = client_kwargs
    options: dict[str, Any] = {}
    for key, value in flat.items():
        if key not in names:
            accepted = ", ".join(sorted(names)) or "none"
            raise TargetError(
                f"target {text!r}: unknown storage option {key!r} for {kind} targets "
                f"(accepted: {accepted})"
            )
        options[names[key]] = value
    if kind == "s3" and str(options.get("endpoint_url", "")).startswith("http://"):
        options.setdefault("allow_http", True)
    if kind in _CONFIG_NAMES:
        _move_into_config(kind, text, options)
    return options


def _move_into_config(kind: TargetKind, text: str, options: dict[str, Any]) -> None:
    """Move the settings Icechunk takes only inside ``config`` there, as the strings it needs."""
    given = options.get("config") or {}
    if not isinstance(given, Mapping):
        raise TargetError(
            f"target {text!r}: storage option 'config' must be a mapping of object-store "
            f"settings, not {given!r}"
        )
    config = {str(key): _config_value(value) for key, value in given.items()}
    keys = set(_CONFIG_NAMES[kind].values())
    moved = {key: _config_value(options.pop(key)) for key in sorted(keys & options.keys())}
    for key, value in moved.items():
        if config.get(key, value) != value:
            raise TargetError(
                f"target {text!r}: storage option {key!r} is given twice, with different "
                f"values ({config[key]!r} in config, {value!r} as an option)"
            )
    merged = config | moved
    if kind == "azure" and merged.get("endpoint", "").startswith("http://"):
        merged.setdefault("allow_http", "true")  # as for S3: a local server speaks plain http
    if merged:
        options["config"] = merged


def _config_value(value: Any) -> str:
    """The object store's config takes strings; YAML and Python give booleans too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def s3_options(given: Mapping[str, Any], path: str = "storage options") -> dict[str, Any]:
    """S3 options under Icechunk's names from fsspec- or Icechunk-style ones (``key``,
    ``secret``, ``client_kwargs.endpoint_url``, ...); names S3 does not know are left out, so
    that the options of an fsspec filesystem can be given as they are. ``path`` names the
    options in messages."""
    names = _OPTION_NAMES["s3"]
    flat = dict(given)
    client_kwargs = flat.pop("client_kwargs", None)
    if isinstance(client_kwargs, Mapping):
        flat = {**client_kwargs, **flat}
    elif client_kwargs is not None:
        raise TargetError(f"{path}: client_kwargs must be a mapping")
    options = {names[key]: value for key, value in flat.items() if key in names}
    if str(options.get("endpoint_url", "")).startswith("http://"):
        options.setdefault("allow_http", True)
    return options
