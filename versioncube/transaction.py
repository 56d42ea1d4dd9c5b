"""The one place where the repository's branches, tags and metadata are changed.

A change to the cube's content is a function that gets a fresh writable session on the branch
tip, writes, and returns the commit record; the commit is made here, once. Nothing reaches the
branch unless the commit succeeds, so an error anywhere before it leaves the tip exactly where
it was.

Icechunk updates branch tips with compare-and-swap writes. Object stores make those atomic;
the local filesystem cannot between processes (icechunk issues #804 and #1494: a commit can be
silently lost). On local targets every update of the repository's state is therefore made while
holding an OS advisory lock (``fcntl.flock``) on ``versioncube.lock`` in the repository folder.
The kernel releases it when the holder exits or is killed, so it never needs cleaning up; the
file's existence means nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path

import icechunk

from versioncube.errors import ConcurrentUpdateError, storage_errors
from versioncube.history import CommitRecord
from versioncube.storage import Target

LOCK_FILE_NAME = "versioncube.lock"

Change = Callable[[icechunk.Session], CommitRecord]


@contextlib.contextmanager
def repository_lock(target: Target) -> Iterator[None]:
    """Hold the repository's update lock (local targets only; a no-op elsewhere)."""
    if target.kind != "local":
        yield
        return
    path = Path(target.location) / LOCK_FILE_NAME
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_repository[T](target: Target, update: Callable[[], T]) -> T:
    """Run one update of branches, tags or metadata under the lock, translating errors."""
    with storage_errors(target.uri), repository_lock(target):
        return update()


def commit_change(
    repo: icechunk.Repository, target: Target, branch: str, change: Change
) -> tuple[str, CommitRecord]:
    """Run ``change`` in one writable session on ``branch`` and commit it once.

    Returns the new snapshot id and the record committed with it.
    """
    with storage_errors(target.uri):
        session = repo.writable_session(branch)
        record = change(session)
        try:
            with repository_lock(target):
                snapshot_id = session.commit(record.message(), metadata=record.to_metadata())
        except icechunk.ConflictError as error:
            raise ConcurrentUpdateError(
                f"branch {branch!r} of {target.uri} moved while committing {record.slice_name}; "
                "nothing was written, re-run to append it on the new tip"
            ) from error
    return snapshot_id, record


def move_branch(
    repo: icechunk.Repository, target: Target, branch: str, to: str, *, expected_tip: str
) -> None:
    """Point ``branch`` at ``to`` if its tip is still ``expected_tip`` (compare-and-swap)."""
    try:
        update_repository(
            target, lambda: repo.reset_branch(branch, to, from_snapshot_id=expected_tip)
        )
    except icechunk.ConflictError as error:
        raise ConcurrentUpdateError(
            f"branch {branch!r} of {target.uri} moved (another writer committed) since it was "
            f"inspected at {expected_tip}; nothing was changed, look again and retry"
        ) from error
