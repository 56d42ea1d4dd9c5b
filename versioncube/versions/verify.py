"""Check a version of a cube for damage (``versioncube verify``).

Checks, in order: the version opens as one consistent dataset; the append labels are strictly
increasing (no duplicates, nothing out of order); every versioncube commit in its history
covers the rows right after the previous one, and the labels it recorded are the labels at
those rows; every chunk of every variable reads back. It also reports what ``gc`` would remove
(objects no branch or tag reaches: rolled-back commits, interrupted appends), which is not
damage.

A cube of groups (a pyramid's levels, a tree's nodes) is checked group by group, and across
them: every group along the append dimension has the same length and labels, a pyramid has all
its levels (see :mod:`versioncube.versions.groups`); the history is checked against the rows of
the first group with labels.
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
from versioncube.versions.groups import group_problems, read_groups
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
        return {**self._fields_json(), "ok": self.ok}

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
    paths = [""]
    try:
        groups = read_groups(repo, snapshot_id, chunks=None, create_default_indexes=False)
        paths = list(groups.datasets)
        dataset = groups.datasets[groups.reference(append_dim)]
        if append_dim in dataset.variables:
            labels = dataset.variables[append_dim].values
        size = dataset.sizes.get(append_dim, 0)
        problems += group_problems(groups, append_dim)
    except Exception as error:  # any failure to open is damage to report, not to raise
        problems.append(f"the version does not open as a dataset: {first_line(error)}")
        size = 0
    problems += _label_order(labels, append_dim)
    commits, record_problems = _records(repo, snapshot_id, labels, size)
    problems += record_problems
    chunks_read = 0
    for path in paths:
        chunks, chunk_problems = _read_every_chunk(store, path)
        chunks_read += chunks
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
    repo: icechunk.Repository, snapshot_id: str, labels: np.ndarray, size: int
) -> tuple[int, list[str]]:
    """Check the appends of the cube's current life against the rows before them and the
    labels they recorded.

    What the history implies is checked, no more: only commits since the cube was last started
    count (earlier ones belong to a cube that ``force_new`` replaced); when ``gc`` expired the
    oldest commits, the oldest append left starts where it says (the rows before it are no
    longer recorded); and an operation that moves rows (anything but an append) makes the row
    numbers of the appends before it stale, so the check starts after it.
    """
    appends: list[tuple[str, CommitRecord]] = []  # newest first
    started = False
    for snapshot in repo.ancestry(snapshot_id=snapshot_id):
        record = CommitRecord.from_metadata(snapshot.metadata)
        if record is None:
            continue
        if not record.appends_rows or record.index_range is None:
            break
        appends.append((snapshot.id, record))
        if record.starts_cube:
            started = True
            break
    problems = []
    expected_start: int | None = 0 if started else None
    for commit_id, record in reversed(appends):
        assert record.index_range is not None
        start, stop = record.index_range
        where = f"commit {commit_id[:12]} ({record.message()})"
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
    return len(appends), problems


def _read_every_chunk(store: Any, path: str = "") -> tuple[int, list[str]]:
    group = zarr.open_group(store, path=path, mode="r")
    problems, chunks = [], 0
    for array_name, array in group.arrays():
        name = f"/{path}/{array_name}" if path else array_name
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
