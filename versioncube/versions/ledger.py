"""The slice ledger: which slice identities a branch's history holds, for exactly-once appends."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from versioncube.versions.record import CommitRecord


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
        self._commits: dict[str, str] = {}  # identity -> snapshot id

    def catch_up(self, repo: Any, tip: str) -> None:
        """Bring the identities up to date with ``tip`` (a snapshot id of the branch)."""
        if tip == self.tip:
            return
        added: dict[str, str] = {}
        builds_on_known = False
        for snapshot in repo.ancestry(snapshot_id=tip):
            if snapshot.id == self.tip:
                builds_on_known = True
                break
            record = CommitRecord.from_metadata(snapshot.metadata)
            if record is not None:
                if record.slice is not None:
                    added.setdefault(record.slice, snapshot.id)
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
            self._commits[record.slice] = snapshot_id
        self.tip = snapshot_id

    def get(self, identity: str) -> str | None:
        """The snapshot that appended this slice, or None."""
        return self._commits.get(identity)

    def as_mapping(self) -> Mapping[str, str]:
        """A read-only view (no copy: this is asked on every append)."""
        return types.MappingProxyType(self._commits)
