"""The slice ledger: which slice identities a branch's history holds, for exactly-once appends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from versioncube.versions.record import CommitRecord


class Held(NamedTuple):
    """Where the history holds a slice: the snapshot that appended it, and the content stamp
    the slice had then (None when none was recorded)."""

    snapshot_id: str
    stamp: str | None


class _SnapshotView(Mapping[str, str]):
    """Identity -> snapshot id over the ledger's entries, without copying them."""

    def __init__(self, entries: Mapping[str, Held]):
        self._entries = entries

    def __getitem__(self, identity: str) -> str:
        return self._entries[identity].snapshot_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class SliceHistory:
    """Which slice identities a branch's history holds, kept current incrementally.

    Catching up with a moved tip walks only the commits added since the last look, so checking
    a slice costs the same for the 10th and the 10,000th append. A tip that no longer descends
    from the last one seen (a rollback) makes it re-read the whole history once. Only the
    cube's current content counts: the walk stops at the newest commit that started the cube, so the
    slices of a cube that ``force_new`` replaced are appended again.
    """

    def __init__(self) -> None:
        self.tip: str | None = None
        self._commits: dict[str, Held] = {}  # identity -> (snapshot id, content stamp)

    def catch_up(self, repo: Any, tip: str) -> None:
        """Bring the identities up to date with ``tip`` (a snapshot id of the branch)."""
        if tip == self.tip:
            return
        added: dict[str, Held] = {}
        builds_on_known = False
        for snapshot in repo.ancestry(snapshot_id=tip):
            if snapshot.id == self.tip:
                builds_on_known = True
                break
            record = CommitRecord.from_metadata(snapshot.metadata)
            if record is not None:
                if record.slice is not None:
                    added.setdefault(record.slice, Held(snapshot.id, record.stamp))
                if record.starts_cube:
                    break
        if builds_on_known:
            self._commits.update(added)
        else:
            self._commits = added
        self.tip = tip

    def committed(self, snapshot_id: str, record: CommitRecord) -> None:
        """Note our own commit on top of the tip we had caught up with."""
        if record.starts_cube:
            self._commits = {}
        if record.slice is not None:
            self._commits[record.slice] = Held(snapshot_id, record.stamp)
        self.tip = snapshot_id

    def get(self, identity: str) -> str | None:
        """The snapshot that appended this slice, or None."""
        held = self._commits.get(identity)
        return held.snapshot_id if held is not None else None

    def held(self, identity: str) -> Held | None:
        """The snapshot that appended this slice and the slice's content stamp then, or None."""
        return self._commits.get(identity)

    def as_mapping(self) -> Mapping[str, str]:
        """Identity -> snapshot id, a read-only view (no copy: this is asked on every append)."""
        return _SnapshotView(self._commits)
