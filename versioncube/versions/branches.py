"""Moving and inspecting branches: rollback, promote, and creating, listing, deleting branches.

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

from versioncube.display import html, palette
from versioncube.display.format import label_extent, plural, short_time
from versioncube.display.results import Result
from versioncube.display.tables import SnapshotRow, Table
from versioncube.errors import RefNotFoundError, VersionError
from versioncube.store.commit import move_branch, update_repository
from versioncube.store.target import Target
from versioncube.versions.log import Log, branch_log
from versioncube.versions.record import human_message

# -- rollback ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RollbackResult(Result):
    """What a rollback (or a promote) did: where the branch was, where it is, which commits
    left or returned."""

    branch: str
    previous_tip: str
    new_tip: str
    discarded: Log  # commits no longer on the branch (still readable by snapshot id)
    restored: Log  # commits back on the branch (when rolling forward to a discarded snapshot)
    operation: str = "rollback"  # or "promote"

    def describe(self) -> str:
        lines = [f"{self.branch}: {self.previous_tip[:12]} -> {self.new_tip[:12]}"]
        if self.discarded:
            lines.append(f"discarded {_commits(self.discarded)}{_label_span(self.discarded)}")
            lines.append(self.undo_note())
        if self.restored:
            verb = "promoted" if self.operation == "promote" else "restored"
            lines.append(f"{verb} {_commits(self.restored)}{_label_span(self.restored)}")
        if not self.discarded and not self.restored:
            lines.append("already there: nothing changed")
        return "\n".join(lines)

    def undo_note(self) -> str:
        """How to undo the move (when it discarded commits)."""
        return (
            f"nothing is deleted: undo with `rollback --to {self.previous_tip}` until gc "
            "removes them"
        )

    def html_title(self) -> str:
        return self.operation.capitalize()

    def _repr_html_(self) -> str:
        move = html.code(f"{self.previous_tip[:12]} -> {self.new_tip[:12]}")
        moved = [("branch", self.branch), ("was at", self.previous_tip), ("now at", self.new_tip)]
        parts = [html.facts(moved)]
        if self.discarded:
            title = f"Discarded{_label_span(self.discarded)}"
            parts.append(
                html.section(title, self.discarded.html_table(), count=len(self.discarded))
            )
            parts.append(html.muted(self.undo_note()))
        if self.restored:
            verb = "Promoted" if self.operation == "promote" else "Restored"
            title = f"{verb}{_label_span(self.restored)}"
            parts.append(html.section(title, self.restored.html_table(), count=len(self.restored)))
        if not self.discarded and not self.restored:
            parts.append(html.muted("already there: nothing changed"))
        return html.card(self.html_kind(), f"{self.operation} of {self.branch}", move, *parts)


def rollback(
    repo: icechunk.Repository, target: Target, branch: str, to_snapshot: str, append_dim: str = ""
) -> RollbackResult:
    """Move ``branch`` to ``to_snapshot`` with a compare-and-swap on the tip inspected here."""
    tip = repo.lookup_branch(branch)
    current = branch_log(repo, tip, append_dim=append_dim)
    wanted = branch_log(repo, to_snapshot, append_dim=append_dim)
    current_ids = {entry.snapshot_id for entry in current}
    wanted_ids = {entry.snapshot_id for entry in wanted}
    discarded = Log(entry for entry in current if entry.snapshot_id not in wanted_ids)
    restored = Log(entry for entry in wanted if entry.snapshot_id not in current_ids)
    if tip != to_snapshot:
        move_branch(repo, target, branch, to_snapshot, expected_tip=tip)
    return RollbackResult(branch, tip, to_snapshot, discarded, restored)


def _commits(log: Log) -> str:
    return plural(len(log), "commit")


def _label_span(log: Log) -> str:
    """The label range the appends among ``log`` cover, e.g. `` (time 2024-03-04 .. 06)``."""
    spans = [
        (entry.record.index_range, entry.record.labels, entry.record.append_dim)
        for entry in log
        if entry.record and entry.record.appends_rows
        if entry.record.labels is not None and entry.record.index_range is not None
    ]
    if not spans:
        return ""
    first = min(spans, key=lambda span: span[0][0])
    last = max(spans, key=lambda span: span[0][1])
    return f" ({label_extent(first[2], first[1][0], last[1][1])})"


# -- branches ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BranchInfo(SnapshotRow, Result):
    """A branch and the commit at its tip."""

    name: str
    snapshot_id: str
    written_at: dt.datetime
    message: str

    @property
    def updated(self) -> str:
        return short_time(self.written_at)

    def describe(self) -> str:
        return f"branch {self.name} at {self.short_id}: {self.message}"

    def _repr_html_(self) -> str:
        details = [
            ("tip", self.snapshot_id),
            ("updated", f"{self.updated} UTC"),
            ("message", self.message),
        ]
        note = html.muted(f"at {self.short_id}")
        return html.card(self.html_kind(), f"branch {self.name}", note, html.facts(details))


@dataclasses.dataclass(frozen=True)
class BranchDeleted(Result):
    """A deleted branch and where it pointed, so that it can be created again."""

    name: str
    snapshot_id: str

    def describe(self) -> str:
        return (
            f"deleted branch {self.name} (was at {self.snapshot_id}; "
            f"`branch create {self.name} --at {self.snapshot_id}` restores it)"
        )

    def _repr_html_(self) -> str:
        restore = f"branch create {self.name} --at {self.snapshot_id}"
        details = [("was at", self.snapshot_id), ("restore with", restore)]
        title = f"deleted branch {self.name}"
        return html.card(self.html_kind(), title, "", html.facts(details), accent=palette.WARNING)


class BranchList(Table[BranchInfo]):
    columns: ClassVar[tuple[str, ...]] = ("name", "short id", "updated", "message")
    noun = ("branch", "branches")


def list_branches(repo: icechunk.Repository) -> BranchList:
    branches = BranchList()
    for name in sorted(repo.list_branches(), key=lambda name: (name != "main", name)):
        tip = repo.lookup_snapshot(repo.lookup_branch(name))
        branches.append(BranchInfo(name, tip.id, tip.written_at, human_message(tip.message)))
    return branches


def create_branch(
    repo: icechunk.Repository, target: Target, name: str, snapshot_id: str
) -> BranchInfo:
    if name in repo.list_branches():
        raise VersionError(f"branch {name!r} already exists (at {repo.lookup_branch(name)[:12]})")
    update_repository(target, lambda: repo.create_branch(name, snapshot_id))
    tip = repo.lookup_snapshot(snapshot_id)
    return BranchInfo(name, tip.id, tip.written_at, human_message(tip.message))


def delete_branch(repo: icechunk.Repository, target: Target, name: str) -> BranchDeleted:
    """Delete a branch (never main); says which snapshot it pointed at, to recreate it."""
    if name == "main":
        raise VersionError("the main branch cannot be deleted")
    if name not in repo.list_branches():
        raise RefNotFoundError(
            f"no branch {name!r} (branches: {', '.join(sorted(repo.list_branches()))})"
        )
    tip = repo.lookup_branch(name)
    update_repository(target, lambda: repo.delete_branch(name))
    return BranchDeleted(name, tip)


def promote(
    repo: icechunk.Repository, target: Target, source: str, into: str, append_dim: str = ""
) -> RollbackResult:
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
    moved = rollback(repo, target, into, source_tip, append_dim)
    return dataclasses.replace(moved, operation="promote")
