"""Tags: immutable release names for versions, with the message and time they were made."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import ClassVar

import icechunk

from versioncube.display import html
from versioncube.display.format import short_time
from versioncube.display.results import Result
from versioncube.display.tables import SnapshotRow, Table
from versioncube.errors import VersionError
from versioncube.store.commit import update_repository
from versioncube.store.target import Target

#: Repository-metadata key under which tag messages and times are kept (tags have none).
TAGS_METADATA_KEY = "versioncube.tags"


@dataclasses.dataclass(frozen=True)
class TagInfo(SnapshotRow, Result):
    """A release name: the snapshot it marks, when it was made, and why."""

    name: str
    snapshot_id: str
    created_at: dt.datetime | None
    message: str

    @property
    def created(self) -> str:
        return short_time(self.created_at) if self.created_at else "?"

    def describe(self) -> str:
        return f"tagged {self.short_id} as {self.name}"

    def _repr_html_(self) -> str:
        details = [("snapshot", self.snapshot_id), ("created", f"{self.created} UTC")]
        if self.message:
            details.append(("message", self.message))
        note = html.muted(f"tagged {self.short_id} as {self.name}")
        return html.card(self.html_kind(), self.name, note, html.facts(details))


class TagList(Table[TagInfo]):
    columns: ClassVar[tuple[str, ...]] = ("name", "short id", "created", "message")
    empty = "(no tags)"
    noun = ("tag", "tags")


def create_tag(
    repo: icechunk.Repository, target: Target, name: str, snapshot_id: str, message: str = ""
) -> TagInfo:
    """Tag a snapshot; tags are immutable and a name is never reused, even after deletion."""
    created_at = dt.datetime.now(dt.UTC)

    def tag() -> None:
        try:
            repo.create_tag(name, snapshot_id)
        except icechunk.AlreadyExistsError:  # an existing tag, or a deleted one
            raise VersionError(_tag_taken(repo, name)) from None
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
    """All tags, oldest first, with their messages and creation times.

    Times come from the notes versioncube keeps; only tags made without one (by another tool)
    are looked up in Icechunk's operations log, which grows with the history.
    """
    notes = repo.get_metadata().get(TAGS_METADATA_KEY) or {}
    names = sorted(repo.list_tags())
    unnoted = {name for name in names if not notes.get(name, {}).get("created_at")}
    created_in_log: dict[str, dt.datetime] = {}
    if unnoted:
        for update in repo.ops_log():
            if (
                isinstance(update.kind, icechunk.UpdateType.TagCreated)
                and update.kind.name in unnoted
            ):
                created_in_log.setdefault(update.kind.name, update.updated_at)
                if len(created_in_log) == len(unnoted):
                    break
    tags = []
    for name in names:
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
