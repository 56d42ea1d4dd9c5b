"""The one place where the repository's branches, tags and metadata are changed.

Every write is a *change*: a function that gets a fresh writable session on the branch tip,
writes into it and returns a :class:`Staged` commit (its message, its metadata and a payload
for the caller, such as the commit record and the cube's new outline). The commit is made here,
once, and :class:`Committed` hands the payload back with the new snapshot id. Nothing reaches
the branch unless the commit succeeds, so an error anywhere before it leaves the tip exactly
where it was.

Icechunk updates branch tips with compare-and-swap writes. Object stores make those atomic;
the local filesystem cannot between processes (icechunk issues #804 and #1494: a commit can be
silently lost). On local targets every update of the repository's state is therefore made while
holding an OS advisory lock (``fcntl.flock``) on ``versioncube.lock`` in the repository folder.
The kernel releases it when the holder exits or is killed, so it never needs cleaning up; the
file's existence means nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import icechunk

from versioncube.errors import ConcurrentUpdateError, ConfigError
from versioncube.store.target import Target
from versioncube.store.translate import translated

LOCK_FILE_NAME = "versioncube.lock"
#: The commit-metadata key of versioncube's own record; users' metadata may not use it.
RESERVED_METADATA_KEY = "versioncube"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """What to do when another writer moved the branch tip during a commit."""

    on_conflict: Literal["retry", "fail"] = "retry"
    max_retries: int = 20
    base_delay: float = 0.05  # seconds; doubled per attempt, jittered, capped at max_delay
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Jittered exponential backoff: colliding writers spread out instead of colliding
        again in lockstep."""
        return min(self.max_delay, self.base_delay * 2.0**attempt) * random.uniform(0.5, 1.5)


DEFAULT_RETRY = RetryPolicy()


@dataclasses.dataclass(frozen=True)
class CommitOptions:
    """What every verb that commits accepts: its message, extra metadata and retry policy.

    ``message`` replaces the generated commit message (``append 2024-03-01.nc: time ...``);
    ``metadata`` is stored in the commit beside versioncube's own record (JSON values; the key
    ``versioncube`` is reserved); ``retry`` says what to do when another writer commits first.
    """

    message: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    retry: RetryPolicy = DEFAULT_RETRY

    def __post_init__(self) -> None:
        if RESERVED_METADATA_KEY in self.metadata:
            raise ConfigError(
                f"commit metadata key {RESERVED_METADATA_KEY!r} is reserved for versioncube's "
                "own record; choose another key"
            )


DEFAULT_COMMIT = CommitOptions()


@dataclasses.dataclass(frozen=True)
class Staged[P]:
    """A change written into its session and ready to commit."""

    message: str
    metadata: Mapping[str, Any]
    payload: P  # handed back to the caller with the snapshot id once committed
    subject: str  # what the change is about, for messages ("slice 2024-03-01.nc")
    #: a line kept at the end of the commit message, after a blank line, whatever message the
    #: caller gives (versioncube's commit record)
    trailer: str = ""


@dataclasses.dataclass(frozen=True)
class AlreadyCommitted:
    """What a change returns when the branch already holds it (another writer was first)."""

    snapshot_id: str


@dataclasses.dataclass(frozen=True)
class Committed[P]:
    """A committed change (``payload`` set) or one the branch already held (``payload`` None)."""

    snapshot_id: str
    payload: P | None
    attempts: int


type Change[P] = Callable[[icechunk.Session], Staged[P] | AlreadyCommitted]


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
    with translated(target.uri), repository_lock(target):
        return update()


def commit_change[P](
    repo: icechunk.Repository,
    target: Target,
    branch: str,
    change: Change[P],
    options: CommitOptions = DEFAULT_COMMIT,
) -> Committed[P]:
    """Run ``change`` in a fresh writable session on the branch tip and commit it once.

    When another writer moved the tip first, the commit fails without writing anything; the
    change then runs again in a fresh session on the new tip (where it re-checks whether the
    branch already holds it and re-validates), after a jittered backoff, up to
    ``options.retry.max_retries`` times.
    """
    policy = options.retry
    attempt = 0
    while True:
        attempt += 1
        with translated(target.uri):
            session = repo.writable_session(branch)
            staged = change(session)
            if isinstance(staged, AlreadyCommitted):
                return Committed(staged.snapshot_id, None, attempt)
            message = options.message or staged.message
            if staged.trailer:
                message = f"{message}\n\n{staged.trailer}"
            metadata = {**options.metadata, **staged.metadata}
            try:
                with repository_lock(target):
                    snapshot_id = session.commit(message, metadata=metadata)
                return Committed(snapshot_id, staged.payload, attempt)
            except icechunk.ConflictError as error:
                if policy.on_conflict == "fail" or attempt > policy.max_retries:
                    tries = "" if policy.on_conflict == "fail" else f" ({attempt} attempts)"
                    raise ConcurrentUpdateError(
                        f"branch {branch!r} of {target.uri} moved while committing "
                        f"{staged.subject}{tries}; nothing was written, re-run to write it "
                        "on the new tip"
                    ) from error
        time.sleep(policy.delay(attempt))


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
