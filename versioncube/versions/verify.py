"""Check a version of a cube for damage (``versioncube verify``).

Checks, in order: the version opens as one consistent dataset; the append labels are strictly
increasing (no duplicates, nothing out of order); every versioncube commit in its history
covers the rows right after the previous one, and the labels it recorded are the labels at
those rows; the slice ledger holds one entry per append since the cube was created, each within
the cube's rows and with the labels found there; the files it references (virtual slices) are
unchanged and present (:func:`stale_sources`); every chunk of every variable reads back. It
also reports what ``gc`` would remove (objects no branch or tag reaches: rolled-back commits,
interrupted appends), which is not damage.

A cube of groups (a pyramid's levels, a tree's nodes) is checked group by group, and across
them: every group along the append dimension has the same length and labels, a pyramid has all
its levels (see :mod:`versioncube.versions.groups`); the history is checked against the rows of
the first group with labels.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any
from urllib.parse import unquote, urlparse

import icechunk
import numpy as np
import zarr

from versioncube.display import html, palette
from versioncube.display.format import first_line, format_label, human_size
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.store.upstream import buffer_prototype, run_on_zarr_loop
from versioncube.versions.groups import group_problems, read_groups
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
            lines.append(self.orphans_note())
        return "\n".join(lines)

    def orphans_note(self) -> str:
        """What gc would remove now (not damage)."""
        return (
            f"{self.orphaned_objects} objects ({human_size(self.orphaned_bytes)}) are "
            "unreachable from every branch and tag (rolled-back commits or interrupted "
            "appends); `versioncube gc` removes them once they are older than its cut-off"
        )

    def _repr_html_(self) -> str:
        checked = [
            ("snapshot", self.snapshot_id),
            (
                "checked",
                f"{self.commits_checked} commits, {self.labels_checked} labels, "
                f"{self.chunks_read} chunks",
            ),
        ]
        if self.ok:
            verdict = html.colored("ok: no damage found", palette.OK, bold=True)
        else:
            verdict = html.colored(f"{len(self.problems)} problem(s)", palette.DAMAGE, bold=True)
        parts = [html.facts(checked)]
        if self.problems:
            damage = html.lines(f"DAMAGE: {problem}" for problem in self.problems)
            parts.append(html.section("Damage", damage, count=len(self.problems)))
        if self.orphaned_objects:
            parts.append(html.muted(self.orphans_note()))
        accent = palette.OK if self.ok else palette.DAMAGE
        return html.card(self.html_kind(), "verify", verdict, *parts, accent=accent)


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
    commits, appends, record_problems = _records(repo, snapshot_id, labels, size, append_dim)
    problems += record_problems
    try:
        problems += _ledger_problems(store, labels, size, appends)
    except Exception as error:  # a ledger that cannot be read is damage to report, not to raise
        problems.append(f"the slice ledger cannot be read: {first_line(error)}")
    sources, source_problems = stale_sources(repo, snapshot_id)
    problems += source_problems
    chunks_read = 0
    for path in paths:
        chunks, chunk_problems = _read_every_chunk(store, path)
        chunks_read += chunks
        # a changed or missing file fails every chunk that references it: it is named once above
        problems += [line for line in chunk_problems if not any(url in line for url in sources)]
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


def stale_sources(repo: icechunk.Repository, snapshot_id: str) -> tuple[set[str], list[str]]:
    """The files a version references (virtual chunks) that changed or vanished since their
    commits referenced them, and a problem line for each.

    A local file is compared with the stamp its commit recorded (size and modification time,
    to the nanosecond); an object, or a file without a recorded stamp, by reading one of its
    chunks through Icechunk, which refuses a changed ETag or modification time.
    """
    if not repo.config.virtual_chunk_containers:
        return set(), []
    session = repo.readonly_session(snapshot_id=snapshot_id)
    locations = set(session.all_virtual_chunk_locations())
    if not locations:
        return set(), []
    stamps: dict[str, tuple[str, CommitRecord]] = {}
    for snapshot in repo.ancestry(snapshot_id=snapshot_id):
        record = CommitRecord.of_snapshot(snapshot)
        if record is not None and record.virtual is not None:
            stamps.setdefault(str(record.virtual.get("url")), (snapshot.id, record))
    stale: set[str] = set()
    problems: list[str] = []
    unchecked = []
    for url in sorted(locations):
        recorded = stamps.get(url)
        where = f" (referenced by commit {recorded[0][:12]})" if recorded else ""
        parsed = urlparse(url)
        if parsed.scheme == "file" and recorded is not None:
            path = unquote(parsed.path)
            try:
                status = os.stat(path)
            except OSError:
                stale.add(url)
                problems.append(f"source {url} is missing{where}")
                continue
            wanted = recorded[1].virtual or {}
            if (status.st_size, status.st_mtime_ns) != (wanted.get("size"), wanted.get("mtime_ns")):
                stale.add(url)
                problems.append(
                    f"source {url} changed after it was referenced{where}: size "
                    f"{status.st_size} (was {wanted.get('size')}), modified "
                    f"{_file_time(status.st_mtime_ns)} (was {_file_time(wanted.get('mtime_ns'))})"
                )
        else:
            unchecked.append((url, where))
    if unchecked:
        for url, where, reason in _read_one_chunk_each(session.store, unchecked):
            stale.add(url)
            problems.append(f"source {url} {reason}{where}")
    # Icechunk names a local file by its path in some messages, by its URL in others
    stale |= {unquote(urlparse(url).path) for url in stale if url.startswith("file://")}
    return stale, problems


def _file_time(ns: Any) -> str:
    if not isinstance(ns, int):
        return "?"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _read_one_chunk_each(store: Any, files: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Read one chunk of each file through Icechunk; (url, where, reason) for those that fail."""
    wanted = dict(files)
    keys: dict[str, str] = {}

    group = zarr.open_group(store, mode="r")
    arrays = [(name, _key_encoding(array)) for name, array in group.arrays()]

    async def find() -> None:
        for name, encoding in arrays:
            async for coords, kinds, paths, _, _, _ in store.array_chunk_iterator(name):
                for index, kind, path in zip(coords, kinds, paths, strict=True):
                    if int(kind) == 2 and path in wanted and path not in keys:
                        keys[path] = f"{name}/" + encoding.encode_chunk_key(tuple(map(int, index)))
            if len(keys) == len(wanted):
                return

    run_on_zarr_loop(find())
    failures = []

    for url, key in sorted(keys.items()):
        try:
            run_on_zarr_loop(store.get(key, buffer_prototype()))
        except Exception as error:  # whatever the read says is the finding
            text = first_line(error)
            if "checksum" in text and "changed" in text:
                reason = "changed after it was referenced"
            elif "not found" in text.lower() or "No such file" in text:
                reason = "is missing"
            else:
                reason = f"cannot be read: {text}"
            failures.append((url, wanted[url], reason))
    return failures


def _key_encoding(array: Any) -> Any:
    """How an array names its chunks (Zarr v3; versioncube writes nothing else)."""
    return array.metadata.chunk_key_encoding


def _label_order(labels: np.ndarray, dim: str) -> list[str]:
    if labels.size < 2:
        return []
    if labels[-1] < labels[0]:  # a cube of decreasing labels (append_step "-")
        bad = np.nonzero(~(labels[1:] < labels[:-1]))[0]
    else:
        bad = np.nonzero(~(labels[1:] > labels[:-1]))[0]
    return [
        f"{dim} labels out of order or duplicated at rows {i} and {i + 1}: "
        f"{format_label(labels[i])}, {format_label(labels[i + 1])}"
        for i in bad[:10]
    ]


def _records(
    repo: icechunk.Repository, snapshot_id: str, labels: np.ndarray, size: int, append_dim: str
) -> tuple[int, int | None, list[str]]:
    """Check the appends of the cube's current life against the rows before them and the
    labels they recorded.

    What the history implies is checked, no more: only commits since the cube was last started
    count (earlier ones belong to a cube that ``force_new`` replaced); when ``gc`` expired the
    oldest commits, the oldest append left starts where it says (the rows before it are no
    longer recorded); and an operation that moves rows (anything but an append) makes the row
    numbers of the appends before it stale, so the check starts after it.

    Returns the appends checked, how many slices the cube's ledger should hold (None when the
    history no longer reaches back to the cube's start, after ``gc``, or when an operation
    other than appends followed it), and the problems found.
    """
    appends: list[tuple[str, CommitRecord]] = []  # newest first
    started = False
    update: tuple[str, CommitRecord] | None = None  # the newest write by label or delete
    for snapshot in repo.ancestry(snapshot_id=snapshot_id):
        record = CommitRecord.of_snapshot(snapshot, append_dim)
        if record is None or record.keeps_rows:
            continue
        if record.updates and record.size is not None:
            update = (snapshot.id, record)
            break
        if not record.appends_rows or record.index_range is None:
            break
        appends.append((snapshot.id, record))
        if record.starts_cube:
            started = True
            break
    problems = []
    expected_start: int | None = 0 if started else None
    if update is not None:  # the appends after it start at the length it left
        expected_start = update[1].size
        problems += _update_problems(*update, labels, size, append_dim, bool(appends))
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
    checked = len(appends) + (update is not None)
    return checked, len(appends) if started else None, problems


def _update_problems(
    commit_id: str,
    record: CommitRecord,
    labels: np.ndarray,
    size: int,
    append_dim: str,
    appended_after: bool,
) -> list[str]:
    """Check the newest write by label or delete (only appends came after it, so its rows are
    still where it recorded them): the labels it wrote are at its rows; the labels it removed
    are gone from where they were (unless appends followed: they may append them again)."""
    if record.index_range is None or record.labels is None or not labels.size:
        return []
    start, stop = record.index_range
    where = f"commit {commit_id[:12]} ({record.message()})"
    if stop > size:
        return [f"{where} ends at row {stop}, but the cube has {size} rows"]
    first, last = record.labels
    if record.operation != "delete":
        found = (label_to_json(labels[start]), label_to_json(labels[stop - 1]))
        if found != (first, last):
            return [f"{where} recorded labels {[first, last]}, the data has {list(found)}"]
        return []
    if appended_after:
        return []
    around = [labels[row] for row in (start - 1, start) if 0 <= row < size]
    back = {label_to_json(label) for label in around}
    if first in back or last in back:
        return [f"{where} removed {append_dim} {first} .. {last}, but the data still has them"]
    return []


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
        blocks = array.shards or array.chunks  # block selections count shards when sharded
        grid = tuple(-(-size // length) for size, length in zip(array.shape, blocks, strict=True))
        per_step = int(np.prod(grid[1:], dtype=int))
        step_bytes = per_step * int(np.prod(blocks, dtype=int)) * array.dtype.itemsize
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
