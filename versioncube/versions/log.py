"""A branch's commits (``log``) and the repository's operations (``reflog``), as tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import icechunk

from versioncube.display import html
from versioncube.display.format import short_time
from versioncube.display.tables import SnapshotRow, Table
from versioncube.versions.record import CommitRecord, human_message
from versioncube.versions.tags import tags_by_snapshot

if TYPE_CHECKING:
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class LogEntry(SnapshotRow):
    """One commit of a branch's history, as ``log`` shows it."""

    snapshot_id: str
    written_at: dt.datetime
    message: str
    tags: tuple[str, ...]
    record: CommitRecord | None  # None for commits versioncube did not write

    @property
    def time(self) -> str:
        return short_time(self.written_at)

    @property
    def operation(self) -> str:
        """The record's operation; ``append (refs)`` for a commit of references to a file."""
        if self.record is None:
            return "-"
        if self.record.virtual is not None:
            return f"{self.record.operation} (refs)"
        return self.record.operation

    @property
    def referenced_file(self) -> str | None:
        """The file a commit of a virtual slice references (its URL), else None."""
        if self.record is None or self.record.virtual is None:
            return None
        return str(self.record.virtual.get("url"))

    @property
    def slice(self) -> str:
        return self.record.slice_name if self.record else self.message

    @property
    def labels(self) -> str:
        return self.record.extent() if self.record else ""

    @property
    def tag_names(self) -> str:
        return ", ".join(self.tags)


class Log(Table[LogEntry]):
    """A branch's commits, newest first."""

    columns: ClassVar[tuple[str, ...]] = (
        "short id",
        "time",
        "operation",
        "slice",
        "labels",
        "tag names",
    )
    empty = "(no commits: the cube has no data yet)"
    noun = ("commit", "commits")

    def cells(self, row: LogEntry) -> tuple[str, ...]:
        return (row.short_id, row.time, row.operation, row.slice, row.labels, row.tag_names)

    def html_cells(self, row: LogEntry) -> tuple[object, ...]:
        cells = self.cells(row)
        return (html.code(cells[0]), cells[1], html.operation_badge(row.operation), *cells[3:])

    def to_pandas(self) -> pd.DataFrame:
        """The commits as a DataFrame, newest first, for filtering and plotting: ``snapshot_id``,
        ``time`` (UTC), ``operation``, ``slice``, ``first_label`` and ``last_label`` (datetimes
        for a time axis), ``start_row`` and ``stop_row`` (``[start, stop)``), ``tags`` (a tuple),
        ``message``, ``referenced_file`` (for commits of references, else None)."""
        from versioncube.versions.frames import log_frame

        return log_frame(self)


@dataclasses.dataclass(frozen=True)
class LogPage:
    """Which commits of a history ``log`` shows: at most ``limit``, written in
    ``[since, until]`` (either end open when None)."""

    limit: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def read_log(
    snapshots: Iterable[Any],
    tags_by_snapshot: Mapping[str, list[str]],
    page: LogPage = LogPage(),
    append_dim: str = "",
) -> Log:
    """Log entries for Icechunk SnapshotInfos (newest first), without the initial snapshot.

    Reads the history only as far as the page reaches: commits newer than ``page.until`` are
    passed over, and the walk stops at ``page.limit`` entries or at the first commit older than
    ``page.since``. ``append_dim`` is the cube's, for records that do not name it.
    """
    log = Log()
    for snapshot in snapshots:
        if snapshot.parent_id is None or (page.limit is not None and len(log) >= page.limit):
            break
        if page.since is not None and snapshot.written_at < page.since:
            break
        if page.until is not None and snapshot.written_at > page.until:
            continue
        log.append(
            LogEntry(
                snapshot_id=snapshot.id,
                written_at=snapshot.written_at,
                message=human_message(snapshot.message),
                tags=tuple(sorted(tags_by_snapshot.get(snapshot.id, []))),
                record=CommitRecord.of_snapshot(snapshot, append_dim),
            )
        )
    return log


@dataclasses.dataclass(frozen=True)
class ReflogEntry:
    """One change of the repository's state: a commit, a branch reset, a tag, ..."""

    time: dt.datetime
    kind: str
    details: str

    @property
    def when(self) -> str:
        return short_time(self.time)


class Reflog(Table[ReflogEntry]):
    """The repository's operations log, newest first."""

    columns: ClassVar[tuple[str, ...]] = ("when", "kind", "details")
    noun = ("operation", "operations")


def read_reflog(updates: Iterable[Any], limit: int | None = None) -> Reflog:
    """Reflog entries from Icechunk's ``ops_log()`` updates (newest first, at most ``limit``)."""
    reflog = Reflog()
    for update in updates:
        if limit is not None and len(reflog) >= limit:
            break
        kind = type(update.kind).__name__
        fields = {
            name: getattr(update.kind, name)
            for name in ("branch", "name", "new_snap_id", "previous_snap_id")
            if getattr(update.kind, name, None)
        }
        details = " ".join(f"{name}={value}" for name, value in fields.items())
        reflog.append(ReflogEntry(time=update.updated_at, kind=_words(kind), details=details))
    return reflog


def _words(camel: str) -> str:
    """``BranchReset`` -> ``branch reset``, ``GCRan`` -> ``gc ran``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", camel).lower()


def branch_log(
    repo: icechunk.Repository, snapshot_id: str, page: LogPage = LogPage(), append_dim: str = ""
) -> Log:
    """The commits leading to ``snapshot_id``, newest first, as far as ``page`` reaches."""
    history = repo.ancestry(snapshot_id=snapshot_id)
    return read_log(history, tags_by_snapshot(repo), page, append_dim)
