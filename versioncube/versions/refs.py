"""Turn what a user calls a version into a snapshot id.

Wherever a version is asked for, these forms are accepted (tried in this order):

===========================  ===================================================================
form                         meaning
===========================  ===================================================================
``None``                     the tip of the cube's branch
a tag name                   the snapshot the tag marks
a branch name                that branch's tip
``REF~N`` or ``~N``          N commits before REF (a branch, tag or snapshot id; without
                             one, the tip of the cube's branch): ``log`` pages back with
                             ``--at OLDEST_ID~1``
a snapshot id                that snapshot, also after a rollback discarded it; a unique
                             prefix of 4+ characters (as ``log`` shows) works too
an ISO 8601 date-time        "as of": the last commit on the branch at or before it
(or a ``datetime``)          (naive times are UTC)
===========================  ===================================================================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Iterable

import icechunk

from versioncube.errors import ConfigError, RefNotFoundError

VersionLike = str | dt.datetime | None

_ANCESTOR = re.compile(r"^(?P<branch>[^~]*)~(?P<count>\d+)$")
_SNAPSHOT_ID = re.compile(r"^[0-9A-Z]{4,20}$")


@dataclasses.dataclass(frozen=True)
class ResolvedVersion:
    """A version as the user named it, and the snapshot it resolved to."""

    snapshot_id: str
    kind: str  # "branch", "tag", "ancestor", "snapshot", "as of"
    text: str


def resolve_version(
    repo: icechunk.Repository, version: VersionLike, *, branch: str
) -> ResolvedVersion:
    """Resolve any accepted form of a version (see the module docstring) to a snapshot id."""
    if version is None:
        return ResolvedVersion(_branch_tip(repo, branch), "branch", branch)
    if isinstance(version, dt.datetime):
        return _as_of(repo, branch, version, str(version))
    text = str(version).strip()
    if text in repo.list_tags():
        return ResolvedVersion(repo.lookup_tag(text), "tag", text)
    if text in repo.list_branches():
        return ResolvedVersion(repo.lookup_branch(text), "branch", text)
    ancestor = _ANCESTOR.match(text)
    if ancestor:
        start = ancestor["branch"]
        base = resolve_version(repo, start or None, branch=branch) if start else None
        tip = base.snapshot_id if base is not None else _branch_tip(repo, branch)
        name = f"{base.kind} {start!r}" if base is not None else f"branch {branch!r}"
        return _ancestor(repo, tip, name, int(ancestor["count"]), text)
    if _SNAPSHOT_ID.match(text):
        found = _snapshot_by_prefix(repo, text)
        if found:
            if not _exists(repo, found):
                raise RefNotFoundError(_expired_message(repo, branch, f"snapshot {found}"))
            return ResolvedVersion(found, "snapshot", text)
    moment = parse_datetime(text)
    if moment is not None:
        return _as_of(repo, branch, moment, text)
    raise RefNotFoundError(_unknown_message(repo, text))


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time as an aware UTC datetime, or None if it is not one."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def moment(value: str | dt.datetime | None, what: str = "time") -> dt.datetime | None:
    """A point in time given as ISO 8601 text or a datetime, aware (naive ones are UTC); a
    date alone means its midnight. Raises ConfigError for text that is not a date-time."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = parse_datetime(value)
    if parsed is None:
        raise ConfigError(
            f"{what} {value!r} is not an ISO 8601 date or date-time (e.g. 2024-03-01 or "
            "2024-03-01T12:00:00Z)"
        )
    return parsed


def _branch_tip(repo: icechunk.Repository, branch: str) -> str:
    if branch not in repo.list_branches():
        raise RefNotFoundError(_unknown_message(repo, branch, what="branch"))
    return repo.lookup_branch(branch)


def _as_of(
    repo: icechunk.Repository, branch: str, moment: dt.datetime, text: str
) -> ResolvedVersion:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    oldest = None
    for snapshot in repo.ancestry(snapshot_id=_branch_tip(repo, branch)):
        if snapshot.written_at <= moment:
            if snapshot.parent_id is None and oldest is not None:
                # the repository's empty first snapshot: no data at that moment
                raise RefNotFoundError(_before_data(repo, branch, moment, oldest))
            return ResolvedVersion(snapshot.id, "as of", text)
        oldest = snapshot
    raise RefNotFoundError(
        f"no commit on branch {branch!r} at or before {moment.isoformat()} "
        "(the repository is younger)"
    )


def _before_data(
    repo: icechunk.Repository, branch: str, moment: dt.datetime, oldest: icechunk.SnapshotInfo
) -> str:
    when = moment.isoformat()
    if _expiration_ran(repo):
        return _expired_message(repo, branch, f"the version of branch {branch!r} as of {when}")
    return (
        f"the cube had no data yet at {when}: the first commit on branch {branch!r} is "
        f"{oldest.id[:12]} ({oldest.written_at:%Y-%m-%d %H:%M:%S} UTC)"
    )


def _exists(repo: icechunk.Repository, snapshot_id: str) -> bool:
    try:
        repo.lookup_snapshot(snapshot_id)
    except icechunk.IcechunkError:
        return False
    return True


def _expiration_ran(repo: icechunk.Repository) -> bool:
    return any(type(update.kind).__name__ == "ExpirationRan" for update in repo.ops_log())


def _expired_message(repo: icechunk.Repository, branch: str, what: str) -> str:
    """Say that gc removed a version, and which versions remain."""
    history = [s for s in repo.ancestry(snapshot_id=repo.lookup_branch(branch)) if s.parent_id]
    left = f"branch {branch!r} has {len(history)} commit{'' if len(history) == 1 else 's'}"
    if history:
        oldest = history[-1]
        left += f", the oldest {oldest.id[:12]} ({oldest.written_at:%Y-%m-%d %H:%M:%S} UTC)"
    tags = sorted(repo.list_tags())
    if tags:
        left += f"; tags: {', '.join(tags)}"
    return f"{what} was removed by gc (expired) and cannot be read; what remains: {left}"


def _ancestor(
    repo: icechunk.Repository, start: str, name: str, count: int, text: str
) -> ResolvedVersion:
    for index, snapshot in enumerate(repo.ancestry(snapshot_id=start)):
        if index == count:
            return ResolvedVersion(snapshot.id, "ancestor", text)
    raise RefNotFoundError(f"{text}: {name} has fewer than {count} earlier commits")


def _snapshot_by_prefix(repo: icechunk.Repository, prefix: str) -> str | None:
    if len(prefix) == 20:
        if _exists(repo, prefix) or prefix in set(known_snapshot_ids(repo)):
            return prefix  # (one that gc expired is reported as such by the caller)
        return None
    matches = {
        snapshot_id for snapshot_id in known_snapshot_ids(repo) if snapshot_id.startswith(prefix)
    }
    if len(matches) > 1:
        raise RefNotFoundError(
            f"snapshot id prefix {prefix!r} is ambiguous: {', '.join(sorted(matches))}"
        )
    return matches.pop() if matches else None


def known_snapshot_ids(repo: icechunk.Repository) -> Iterable[str]:
    """Every snapshot id reachable from a branch or tag, or recorded in the operations log."""
    for branch in repo.list_branches():
        yield from (snapshot.id for snapshot in repo.ancestry(branch=branch))
    for tag in repo.list_tags():
        yield repo.lookup_tag(tag)
    for update in repo.ops_log():
        for field in ("new_snap_id", "previous_snap_id"):
            snapshot_id = getattr(update.kind, field, None)
            if snapshot_id:
                yield snapshot_id


def _unknown_message(repo: icechunk.Repository, text: str, what: str = "version") -> str:
    names = sorted(repo.list_tags() | repo.list_branches())
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    known = f" (tags and branches: {', '.join(names)})" if names and not close else ""
    return (
        f"unknown {what} {text!r}: not a tag, branch, REF~N, snapshot id or ISO date-time"
        f"{hint}{known}"
    )


def ref_names(repo: icechunk.Repository) -> dict[str, list[str]]:
    """Snapshot id -> the branches and tags pointing at it."""
    names: dict[str, list[str]] = {}
    for branch in repo.list_branches():
        names.setdefault(repo.lookup_branch(branch), []).append(branch)
    for tag in repo.list_tags():
        names.setdefault(repo.lookup_tag(tag), []).append(f"tag:{tag}")
    return names
