"""Retention: expire old snapshots, then delete what no branch or tag can reach.

This is the only place where versioncube deletes data. Branch tips and tagged snapshots are
never expired, so every release stays readable; commits discarded by a rollback become
collectable once they are older than the cut-off.

The cut-off also protects running writers: a writer's chunks are unreachable until it commits,
so a cut-off younger than the longest append could delete them. Cut-offs shorter than
:data:`SAFE_MINIMUM` therefore need ``force``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import icechunk

from versioncube.display import html
from versioncube.display.format import human_size
from versioncube.display.results import Result
from versioncube.errors import ConfigError, VersionError
from versioncube.store.commit import update_repository
from versioncube.store.target import Target

SAFE_MINIMUM = dt.timedelta(days=1)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "sec": "seconds", "m": "minutes", "min": "minutes", "h": "hours",
          "d": "days", "w": "weeks"}  # fmt: skip


def parse_duration(text: str | dt.timedelta) -> dt.timedelta:
    """``"30d"``, ``"12h"``, ``"90min"``, ``"2w"``, ``"45s"`` (or a timedelta) as a timedelta."""
    if isinstance(text, dt.timedelta):
        return text
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            f"duration {text!r} is not understood: use a number and a unit, e.g. 30d, 12h, "
            "90min, 2w, 45s"
        )
    return dt.timedelta(**{_UNITS[match[2].lower()]: float(match[1])})


@dataclasses.dataclass(frozen=True)
class GcResult(Result):
    """What a garbage collection removed (or, in a dry run, would remove)."""

    cutoff: dt.datetime
    dry_run: bool
    expired_snapshots: int
    snapshots_deleted: int
    manifests_deleted: int
    chunks_deleted: int
    bytes_deleted: int

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        expired = "would expire" if self.dry_run else "expired"
        return (
            f"cut-off {self.cutoff:%Y-%m-%d %H:%M:%S} UTC: {expired} {self.expired_snapshots} "
            f"snapshots; {verb} {self.snapshots_deleted} snapshots, {self.manifests_deleted} "
            f"manifests, {self.chunks_deleted} chunks ({human_size(self.bytes_deleted)})"
        )

    def _repr_html_(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        expired = "would expire" if self.dry_run else "expired"
        details = [
            ("cut-off", f"{self.cutoff:%Y-%m-%d %H:%M:%S} UTC"),
            (expired, f"{self.expired_snapshots} snapshots"),
            (
                verb,
                f"{self.snapshots_deleted} snapshots, {self.manifests_deleted} manifests, "
                f"{self.chunks_deleted} chunks",
            ),
            ("freeing", human_size(self.bytes_deleted)),
        ]
        title = "garbage collection" + (" (dry run)" if self.dry_run else "")
        return html.card(self.html_kind(), title, "", html.facts(details))


def collect_garbage(
    repo: icechunk.Repository,
    target: Target,
    older_than: dt.timedelta,
    *,
    dry_run: bool = False,
    force: bool = False,
) -> GcResult:
    """Expire snapshots older than ``older_than`` and delete unreachable objects."""
    if older_than < SAFE_MINIMUM and not force:
        raise VersionError(
            f"a cut-off of {_duration(older_than)} is shorter than the safe minimum "
            f"{_duration(SAFE_MINIMUM)}: an append still running could lose its chunks; "
            "force it only if no writer is running"
        )
    cutoff = dt.datetime.now(dt.UTC) - older_than
    if dry_run:
        expired = len(_expirable(repo, cutoff))
        summary = update_repository(target, lambda: repo.garbage_collect(cutoff, dry_run=True))
    else:

        def expire_and_collect() -> tuple[int, icechunk.GCSummary]:
            count = len(repo.expire_snapshots(cutoff))
            return count, repo.garbage_collect(cutoff)

        expired, summary = update_repository(target, expire_and_collect)
    return GcResult(
        cutoff=cutoff,
        dry_run=dry_run,
        expired_snapshots=expired,
        snapshots_deleted=summary.snapshots_deleted,
        manifests_deleted=summary.manifests_deleted,
        chunks_deleted=summary.chunks_deleted,
        bytes_deleted=summary.bytes_deleted,
    )


def _expirable(repo: icechunk.Repository, cutoff: dt.datetime) -> set[str]:
    """Snapshots an expiration would drop: old ones that no branch or tag points at."""
    pinned = {repo.lookup_branch(b) for b in repo.list_branches()}
    pinned |= {repo.lookup_tag(t) for t in repo.list_tags()}
    old: set[str] = set()
    for branch in repo.list_branches():
        for snapshot in repo.ancestry(branch=branch):
            if snapshot.parent_id is not None and snapshot.written_at < cutoff:
                old.add(snapshot.id)
    return old - pinned


def _duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
