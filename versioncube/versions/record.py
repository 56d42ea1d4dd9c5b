"""The commit-metadata schema: what versioncube records with every commit, and reading it back.

Each commit carries ``metadata["versioncube"]``: one compact JSON text. Icechunk keeps every
commit's metadata in the repository's one mutable object and rewrites all of it on every commit,
so each byte stored here is paid again by every later commit: the record holds only what ``log``
and ``verify`` show, and nothing that can be derived. Schema 3 (this one):

=======  ==========================================================================
key      meaning
=======  ==========================================================================
``v``    3, the version of this layout
``o``    what the commit did: ``"create"`` (the first slice, or a cube started afresh)
         or ``"append"``; later operations add their own names
``n``    the slice's short name, as messages show it (left out when there is none)
``r``    ``[start, stop)`` rows along the append dimension written by this commit
``l``    ``[first]`` or ``[first, last]`` append labels (ISO 8601 for datetimes;
         one label when both are the same; left out without a label coordinate)
``d``    the append dimension, on commits that start the cube only (the others
         append along the cube's dimension, kept in the repository's metadata)
=======  ==========================================================================

What was left out, and where it is: the slice's full identity (a path, URI or content hash) is
kept with its rows and labels in the snapshot's slice ledger (:mod:`versioncube.versions.ledger`),
which is also what resume reads; the versioncube version that wrote a commit is in the ledger's
attributes. A schema 3 record takes 50 to 80 bytes where schema 2 took 200 to 300.

Older schemas are still read: schema 2 stored one compact JSON text with the long keys of
:meth:`CommitRecord.to_json` (``schema``, ``operation``, ``slice``, ``slice_name``,
``append_dim``, ``index_range``, ``labels``, ``tool_version``), schema 1 the same keys as a JSON
object. A schema 1 or 2 record also names the slice's identity (``slice``), which is how the
ledger of a cube written before schema 3 is built once, by the first append that finds none.

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
    tool_version: str | None = None
    schema: int = SCHEMA_VERSION

    @property
    def starts_cube(self) -> bool:
        """Whether this commit started the cube afresh (nothing before it is in the cube)."""
        return self.operation in STARTING_OPERATIONS

    @property
    def appends_rows(self) -> bool:
        """Whether this commit only added rows at the end (``index_range``)."""
        return self.operation in APPENDING_OPERATIONS

    def to_metadata(self) -> dict[str, Any]:
        """The commit metadata: ``{"versioncube": "<the schema 3 record as compact JSON>"}``."""
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
        return {METADATA_KEY: json.dumps(stored, separators=(",", ":"), ensure_ascii=False)}

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any] | None, append_dim: str = ""
    ) -> CommitRecord | None:
        """The record in a commit's metadata, or None for commits versioncube did not write.

        ``append_dim`` is the cube's append dimension, which schema 3 stores only on the
        commits that start a cube.
        """
        stored = (metadata or {}).get(METADATA_KEY)
        if isinstance(stored, str):
            try:
                stored = json.loads(stored)
            except ValueError:
                return None
        if not isinstance(stored, Mapping):
            return None
        if stored.get("v") == SCHEMA_VERSION:
            return cls._from_schema_3(stored, append_dim)
        if stored.get("schema") in SCHEMAS_WITH_IDENTITY:
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
            schema=SCHEMA_VERSION,
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
            tool_version=stored.get("tool_version", "?"),
            schema=int(stored["schema"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as ``--json`` shows it, with readable keys (the same for every schema)."""
        return {
            "schema": self.schema,
            "operation": self.operation,
            "slice": self.slice,
            "slice_name": self.slice_name,
            "append_dim": self.append_dim,
            "index_range": list(self.index_range) if self.index_range is not None else None,
            "labels": list(self.labels) if self.labels is not None else None,
            "tool_version": self.tool_version,
        }

    def message(self) -> str:
        """A readable commit message, e.g. ``append 2024-03-01.nc: time 2024-03-01``."""
        subject = f" {self.slice_name}" if self.slice_name else ""
        return f"{self.operation}{subject}: {self.extent()}"

    def extent(self) -> str:
        """Where the slice went: ``time 2024-03-01 .. 2024-03-02``, or rows without labels."""
        if self.labels is None:
            if self.index_range is None:
                return self.append_dim
            start, stop = self.index_range
            return f"{self.append_dim} [{start}:{stop}]"
        return label_extent(self.append_dim, *self.labels)
