"""The one place where writable Icechunk sessions are opened and committed.

A change is a function that gets a fresh writable session on the branch tip, writes, and returns
the commit record; the commit is made here, once. Nothing reaches the branch unless the commit
succeeds, so an error anywhere before it leaves the tip exactly where it was.
"""

from __future__ import annotations

from collections.abc import Callable

import icechunk

from versioncube.errors import ConcurrentUpdateError, storage_errors
from versioncube.history import CommitRecord

Change = Callable[[icechunk.Session], CommitRecord]


def commit_change(
    repo: icechunk.Repository, branch: str, change: Change, *, where: str
) -> tuple[str, CommitRecord]:
    """Run ``change`` in one writable session on ``branch`` and commit it once.

    Returns the new snapshot id and the record committed with it.
    """
    with storage_errors(where):
        session = repo.writable_session(branch)
        record = change(session)
        try:
            snapshot_id = session.commit(record.message(), metadata=record.to_metadata())
        except icechunk.ConflictError as error:
            raise ConcurrentUpdateError(
                f"branch {branch!r} of {where} moved while committing {record.slice_name}; "
                "nothing was written, re-run to append it on the new tip"
            ) from error
    return snapshot_id, record
