"""Naming, moving and inspecting versions: tags, rollback, branches, promote.

Every function takes the Icechunk repository and the target (for the update lock) and returns
typed results; :class:`versioncube.cube.Cube` exposes them as methods, and the CLI prints them.
Nothing here deletes data: a rollback only moves a branch, so the commits it discards stay
readable by snapshot id until ``gc`` removes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import ClassVar

import icechunk

from versioncube.errors import RefNotFoundError, VersionError
from versioncube.history import Log, label_extent, read_log
from versioncube.storage import Target
from versioncube.tables import SnapshotRow, Table, short_time
from versioncube.transaction import move_branch, update_repository

#: Repository-metadata key under which tag messages and times are kept (tags have none).
TAGS_METADATA_KEY = "versioncube.tags"


# -- tags ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TagInfo(SnapshotRow):
    """A release name: the snapshot it marks, when it was made, and why."""

    name: str
    snapshot_id: str
    created_at: dt.datetime | None
    message: str

    @property
    def created(self) -> str:
        return short_time(self.created_at) if self.created_at else "?"


class TagList(Table[TagInfo]):
    columns: ClassVar[tuple[str, ...]] = ("name", "short id", "created", "message")
    empty = "(no tags)"


def create_tag(
    repo: icechunk.Repository, target: Target, name: str, snapshot_id: str, message: str = ""
) -> TagInfo:
    """Tag a snapshot; tags are immutable and a name is never reused, even after deletion."""
    created_at = dt.datetime.now(dt.UTC)

    def tag() -> None:
        try:
            repo.create_tag(name, snapshot_id)
        except icechunk.IcechunkError as error:
            if "already" in str(error) or "reuse" in str(error):
                raise VersionError(_tag_taken(repo, name)) from None
            raise
        notes = dict(repo.get_metadata().get(TAGS_METADATA_KEY) or {})
        notes[name] = {"message": message, "created_at": created_at.isoformat()}
        repo.update_metadata({TAGS_METADATA_KEY: notes})

    update_repository(target, tag)
    return TagInfo(name, snapshot_id, created_at, message)


def _tag_taken(repo: icechunk.Repository, name: str) -> str:
    if name in repo.list_tags():
        return (
            f"tag {name!r} already exists (at {repo.lookup_tag(name)[:12]}): tags are immutable "
            "release names; choose a new name"
        )
    return f"tag {name!r} was used before and deleted; Icechunk never reuses a tag name"


def list_tags(repo: icechunk.Repository) -> TagList:
    """All tags, oldest first, with their messages and creation times."""
    notes = repo.get_metadata().get(TAGS_METADATA_KEY) or {}
    created_in_log = {
        update.kind.name: update.updated_at
        for update in repo.ops_log()
        if type(update.kind).__name__ == "TagCreated"
    }
    tags = []
    for name in repo.list_tags():
        note = notes.get(name, {})
        created = note.get("created_at")
        created_at = dt.datetime.fromisoformat(created) if created else created_in_log.get(name)
        tags.append(TagInfo(name, repo.lookup_tag(name), created_at, note.get("message", "")))
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return TagList(sorted(tags, key=lambda tag: (tag.created_at or epoch, tag.name)))


def tags_by_snapshot(repo: icechunk.Repository) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in repo.list_tags():
        found.setdefault(repo.lookup_tag(name), []).append(name)
    return found


# -- log and rollback ------------------------------------------------------------------------


def branch_log(repo: icechunk.Repository, snapshot_id: str, limit: int | None = None) -> Log:
    """The commits leading to ``snapshot_id``, newest first."""
    return read_log(repo.ancestry(snapshot_id=snapshot_id), tags_by_snapshot(repo), limit)


@dataclasses.dataclass(frozen=True)
class RollbackResult:
    """What a rollback did: where the branch was, where it is, which commits left or returned."""

    branch: str
    previous_tip: str
    new_tip: str
    discarded: Log  # commits no longer on the branch (still readable by snapshot id)
    restored: Log  # commits back on the branch (when rolling forward to a discarded snapshot)

    def describe(self) -> str:
        lines = [f"{self.branch}: {self.previous_tip[:12]} -> {self.new_tip[:12]}"]
        if self.discarded:
            lines.append(f"discarded {_commits(self.discarded)}{_label_span(self.discarded)}")
            lines.append(
                f"nothing is deleted: undo with `rollback --to {self.previous_tip}` until gc "
                "removes them"
            )
        if self.restored:
            lines.append(f"restored {_commits(self.restored)}{_label_span(self.restored)}")
        if not self.discarded and not self.restored:
            lines.append("already there: nothing changed")
        return "\n".join(lines)


def rollback(
    repo: icechunk.Repository, target: Target, branch: str, to_snapshot: str
) -> RollbackResult:
    """Move ``branch`` to ``to_snapshot`` with a compare-and-swap on the tip inspected here."""
    tip = repo.lookup_branch(branch)
    current = branch_log(repo, tip)
    wanted = branch_log(repo, to_snapshot)
    current_ids = {entry.snapshot_id for entry in current}
    wanted_ids = {entry.snapshot_id for entry in wanted}
    discarded = Log(entry for entry in current if entry.snapshot_id not in wanted_ids)
    restored = Log(entry for entry in wanted if entry.snapshot_id not in current_ids)
    if tip != to_snapshot:
        move_branch(repo, target, branch, to_snapshot, expected_tip=tip)
    return RollbackResult(branch, tip, to_snapshot, discarded, restored)


def _commits(log: Log) -> str:
    return f"{len(log)} commit{'' if len(log) == 1 else 's'}"


def _label_span(log: Log) -> str:
    records = [entry.record for entry in log if entry.record and entry.record.labels]
    if not records:
        return ""
    first = min(records, key=lambda record: record.index_range[0])
    last = max(records, key=lambda record: record.index_range[1])
    return f" ({label_extent(first.append_dim, first.labels[0], last.labels[1])})"  # type: ignore[index]


# -- branches ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BranchInfo(SnapshotRow):
    """A branch and the commit at its tip."""

    name: str
    snapshot_id: str
    written_at: dt.datetime
    message: str

    @property
    def updated(self) -> str:
        return short_time(self.written_at)


class BranchList(Table[BranchInfo]):
    columns: ClassVar[tuple[str, ...]] = ("name", "short id", "updated", "message")


def list_branches(repo: icechunk.Repository) -> BranchList:
    branches = BranchList()
    for name in sorted(repo.list_branches(), key=lambda name: (name != "main", name)):
        tip = repo.lookup_snapshot(repo.lookup_branch(name))
        branches.append(BranchInfo(name, tip.id, tip.written_at, tip.message))
    return branches


def create_branch(
    repo: icechunk.Repository, target: Target, name: str, snapshot_id: str
) -> BranchInfo:
    if name in repo.list_branches():
        raise VersionError(f"branch {name!r} already exists (at {repo.lookup_branch(name)[:12]})")
    update_repository(target, lambda: repo.create_branch(name, snapshot_id))
    tip = repo.lookup_snapshot(snapshot_id)
    return BranchInfo(name, tip.id, tip.written_at, tip.message)


def delete_branch(repo: icechunk.Repository, target: Target, name: str) -> str:
    """Delete a branch (never main); returns the snapshot it pointed at, to recreate it."""
    if name == "main":
        raise VersionError("the main branch cannot be deleted")
    if name not in repo.list_branches():
        raise RefNotFoundError(
            f"no branch {name!r} (branches: {', '.join(sorted(repo.list_branches()))})"
        )
    tip = repo.lookup_branch(name)
    update_repository(target, lambda: repo.delete_branch(name))
    return tip


def promote(repo: icechunk.Repository, target: Target, source: str, into: str) -> RollbackResult:
    """Fast-forward ``into`` to the tip of ``source``; refused when ``into`` has moved on."""
    for name in (source, into):
        if name not in repo.list_branches():
            raise RefNotFoundError(f"no branch {name!r}")
    source_tip, into_tip = repo.lookup_branch(source), repo.lookup_branch(into)
    source_history = branch_log(repo, source_tip)
    if into_tip != source_tip and into_tip not in {e.snapshot_id for e in source_history}:
        ahead = [e for e in branch_log(repo, into_tip) if e.snapshot_id not in
                 {s.snapshot_id for s in source_history}]  # fmt: skip
        raise VersionError(
            f"cannot promote {source!r} into {into!r}: {into!r} has {_commits(Log(ahead))} that "
            f"{source!r} lacks (latest: {ahead[0].message!r}); append them to {source!r} or "
            f"branch again from {into!r}"
        )
    return rollback(repo, target, into, source_tip)


def ref_names(repo: icechunk.Repository) -> dict[str, list[str]]:
    """Snapshot id -> the branches and tags pointing at it."""
    names: dict[str, list[str]] = {}
    for branch in repo.list_branches():
        names.setdefault(repo.lookup_branch(branch), []).append(branch)
    for tag in repo.list_tags():
        names.setdefault(repo.lookup_tag(tag), []).append(f"tag:{tag}")
    return names
