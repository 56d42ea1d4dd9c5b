"""The slice ledger: which slices a version of the cube holds, kept inside the version itself.

Exactly-once appends ask one question before every append: is this slice already in the cube?
The ledger answers it with a fixed number of reads, however long the history: it is stored in
the snapshot, next to the data, and every append updates it in the same commit, so it is always
consistent with the data and follows rollbacks, branches, tags and time travel by construction
(a version's ledger is the ledger of that version). Expiring old snapshots (``gc``) changes
nothing in it.

Layout (ledger schema 1), in the Zarr hierarchy of every snapshot:

==========================  =================================================================
node                        content
==========================  =================================================================
``/.versioncube``           a group; its attributes: ``schema`` (1), ``buckets`` (the number
                            of buckets), ``rows`` (the cube's length along the append
                            dimension when the ledger was last written), ``entries`` (how
                            many slices it holds), ``writer`` (the versioncube version that
                            wrote it last) and, for cubes with slices named by a content hash
                            of an earlier scheme, ``legacy_hashes`` (e.g. ``["sha256"]``)
``/.versioncube/slices``    a 1-D string array, one chunk per bucket; bucket ``crc32(identity)
                            % buckets`` holds a JSON object ``{identity: entry}`` for the
                            slices whose identity falls into it
==========================  =================================================================

An entry is ``{"r": [start, stop], "l": [first, last], "p": base, "s": stamp}``: the rows and
append labels the slice was written to, the snapshot the append was committed on (``p``: the
commit that appended the slice is that snapshot's child), and an optional short content stamp
of the slice's source (size and modification time, an ETag: a re-run refuses a file at a known
path whose stamp differs, see :func:`versioncube.write.append.unchanged`); ``l``, ``p`` and
``s`` are left out when unknown. The rows are those of the commit that wrote them: an
operation that moves rows (a later delete or insert) rewrites the entries it moves, and one that
removes all of a slice's rows removes its entry (:meth:`Ledger.remove`), so that appending it
again is not refused; a slice that lost some of its rows keeps its entry, over the rows it has
left (see :func:`versioncube.write.updates.moved_entries`).

Every cube has one ledger, in its root group, whatever its layout: a flat cube, a pyramid's
levels and a tree's nodes, copied and virtual slices alike (every change that adds a slice
writes its entry in its own session). The group is named ``.versioncube`` so that readers of the
cube can skip it: ``xarray.open_zarr`` of the root shows the root's arrays only and never sees
it; versioncube's readers of nested groups leave out every group whose name starts with a dot
(:func:`versioncube.store.dataset.is_internal_group`), and so should other readers of them
(``xarray.open_datatree``).

Cubes written before the ledger (commit record schema 1 and 2) have none: their slices are read
once from the history (:func:`entries_from_history`) and the next append writes the ledger. The
same walk catches up with commits that an older versioncube added on top of a ledger (the
ledger's ``rows`` then differ from the cube's length).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import icechunk
import zarr.api.asynchronous
import zarr.errors

from versioncube._version import __version__
from versioncube.store.upstream import CommittedNodes, OpenNodes, run_on_zarr_loop
from versioncube.versions.record import SCHEMA_VERSION, CommitRecord, Label

LEDGER_GROUP = ".versioncube"
SLICES_ARRAY = "slices"
LEDGER_SCHEMA = 1
#: Buckets of a new ledger. An append reads and rewrites one bucket: about 40 entries (4 KB)
#: after 10,000 appends, 400 after 100,000; Icechunk rewrites the array's manifest of
#: BUCKETS chunk references with each commit, with the buckets under 512 bytes inside it (the
#: manifest grows to about 100 KB until the buckets outgrow that, after ~1,300 appends).
BUCKETS = 256
#: The identity schemes of content hashes written before the current one.
LEGACY_HASHES = ("sha256",)


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One slice in the cube: where it was written and on which snapshot."""

    identity: str
    rows: tuple[int, int]
    labels: tuple[Label, Label] | None
    base: str | None  # the snapshot the append was committed on; None when unknown
    stamp: str | None = None  # a short content stamp of the slice's source, if any

    def to_stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"r": list(self.rows)}
        if self.labels is not None:
            stored["l"] = list(self.labels)
        if self.base is not None:
            stored["p"] = self.base
        if self.stamp is not None:
            stored["s"] = self.stamp
        return stored

    @classmethod
    def from_stored(cls, identity: str, stored: Mapping[str, Any]) -> LedgerEntry:
        labels = stored.get("l")
        return cls(
            identity=identity,
            rows=(int(stored["r"][0]), int(stored["r"][1])),
            labels=(labels[0], labels[1]) if labels else None,
            base=stored.get("p"),
            stamp=stored.get("s"),
        )


def bucket_of(identity: str, buckets: int) -> int:
    """The bucket an identity is kept in (stable across processes and versions)."""
    return zlib.crc32(identity.encode()) % buckets


class Ledger:
    """The ledger of one version: read bucket by bucket on demand, changed in memory, written
    into a writable session with :meth:`write`.

    A Ledger is valid for the snapshot it was read from, and after :meth:`write` for the commit
    of that session; the caller keeps it only as long as that holds. :meth:`fork` hands out a
    copy to read from another session on the same snapshot and to change: forks share the
    buckets read so far, so a bucket is read once per snapshot.
    """

    def __init__(self, store: Any, attrs: Mapping[str, Any], exists: bool = True):
        self._store = store  # a session's store, or a function that opens one when needed
        self.buckets = int(attrs.get("buckets", BUCKETS))
        self.rows = int(attrs.get("rows", 0))
        self.count = int(attrs.get("entries", 0))
        self.legacy_hashes: tuple[str, ...] = tuple(attrs.get("legacy_hashes", ()))
        self.writer = str(attrs.get("writer", "?"))
        self.exists = exists  # False: not (yet) stored in the snapshot
        self._array: Any = None  # the open ``slices`` array of ``_store``
        self._read: dict[int, dict[str, Any]] = {}  # buckets as stored; shared by forks
        self._own: dict[int, dict[str, Any]] = {}  # buckets changed by this instance
        self._dirty: set[int] = set()  # buckets changed since the ledger was last written
        #: the ledger's group and array as the snapshot it was read at stores them, when this
        #: process wrote them (then a session on that snapshot opens them without reading)
        self._committed: CommittedNodes | None = None
        self._written: LedgerWrite | None = None  # the write of writing(), once it ran

    @classmethod
    def empty(cls, store: Any = None) -> Ledger:
        """A new ledger (not stored yet): for a cube being created or started afresh."""
        return cls(store, {"buckets": BUCKETS}, exists=False)

    @classmethod
    def read(cls, store: Any, prefetch: Sequence[str] = ()) -> Ledger | None:
        """The ledger in a session's store, or None when the version has none (written before
        the ledger existed). Reads its attributes, and the buckets of the ``prefetch``
        identities in the same trip; other buckets are read when asked for."""
        found = run_on_zarr_loop(_open_ledger(store, prefetch))
        if found is None:
            return None
        attrs, array, buckets = found
        ledger = cls(store, attrs)
        ledger._array = array
        ledger._read.update(buckets)
        return ledger

    # -- reading ---------------------------------------------------------------------------

    def get(self, identity: str) -> LedgerEntry | None:
        """The entry of a slice identity, or None (reads at most one bucket)."""
        stored = self._bucket(bucket_of(identity, self.buckets)).get(identity)
        return LedgerEntry.from_stored(identity, stored) if stored is not None else None

    def load(self) -> None:
        """Read every bucket not read yet, in one trip (a run of many appends reads the ledger
        once this way, and keeps it current with its own commits)."""
        missing = [n for n in range(self.buckets) if n not in self._own and n not in self._read]
        if missing and self.exists:
            self._read.update(run_on_zarr_loop(_read_buckets(self._slices(), missing)))

    def holds_bucket_of(self, identity: str) -> bool:
        """Whether the bucket of ``identity`` is read already (a look-up costs no read)."""
        number = bucket_of(identity, self.buckets)
        return not self.exists or number in self._own or number in self._read

    def find(self, identities: Sequence[str]) -> LedgerEntry | None:
        """The entry of the first of ``identities`` (a slice and its earlier names) it holds."""
        for identity in identities:
            if (entry := self.get(identity)) is not None:
                return entry
        return None

    def entries(self) -> Iterator[LedgerEntry]:
        """Every entry (reads every bucket: for listings, verify and row-moving operations)."""
        self.load()
        for number in range(self.buckets):
            for identity, stored in self._bucket(number).items():
                yield LedgerEntry.from_stored(identity, stored)

    # -- changing --------------------------------------------------------------------------

    def fork(self, store: Any) -> Ledger:
        """A copy to read from ``store`` (a session on the same snapshot) and to change without
        changing this one."""
        copy = Ledger(store, {}, self.exists)
        copy.buckets, copy.rows, copy.count = self.buckets, self.rows, self.count
        copy.legacy_hashes, copy.writer = self.legacy_hashes, self.writer
        copy._read = self._read
        copy._own = {number: dict(bucket) for number, bucket in self._own.items()}
        copy._dirty = set(self._dirty)
        written = self._written
        copy._committed = written.committed() if written is not None else self._committed
        return copy

    def add(self, entry: LedgerEntry) -> None:
        """Record a slice (replacing an earlier entry of the same identity)."""
        bucket = self._changing(bucket_of(entry.identity, self.buckets))
        if entry.identity not in bucket:
            self.count += 1
        bucket[entry.identity] = entry.to_stored()
        for scheme in LEGACY_HASHES:
            if f"{scheme}:" in entry.identity and scheme not in self.legacy_hashes:
                self.legacy_hashes = (*self.legacy_hashes, scheme)

    def remove(self, identity: str) -> LedgerEntry | None:
        """Forget a slice whose rows a later operation removed; returns its entry, if any."""
        number = bucket_of(identity, self.buckets)
        if identity not in self._bucket(number):
            return None
        stored = self._changing(number).pop(identity)
        self.count -= 1
        return LedgerEntry.from_stored(identity, stored)

    def write(self, store: Any, rows: int) -> None:
        """Store the changed buckets and the attributes into a writable session's store, in
        one trip. ``rows`` is the cube's length along the append dimension in that session.

        Afterwards the ledger is the one of that session's commit.
        """
        pending = self.writing(store, rows)
        run_on_zarr_loop(pending.open_and_write())

    def writing(self, store: Any, rows: int) -> LedgerWrite:
        """:meth:`write` in two steps to run on Zarr's event loop with other writes of the same
        session: :meth:`LedgerWrite.open` before any of them starts, :meth:`LedgerWrite.write`
        together with them (the ledger counts as written once this is called)."""
        self.rows = rows
        attrs: dict[str, Any] = {
            "schema": LEDGER_SCHEMA,
            "buckets": self.buckets,
            "rows": rows,
            "entries": self.count,
            "writer": __version__,
        }
        if self.legacy_hashes:
            attrs["legacy_hashes"] = list(self.legacy_hashes)
        texts = {
            number: json.dumps(self._own[number], separators=(",", ":"), ensure_ascii=False)
            if self._own[number]
            else ""
            for number in sorted(self._dirty)
        }
        exists = self.exists
        known = self._committed if exists else None
        self._store, self.exists, self._array = store, True, None
        self._read = {**self._read, **self._own}  # a new dict: forks keep the old snapshot's
        self._own, self._dirty = {}, set()
        pending = LedgerWrite(store, attrs, texts, exists, known)
        self._committed, self._written = None, pending
        return pending

    # -- internals ---------------------------------------------------------------------------

    def _bucket(self, number: int) -> dict[str, Any]:
        if number in self._own:
            return self._own[number]
        if number not in self._read:
            if not self.exists:
                return {}
            self._read.update(run_on_zarr_loop(_read_buckets(self._slices(), [number])))
        return self._read[number]

    def _changing(self, number: int) -> dict[str, Any]:
        """The bucket, copied on its first change (forks share the buckets as read)."""
        if number not in self._own:
            self._own[number] = dict(self._bucket(number))
        self._dirty.add(number)
        return self._own[number]

    def _slices(self) -> Any:
        if self._array is None:
            path = f"{LEDGER_GROUP}/{SLICES_ARRAY}"
            if callable(self._store):
                self._store = self._store()
            self._array = run_on_zarr_loop(_open_array(self._store, path))
        return self._array


async def _open_ledger(
    store: Any, prefetch: Sequence[str]
) -> tuple[dict[str, Any], Any, dict[int, dict[str, Any]]] | None:
    try:
        group = await zarr.api.asynchronous.open_group(
            store, path=LEDGER_GROUP, mode="r", zarr_format=3, use_consolidated=False
        )
    except (zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError, FileNotFoundError):
        return None
    attrs = dict(group.attrs)
    array = await group.getitem(SLICES_ARRAY)
    buckets = int(attrs.get("buckets", BUCKETS))
    numbers = sorted({bucket_of(identity, buckets) for identity in prefetch})
    return attrs, array, await _read_buckets(array, numbers)


async def _open_array(store: Any, path: str) -> Any:
    return await zarr.api.asynchronous.open_array(store=store, path=path, zarr_format=3)


async def _read_buckets(array: Any, numbers: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not numbers:
        return {}
    if len(numbers) > 1 and len(numbers) == array.shape[0]:
        texts = list(await array.getitem(slice(None)))
    else:
        texts = await asyncio.gather(*(array.getitem(number) for number in numbers))
    return {
        number: json.loads(str(text)) if str(text) else {}
        for number, text in zip(numbers, texts, strict=True)
    }


@dataclasses.dataclass
class LedgerWrite:
    """The ledger's part of a session's writes, in two steps.

    Opening reads (or creates) the ledger's metadata; it must be done before other writes of
    the session start: Zarr names the store (``str(store)``) when it reads metadata, and
    Icechunk's store blocks Zarr's event loop for that while a write of the same session is
    under way, which then never finishes.
    """

    store: Any
    attrs: dict[str, Any]
    texts: Mapping[int, str]
    exists: bool
    #: the ledger's group and array as the session's snapshot stores them, if known
    known: CommittedNodes | None = None
    _group: Any = None
    _array: Any = None
    _finished: bool = False

    async def open(self) -> None:
        if self.known is not None:  # written by this process in the commit the session is on
            nodes = self.known.opened_in(self.store)
            self._group, self._array = nodes.group, nodes.arrays[SLICES_ARRAY]
        elif self.exists:
            self._group = await zarr.api.asynchronous.open_group(
                self.store, path=LEDGER_GROUP, mode="r+", zarr_format=3, use_consolidated=False
            )
            self._array = await self._group.getitem(SLICES_ARRAY)
        else:
            self._group = await zarr.api.asynchronous.open_group(
                self.store, path=LEDGER_GROUP, mode="w", attributes=self.attrs, zarr_format=3
            )
            self._array = await self._group.create_array(
                SLICES_ARRAY,
                shape=(int(self.attrs["buckets"]),),
                chunks=(1,),
                dtype=str,
                dimension_names=["bucket"],
                # uncompressed: Icechunk keeps chunks under 512 bytes inside the manifest, which
                # every commit rewrites; plain text buckets leave it after ~1,300 appends
                compressors=None,
            )

    async def write(self) -> None:
        assert self._group is not None, "open() first"
        updates = [self._array.setitem(number, text) for number, text in self.texts.items()]
        if self.exists:
            updates.append(self._group.update_attributes(self.attrs))
        await asyncio.gather(*updates)
        self._finished = True

    def committed(self) -> CommittedNodes | None:
        """The ledger's group and array as this write left them (None: it did not finish)."""
        if not self._finished:
            return None
        return OpenNodes(self.store, self._group, {SLICES_ARRAY: self._array}).committed()

    async def open_and_write(self) -> None:
        await self.open()
        await self.write()


def entries_from_history(
    repo: icechunk.Repository, snapshot_id: str
) -> tuple[list[LedgerEntry], bool]:
    """The slices appended by commits written before the ledger, newest first, read from the
    commit records (schema 1 and 2) leading to ``snapshot_id``.

    The walk stops at the newest commit that wrote a ledger (schema 3; not one that keeps every
    row as it was, such as ``materialize``, which leaves the ledger as it finds it, none
    included) or that started the cube. Returns the entries and whether the walk reached the
    cube's start (then the entries are all the cube holds; else they come on top of the ledger
    that commit wrote).
    """
    entries: dict[str, LedgerEntry] = {}
    for snapshot in repo.ancestry(snapshot_id=snapshot_id):
        record = CommitRecord.of_snapshot(snapshot)
        if record is None or (record.schema >= SCHEMA_VERSION and record.keeps_rows):
            continue
        if record.schema >= SCHEMA_VERSION:
            return list(entries.values()), False
        if record.slice is not None and record.index_range is not None:
            entry = LedgerEntry(
                record.slice, record.index_range, record.labels, snapshot.parent_id, record.stamp
            )
            entries.setdefault(record.slice, entry)
        if record.starts_cube:
            return list(entries.values()), True
    return list(entries.values()), True


class AppendingCommits:
    """Finds the commit that appended a ledger entry: on the lineage of a snapshot, the child of
    the entry's base.

    The lineage is walked newest first, as far as needed, and what was walked is kept for the
    next question about the same snapshot: a run that skips many slices walks the history once.
    """

    def __init__(self) -> None:
        self._tip: str | None = None
        self._child_of: dict[str, str] = {}
        self._walk: Iterator[Any] | None = None

    def find(self, repo: icechunk.Repository, tip: str, entry: LedgerEntry) -> str | None:
        """The commit on ``tip``'s lineage that appended ``entry``, or None when it is no longer
        in the history (expired by ``gc``) or the entry does not say."""
        if entry.base is None:
            return None
        if tip != self._tip:
            self._tip, self._child_of, self._walk = tip, {}, iter(repo.ancestry(snapshot_id=tip))
        if entry.base in self._child_of:
            return self._child_of[entry.base]
        assert self._walk is not None
        for snapshot in self._walk:
            if snapshot.parent_id is not None:
                self._child_of[snapshot.parent_id] = snapshot.id
            if snapshot.parent_id == entry.base:
                return str(snapshot.id)
        return None
