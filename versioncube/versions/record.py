"""The commit record: what versioncube records with every commit, and reading it back.

Each commit's message ends with the record, as a trailer line after a blank line::

    append 2024-03-01.nc: time 2024-03-01

    versioncube: {"v":3,"o":"append","n":"2024-03-01.nc","r":[917,918],"l":["2024-03-01"]}

The first paragraph is for people (a message given with ``-m`` replaces it; the trailer stays).
Why the message and not the commit metadata: Icechunk keeps every commit's message and metadata
in the repository's one mutable object and rewrites it on every commit, and the metadata costs
far more than the message: after 10,000 commits, a commit with 60 bytes of metadata on every
commit took 18.9 ms of CPU, with the same bytes in the message 10.6 ms, with neither 10.6 ms
(docs/performance.md). So versioncube stores no commit metadata at all, and the record holds
only what ``log`` and ``verify`` show, nothing that can be derived. Schema 3 (this one):

=======  ==========================================================================
key      meaning
=======  ==========================================================================
``v``    3, the version of this layout
``o``    what the commit did: ``"create"`` (the first slice, or a cube started afresh),
         ``"append"`` or ``"materialize"``; later operations add their own names
``n``    the slice's short name, as messages show it (left out when there is none)
``r``    ``[start, stop)`` rows along the append dimension written by this commit
``l``    ``[first]`` or ``[first, last]`` append labels (ISO 8601 for datetimes;
         one label when both are the same; left out without a label coordinate)
``d``    the append dimension, on commits that start the cube only (the others
         append along the cube's dimension, kept in the repository's metadata)
``s``    optional: the content stamp of a file slice when it was appended (size and
         modification time, or an ETag, as the storage reported them; the ledger
         keeps it too, and a re-run refuses a file at the same path whose stamp
         differs)
``f``    optional, on commits of virtual slices (``append --virtual``): the file the
         commit references instead of copying, and its stamp when it was referenced:
         ``{"url": ..., "size": ..., "mtime_ns": ...}`` for a local file,
         ``{"url": ..., "size": ..., "etag": ...}`` for an object
``g``    optional: the groups the commit appended to, as DataTree paths
         (``["/0", "/1"]`` for the levels of a pyramid, ``["/", "/atmos"]`` for a
         tree); left out for a flat cube (its one group, the root)
``vs``   optional, on schema changes (``add-variable``, ``drop-variable``): the
         variables added or dropped
``k``    optional, on ``add-variable``: how many append labels were given values
         (``l`` names the first and last of them; the others hold the fill value)
``c``    on writes by label and deletes: how many labels were ``replaced``,
         ``inserted`` (before the cube's last label), ``appended`` (after it) and
         ``removed``, those that are not 0 (``{"replaced":3,"inserted":4}``)
``z``    on writes by label and deletes: the cube's length after the commit
``w``    on writes by label and deletes: ``[written, moved, bytes]``: chunks written,
         chunk references moved (no data copied) and bytes written (uncompressed)
=======  ==========================================================================

On writes by label (``upsert``, ``time_series``, ``replace``, ``insert``, see
:mod:`versioncube.write.updates`) ``r`` is the rows the slice's labels span in the cube after
the commit and ``l`` the slice's first and last label; on a ``delete``, ``l`` is the first and
last label removed and ``r`` the empty range ``[p, p)`` where they were.

Operations: ``create`` and ``append`` (copied or, with ``f``, referenced slices),
``materialize`` (referenced chunks of ``r`` copied into the repository: no rows move, no values
change, no slice is added), the schema changes ``add-variable`` and ``drop-variable`` (a
variable created over every row, or removed: no rows move, no other variable changes, no slice
is added), ``replace`` (values of existing labels rewritten: no row moves), and ``upsert``,
``time_series``, ``insert`` and ``delete`` (rows inserted or removed by label: the row numbers
of earlier commits are stale after them).

What was left out, and where it is: the slice's full identity (a path, URI or content hash) is
kept with its rows and labels in the snapshot's slice ledger (:mod:`versioncube.versions.ledger`),
which is also what resume reads; the versioncube version that wrote a commit is in the ledger's
attributes.

Older schemas are still read, from the commit metadata (``metadata["versioncube"]``): schema 2
stored one compact JSON text with the long keys of :meth:`CommitRecord.to_json` (``schema``,
``operation``, ``slice``, ``slice_name``, ``append_dim``, ``index_range``, ``labels``,
``tool_version`` and the optional ``stamp``, ``virtual`` and ``groups``), schema 1 the same keys
as a JSON object. A schema 1 or 2 record also names
the slice's identity (``slice``), which is how the ledger of a cube written before schema 3 is
built once, by the first append that finds none.

A record's meaning never changes within a schema version. Readers ask a record what it implies
(:attr:`CommitRecord.starts_cube`, :attr:`CommitRecord.appends_rows`) rather than comparing
operation names, so that operations other than create and append fit without changing them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from versioncube.display.format import label_extent

METADATA_KEY = "versioncube"
#: How the record's line in a commit message starts (after a blank line, at the end).
TRAILER = "versioncube: "
SCHEMA_VERSION = 3
#: Schema 1: the long keys as a JSON object; schema 2: the same as one JSON text; schema 3: the
#: short keys above. Each is read; only schema 3 is written.
READABLE_SCHEMAS = (1, 2, 3)
#: The schemas whose records name the slice's identity (cubes written before the ledger).
SCHEMAS_WITH_IDENTITY = (1, 2)

#: Operations that start the cube (and its slice ledger) afresh.
STARTING_OPERATIONS = frozenset({"create"})
#: Operations that only add rows at the end of the append dimension.
APPENDING_OPERATIONS = frozenset({"create", "append"})
#: Operations that change how rows are stored, never which rows there are or their values.
ROW_KEEPING_OPERATIONS = frozenset({"materialize"})
#: Writes by label and deletes (:mod:`versioncube.write.updates`): they record the cube's length
#: after them (``z``); all but ``replace`` insert or remove rows.
UPDATING_OPERATIONS = frozenset({"replace", "upsert", "time_series", "insert", "delete"})
#: The order counts are shown in (``3 replaced, 4 inserted``).
COUNTS = ("replaced", "inserted", "appended", "removed")
#: Operations that add or remove a variable over every row: no row moves, no slice is added.
SCHEMA_OPERATIONS = frozenset({"add-variable", "drop-variable"})

Label = str | int | float | bool | None


@dataclasses.dataclass(frozen=True)
class CommitRecord:
    """The versioncube metadata of one commit.

    ``slice`` (the identity) and ``tool_version`` are known for records read from schema 1 and
    2 and for the record an append hands back; schema 3 does not store them (see the module
    docstring), so records read from it have None there.
    """

    operation: str
    slice: str | None
    slice_name: str
    append_dim: str
    index_range: tuple[int, int] | None
    labels: tuple[Label, Label] | None
    stamp: str | None = None  # the content stamp of a file slice, when it was appended
    tool_version: str | None = None
    schema: int = SCHEMA_VERSION
    virtual: Mapping[str, Any] | None = None  # the referenced file and its stamp
    groups: tuple[str, ...] | None = None  # the groups appended to (None: a flat cube)
    #: writes by label and deletes: labels replaced/inserted/appended/removed (non-zero ones)
    counts: Mapping[str, int] | None = None
    size: int | None = None  # writes by label and deletes: the cube's length after the commit
    #: writes by label and deletes: chunks written, chunk references moved, bytes written
    chunks: tuple[int, int, int] | None = None
    variables: tuple[str, ...] | None = None  # the variables a schema change added or dropped
    steps: int | None = None  # add-variable: how many labels were given values

    @property
    def moves_rows(self) -> bool:
        """Whether this commit inserted or removed rows other than at the end (a write by
        label or a delete): row numbers recorded before it are stale."""
        return self.operation in UPDATING_OPERATIONS and self.operation != "replace"

    @property
    def updates(self) -> bool:
        """Whether this commit is a write by label or a delete (it records ``size``)."""
        return self.operation in UPDATING_OPERATIONS

    @property
    def keeps_rows(self) -> bool:
        """Whether this commit left every row as it was, and every value of the variables it
        did not add or drop (``materialize``, ``add-variable``, ``drop-variable``)."""
        return self.operation in ROW_KEEPING_OPERATIONS | SCHEMA_OPERATIONS

    @property
    def starts_cube(self) -> bool:
        """Whether this commit started the cube afresh (nothing before it is in the cube)."""
        return self.operation in STARTING_OPERATIONS

    @property
    def appends_rows(self) -> bool:
        """Whether this commit only added rows at the end (``index_range``)."""
        return self.operation in APPENDING_OPERATIONS

    def trailer(self) -> str:
        """The record's line at the end of the commit message: ``versioncube: {...}``."""
        stored: dict[str, Any] = {"v": SCHEMA_VERSION, "o": self.operation}
        if self.slice_name:
            stored["n"] = self.slice_name
        if self.index_range is not None:
            stored["r"] = list(self.index_range)
        if self.labels is not None:
            first, last = self.labels
            stored["l"] = [first] if first == last else [first, last]
        if self.starts_cube:
            stored["d"] = self.append_dim
        if self.stamp is not None:
            stored["s"] = self.stamp
        if self.virtual is not None:
            stored["f"] = dict(self.virtual)
        if self.groups is not None:
            stored["g"] = list(self.groups)
        if self.counts is not None:
            stored["c"] = dict(self.counts)
        if self.size is not None:
            stored["z"] = self.size
        if self.chunks is not None:
            stored["w"] = list(self.chunks)
        if self.variables is not None:
            stored["vs"] = list(self.variables)
        if self.steps is not None:
            stored["k"] = self.steps
        return TRAILER + json.dumps(stored, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def of_commit(
        cls, message: str | None, metadata: Mapping[str, Any] | None, append_dim: str = ""
    ) -> CommitRecord | None:
        """The record of a commit (its message's trailer, or for schema 1 and 2 its metadata),
        or None for commits versioncube did not write. ``append_dim`` is the cube's append
        dimension, which schema 3 names only on the commits that start a cube."""
        _, trailer = split_message(message or "")
        if trailer is not None:
            try:
                stored = json.loads(trailer)
            except ValueError:
                stored = None
            if isinstance(stored, Mapping) and stored.get("v") == SCHEMA_VERSION:
                return cls._from_schema_3(stored, append_dim)
        return cls.from_metadata(metadata)

    @classmethod
    def of_snapshot(cls, snapshot: Any, append_dim: str = "") -> CommitRecord | None:
        """The record of an Icechunk ``SnapshotInfo`` (see :meth:`of_commit`)."""
        return cls.of_commit(snapshot.message, snapshot.metadata, append_dim)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> CommitRecord | None:
        """A schema 1 or 2 record in a commit's metadata, or None."""
        stored = (metadata or {}).get(METADATA_KEY)
        if isinstance(stored, str):
            try:
                stored = json.loads(stored)
            except ValueError:
                return None
        if isinstance(stored, Mapping) and stored.get("schema") in SCHEMAS_WITH_IDENTITY:
            return cls._from_schema_2(stored)
        return None

    @classmethod
    def _from_schema_3(cls, stored: Mapping[str, Any], append_dim: str) -> CommitRecord:
        rows, labels = stored.get("r"), stored.get("l")
        return cls(
            operation=str(stored["o"]),
            slice=None,
            slice_name=str(stored.get("n") or ""),
            append_dim=str(stored.get("d") or append_dim),
            index_range=(int(rows[0]), int(rows[1])) if rows is not None else None,
            labels=(labels[0], labels[-1]) if labels else None,
            stamp=_optional_text(stored.get("s")),
            schema=SCHEMA_VERSION,
            virtual=_optional_mapping(stored.get("f")),
            groups=_optional_paths(stored.get("g")),
            counts=_optional_counts(stored.get("c")),
            size=int(stored["z"]) if stored.get("z") is not None else None,
            chunks=_optional_chunks(stored.get("w")),
            variables=_optional_paths(stored.get("vs")),
            steps=int(stored["k"]) if stored.get("k") is not None else None,
        )

    @classmethod
    def _from_schema_2(cls, stored: Mapping[str, Any]) -> CommitRecord:
        labels, rows = stored.get("labels"), stored.get("index_range")
        return cls(
            operation=str(stored["operation"]),
            slice=stored.get("slice"),
            slice_name=stored.get("slice_name") or stored.get("slice") or "",
            append_dim=stored["append_dim"],
            index_range=(int(rows[0]), int(rows[1])) if rows is not None else None,
            labels=(labels[0], labels[1]) if labels is not None else None,
            stamp=_optional_text(stored.get("stamp")),
            tool_version=stored.get("tool_version", "?"),
            schema=int(stored["schema"]),
            virtual=_optional_mapping(stored.get("virtual")),
            groups=_optional_paths(stored.get("groups")),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as ``--json`` shows it, with readable keys (the same for every schema)."""
        data: dict[str, Any] = {
            "schema": self.schema,
            "operation": self.operation,
            "slice": self.slice,
            "slice_name": self.slice_name,
            "append_dim": self.append_dim,
            "index_range": list(self.index_range) if self.index_range is not None else None,
            "labels": list(self.labels) if self.labels is not None else None,
            "tool_version": self.tool_version,
        }
        # optional: records of copied, unstamped slices of a flat cube show none of them
        if self.stamp is not None:
            data["stamp"] = self.stamp
        if self.virtual is not None:
            data["virtual"] = dict(self.virtual)
        if self.groups is not None:
            data["groups"] = list(self.groups)
        if self.counts is not None:
            data["counts"] = dict(self.counts)
        if self.size is not None:
            data["size"] = self.size
        if self.chunks is not None:
            written, moved, size = self.chunks
            data["chunks"] = {"written": written, "moved": moved, "bytes": size}
        if self.variables is not None:
            data["variables"] = list(self.variables)
        if self.steps is not None:
            data["steps"] = self.steps
        return data

    def message(self) -> str:
        """A readable commit message, e.g. ``append 2024-03-01.nc: time 2024-03-01`` (the
        trailer goes after it, or after the message a user gave)."""
        subject = f" {self.slice_name}" if self.slice_name else ""
        return f"{self.operation}{subject}: {self.extent()}"

    def extent(self) -> str:
        """Where the slice went: ``time 2024-03-01 .. 2024-03-02``, or rows without labels."""
        if self.labels is None:
            if self.index_range is None:
                text = self.append_dim
            else:
                start, stop = self.index_range
                text = f"{self.append_dim} [{start}:{stop}]"
        else:
            text = label_extent(self.append_dim, *self.labels)
        if self.counts:
            text += f" ({self.counts_text()})"
        return f"{text} in {self.groups_text()}" if self.groups else text

    def counts_text(self) -> str:
        """``3 replaced, 4 inserted`` (the non-zero counts of a write by label or a delete)."""
        counts = self.counts or {}
        return ", ".join(f"{counts[key]} {key}" for key in COUNTS if counts.get(key))

    def groups_text(self) -> str:
        """The groups written: ``levels 0-3`` for a pyramid, ``groups /, /atmos`` for a tree."""
        groups = self.groups or ()
        levels = [path.strip("/") for path in groups]
        if levels and all(level.isdigit() for level in levels):
            numbers = sorted(map(int, levels))
            if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 1:
                return f"levels {numbers[0]}-{numbers[-1]}"
            return f"level{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        return f"group{'s' if len(groups) > 1 else ''} {', '.join(groups)}"


def _optional_text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _optional_mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _optional_paths(value: Any) -> tuple[str, ...] | None:
    return tuple(map(str, value)) if value else None


def _optional_counts(value: Any) -> Mapping[str, int] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(key): int(count) for key, count in value.items()}


def _optional_chunks(value: Any) -> tuple[int, int, int] | None:
    if not isinstance(value, list) or len(value) != 3:
        return None
    return (int(value[0]), int(value[1]), int(value[2]))


def split_message(message: str) -> tuple[str, str | None]:
    """A commit message's part for people, and the JSON of its versioncube trailer (None when
    it has none)."""
    body, separator, last = message.rpartition("\n\n")
    if separator and last.startswith(TRAILER) and "\n" not in last:
        return body, last[len(TRAILER) :]
    return message, None


def human_message(message: str) -> str:
    """A commit message without versioncube's trailer: what ``log`` and ``show`` print."""
    return split_message(message)[0]
