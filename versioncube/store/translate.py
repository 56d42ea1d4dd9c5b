"""The one place where errors of Icechunk, Zarr, xarray and the OS become versioncube's.

Every public function and CLI command reaches storage through :func:`translated`, so a user
never sees a foreign traceback for a foreseeable failure: a missing snapshot or ref becomes
:class:`RefNotFoundError`, a name that exists :class:`VersionError`, a missing repository or an
empty one :class:`CubeNotFoundError`, a cube whose arrays disagree
:class:`InconsistentCubeError`, and any other storage failure :class:`StorageError` naming the
target. Commit conflicts pass through untouched: the commit loop handles them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import icechunk

from versioncube.display.format import first_line
from versioncube.errors import (
    CubeNotFoundError,
    RefNotFoundError,
    StaleSourceError,
    StorageError,
    VersionCubeError,
    VersionError,
    VirtualAccessError,
)
from versioncube.store.fork import check_not_forked


@contextlib.contextmanager
def translated(where: str) -> Iterator[None]:
    """Run the block, reporting foreign errors as VersionCubeErrors that name ``where``."""
    check_not_forked()
    try:
        yield
    except (VersionCubeError, icechunk.ConflictError):
        raise
    except Exception as error:
        replacement = translate(error, where)
        if replacement is None:
            raise
        raise replacement from error


def translate(error: Exception, where: str) -> VersionCubeError | None:
    """The VersionCubeError for a foreign error, or None when it is not a foreseeable one."""
    import zarr.errors

    reason = first_line(error)
    if isinstance(error, icechunk.SnapshotNotFoundError):
        return RefNotFoundError(
            f"{where}: snapshot not found ({reason}); it never existed or gc expired it"
        )
    if isinstance(error, icechunk.RefNotFoundError):
        return RefNotFoundError(f"{where}: {reason}")
    if isinstance(error, icechunk.RepositoryNotFoundError):
        return CubeNotFoundError(f"no versioncube repository at {where}")
    if isinstance(error, icechunk.AlreadyExistsError):
        return VersionError(f"{where}: {reason}")
    if isinstance(error, icechunk.IcechunkError) and (
        virtual := _virtual_chunk_error(reason, where)
    ):
        return virtual
    if isinstance(error, icechunk.IcechunkError):
        return StorageError(f"storage error at {where}: {reason}")
    if isinstance(error, zarr.errors.GroupNotFoundError | zarr.errors.NodeNotFoundError):
        return CubeNotFoundError(
            f"{where} holds no cube yet: the cube has no data yet (nothing was appended to it)"
        )
    if isinstance(error, OSError):
        detail = error.strerror or reason
        name = f": {error.filename}" if error.filename else ""
        return StorageError(f"storage error at {where}: {detail}{name}")
    return None


#: Icechunk's URL in "resolves to the url prefix X, to be able to fetch": the container.
_UNAUTHORISED = re.compile(r"resolves to the url prefix (\S+?),")
_CHANGED = re.compile(r"the checksum of the object owning the virtual chunk has changed \((.+?)\)")
_MISSING = re.compile(r"error fetching virtual reference: Object at location (.+?) not found")


def _virtual_chunk_error(reason: str, where: str) -> VersionCubeError | None:
    """The error for a referenced (virtual) chunk that cannot be read, or None."""
    if match := _UNAUTHORISED.search(reason):
        from versioncube.store.containers import unauthorised_message

        return VirtualAccessError(unauthorised_message([match[1]], where))
    if match := _CHANGED.search(reason):
        return StaleSourceError(
            f"{where}: the referenced file {match[1]} changed after its references were "
            "committed, so they no longer point at the data they were taken from; re-append "
            "it (roll back first) or restore the file; `versioncube verify` lists changed files"
        )
    if match := _MISSING.search(reason):
        return StaleSourceError(
            f"{where}: the referenced file {match[1]} is missing; restore it, or roll back "
            "to a version without it; `versioncube verify` lists missing files"
        )
    return None
