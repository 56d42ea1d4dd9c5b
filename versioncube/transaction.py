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
import dataclasses
import fcntl
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import icechunk

from versioncube.errors import ConcurrentUpdateError, storage_errors
from versioncube.history import CommitRecord
from versioncube.storage import Target

LOCK_FILE_NAME = "versioncube.lock"
CREATION_WAIT_STEPS = 100  # tenths of a second to wait for another writer's new repository


@dataclasses.dataclass(frozen=True)
class AlreadyCommitted:
    """What a change returns when the branch already holds it (another writer was first)."""

    snapshot_id: str


Change = Callable[[icechunk.Session], CommitRecord | AlreadyCommitted]


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
        return min(self.max_delay, self.base_delay * 2**attempt) * random.uniform(0.5, 1.5)


DEFAULT_RETRY = RetryPolicy()


@dataclasses.dataclass(frozen=True)
class CommitOutcome:
    """A committed change (``record`` set) or one the branch already held (``record`` None)."""

    snapshot_id: str
    record: CommitRecord | None
    attempts: int


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


def open_or_create_repository(
    target: Target,
    config: icechunk.RepositoryConfig,
    initialise: Callable[[icechunk.Repository], None],
) -> icechunk.Repository:
    """Create the repository and ``initialise`` it, or open it if another writer was first.

    On local disk the check and the creation happen under the update lock; on object stores
    Icechunk's creation is itself conditional, and the loser of a race opens the winner's.
    """
    storage = target.storage()
    if target.kind == "local":
        Path(target.location).mkdir(parents=True, exist_ok=True)
    with storage_errors(target.uri), repository_lock(target):
        if icechunk.Repository.exists(storage):
            return icechunk.Repository.open(storage)
        try:
            repo = icechunk.Repository.create(
                storage, config=config, check_clean_root=target.kind != "local"
            )
        except icechunk.IcechunkError:
            # another writer is creating it right now: its repository appears within moments
            for _ in range(CREATION_WAIT_STEPS):
                if icechunk.Repository.exists(storage):
                    return icechunk.Repository.open(storage)
                time.sleep(0.1)
            raise
        repo.save_config()
        initialise(repo)
        return repo


def commit_change(
    repo: icechunk.Repository,
    target: Target,
    branch: str,
    change: Change,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> CommitOutcome:
    """Run ``change`` in a fresh writable session on the branch tip and commit it once.

    When another writer moved the tip first, the commit fails without writing anything; the
    change then runs again in a fresh session on the new tip (where it re-checks whether the
    branch already holds it and re-validates), after a jittered backoff, up to
    ``policy.max_retries`` times.
    """
    attempt = 0
    while True:
        attempt += 1
        with storage_errors(target.uri):
            session = repo.writable_session(branch)
            outcome = change(session)
            if isinstance(outcome, AlreadyCommitted):
                return CommitOutcome(outcome.snapshot_id, None, attempt)
            try:
                with repository_lock(target):
                    snapshot_id = session.commit(outcome.message(), metadata=outcome.to_metadata())
                return CommitOutcome(snapshot_id, outcome, attempt)
            except icechunk.ConflictError as error:
                if policy.on_conflict == "fail" or attempt > policy.max_retries:
                    tries = "" if policy.on_conflict == "fail" else f" ({attempt} attempts)"
                    raise ConcurrentUpdateError(
                        f"branch {branch!r} of {target.uri} moved while committing "
                        f"{outcome.slice_name}{tries}; nothing was written, re-run to append it "
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
