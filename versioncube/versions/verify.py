"""Check a version of a cube for damage (``versioncube verify``).

Checks, in order: the version opens as one consistent dataset; the append labels are strictly
increasing (no duplicates, nothing out of order); every versioncube commit in its history
covers the rows right after the previous one, and the labels it recorded are the labels at
those rows; the slice ledger holds one entry per append since the cube was created, each within
the cube's rows and with the labels found there; every chunk of every variable reads back. It
also reports what ``gc`` would remove (objects no branch or tag reaches: rolled-back commits,
interrupted appends), which is not damage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import icechunk
import numpy as np
import zarr

from versioncube.display.format import first_line, format_label, human_size
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.store.dataset import open_version
from versioncube.versions.ledger import Ledger
from versioncube.versions.record import CommitRecord

#: Chunks read at once along the first axis (at most SLAB_BYTES); a failing slab is re-read
#: chunk by chunk to name the damaged ones.
SLAB_CHUNKS = 64
SLAB_BYTES = 64 * 2**20


@dataclasses.dataclass(frozen=True)
class VerifyReport(Result):
    """What ``verify`` checked and found."""

    snapshot_id: str
    commits_checked: int
    labels_checked: int
    chunks_read: int
    problems: list[str]
    orphaned_objects: int  # snapshots, manifests and chunks gc would delete now
    orphaned_bytes: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "ok": self.ok}  # type: ignore[dict-item]

    def html_title(self) -> str:
        return "Verify report"

    def describe(self) -> str:
        lines = [
            f"snapshot {self.snapshot_id}: {self.commits_checked} commits, "
            f"{self.labels_checked} labels, {self.chunks_read} chunks checked",
        ]
        lines += [f"DAMAGE: {problem}" for problem in self.problems]
        lines.append("ok: no damage found" if self.ok else f"{len(self.problems)} problem(s)")
        if self.orphaned_objects:
            lines.append(
                f"{self.orphaned_objects} objects ({human_size(self.orphaned_bytes)}) are "
                "unreachable from every branch and tag (rolled-back commits or interrupted "
                "appends); `versioncube gc` removes them once they are older than its cut-off"
            )
        return "\n".join(lines)


def verify_version(repo: icechunk.Repository, snapshot_id: str, append_dim: str) -> VerifyReport:
    problems: list[str] = []
    store = repo.readonly_session(snapshot_id=snapshot_id).store
    labels = np.array([])
    try:
        dataset = open_version(repo, snapshot_id, chunks=None, create_default_indexes=False)
        if append_dim in dataset.variables:
            labels = dataset.variables[append_dim].values
        size = dataset.sizes.get(append_dim, 0)
    except Exception as error:  # any failure to open is damage to report, not to raise
        problems.append(f"the version does not open as a dataset: {first_line(error)}")
        size = 0
    problems += _label_order(labels, append_dim)
    commits, appends, record_problems = _records(repo, snapshot_id, labels, size, append_dim)
    problems += record_problems
    problems += _ledger_problems(store, labels, size, appends)
    chunks_read, chunk_problems = _read_every_chunk(store)
    problems += chunk_problems
    orphans = repo.garbage_collect(dt.datetime.now(dt.UTC), dry_run=True)
    return VerifyReport(
        snapshot_id=snapshot_id,
        commits_checked=commits,
        labels_checked=len(labels),
        chunks_read=chunks_read,
        problems=problems,
        orphaned_objects=orphans.snapshots_deleted
        + orphans.manifests_deleted
        + orphans.chunks_deleted,
        orphaned_bytes=orphans.bytes_deleted,
    )


def _label_order(labels: np.ndarray, dim: str) -> list[str]:
    if labels.size < 2:
        return []
    bad = np.nonzero(~(labels[1:] > labels[:-1]))[0]
    return [
        f"{dim} labels out of order or duplicated at rows {i} and {i + 1}: "
        f"{format_label(labels[i])}, {format_label(labels[i + 1])}"
        for i in bad[:10]
    ]


def _records(
    repo: icechunk.Repository, snapshot_id: str, labels: np.ndarray, size: int, append_dim: str
) -> tuple[int, int | None, list[str]]:
    """Check each versioncube commit against the rows before it and the labels it covers.

    Returns the commits checked (back to the one that created the cube), the appends since
    (None when the history no longer reaches back to it, after ``gc``, or when other
    operations than appends followed), and the problems found.
    """
    records = []
    for snapshot in repo.ancestry(snapshot_id=snapshot_id):
        record = CommitRecord.of_snapshot(snapshot, append_dim)
        if record is not None:
            records.append((snapshot.id, record))
            if record.starts_cube:
                break  # the commits before it built a cube this one replaced
    problems = []
    expected_start: int | None = None  # unknown until a commit that starts the cube
    appends: int | None = None
    for commit_id, record in reversed(records):
        if record.starts_cube:
            appends = 0
        if appends is not None:
            # only appends add one ledger entry each; after other operations, nothing is known
            appends = appends + 1 if record.appends_rows else None
        if not record.appends_rows or record.index_range is None:
            expected_start = None  # the rows moved: later appends start where they say
            continue
        start, stop = record.index_range
        where = f"commit {commit_id[:12]} ({record.message()})"
        if record.starts_cube:
            expected_start = 0
        if expected_start is not None and start != expected_start:
            problems.append(
                f"{where} starts at row {start}, the rows before it end at {expected_start}"
            )
        if stop > size:
            problems.append(f"{where} ends at row {stop}, but the cube has {size} rows")
        elif record.labels is not None and labels.size:
            found = (label_to_json(labels[start]), label_to_json(labels[stop - 1]))
            if found != tuple(record.labels):
                problems.append(
                    f"{where} recorded labels {list(record.labels)}, the data has {list(found)}"
                )
        expected_start = stop
    return len(records), appends, problems


def _ledger_problems(store: Any, labels: np.ndarray, size: int, appends: int | None) -> list[str]:
    """Check the slice ledger: one entry per appended slice, each where its rows are."""
    ledger = Ledger.read(store)
    if ledger is None:
        return []  # written before the ledger: the next append builds it from the records
    problems = []
    entries = list(ledger.entries())
    if appends is not None and len(entries) != appends:
        problems.append(
            f"the slice ledger holds {len(entries)} slices, the history appended {appends} since "
            "the cube was created"
        )
    if ledger.count != len(entries):
        problems.append(
            f"the slice ledger says it holds {ledger.count} slices, it has {len(entries)}"
        )
    for entry in entries:
        start, stop = entry.rows
        where = f"the slice ledger's entry of {entry.identity}"
        if not 0 <= start < stop <= size:
            problems.append(f"{where} has rows [{start}:{stop}], the cube has {size} rows")
        elif entry.labels is not None and labels.size:
            found = (label_to_json(labels[start]), label_to_json(labels[stop - 1]))
            if found != tuple(entry.labels):
                problems.append(
                    f"{where} has labels {list(entry.labels)}, the data has {list(found)}"
                )
    return problems


def _read_every_chunk(store: Any) -> tuple[int, list[str]]:
    group = zarr.open_group(store, mode="r")
    problems, chunks = [], 0
    for name, array in group.arrays():
        if array.ndim == 0:
            try:
                array[()]
                chunks += 1
            except Exception as error:
                problems.append(f"variable {name!r} unreadable: {first_line(error)}")
            continue
        grid = array.cdata_shape
        per_step = int(np.prod(grid[1:], dtype=int))
        step_bytes = per_step * int(np.prod(array.chunks, dtype=int)) * array.dtype.itemsize
        slab = max(1, min(SLAB_CHUNKS, SLAB_BYTES // max(step_bytes, 1)))
        for start in range(0, grid[0], slab):
            stop = min(start + slab, grid[0])
            try:
                array.get_block_selection(slice(start, stop))
                chunks += (stop - start) * per_step
            except Exception:  # find which chunks of the slab fail
                for index in np.ndindex(stop - start, *grid[1:]):
                    block = (index[0] + start, *index[1:])
                    try:
                        array.get_block_selection(block)
                        chunks += 1
                    except Exception as error:
                        problems.append(
                            f"variable {name!r} chunk {block} unreadable: {first_line(error)}"
                        )
    return chunks, problems
