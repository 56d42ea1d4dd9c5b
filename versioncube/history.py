"""The commit-metadata schema: what versioncube records with every commit, and reading it back.

Each commit carries ``metadata["versioncube"]``, a JSON object (schema version 1):

=================  ================================================================
key                meaning
=================  ================================================================
``schema``         1, the version of this layout
``operation``      ``"create"`` (the first slice) or ``"append"``
``slice``          the slice's identity: absolute path, URI, or ``sha256:...``
``slice_name``     the short name used in messages
``append_dim``     the dimension appended along
``index_range``    ``[start, stop)`` along the append dimension after this commit
``labels``         ``[first, last]`` append labels (ISO 8601 for datetimes), or null
``tool_version``   the versioncube version that wrote the commit
=================  ================================================================

Resume, ``log`` and ``diff`` read it; its meaning never changes within a schema version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from versioncube._version import __version__
from versioncube.schema import AppendPlan, format_label

METADATA_KEY = "versioncube"
SCHEMA_VERSION = 1

Operation = Literal["create", "append"]
Label = str | int | float | bool | None


@dataclasses.dataclass(frozen=True)
class CommitRecord:
    """The versioncube metadata of one commit."""

    operation: Operation
    slice: str
    slice_name: str
    append_dim: str
    index_range: tuple[int, int]
    labels: tuple[Label, Label] | None
    tool_version: str = __version__
    schema: int = SCHEMA_VERSION

    @classmethod
    def for_plan(cls, plan: AppendPlan, identity: str, append_dim: str) -> CommitRecord:
        labels = None
        if plan.labels is not None:
            labels = (label_to_json(plan.labels[0]), label_to_json(plan.labels[1]))
        return cls(
            operation="create" if plan.creates_cube else "append",
            slice=identity,
            slice_name=plan.slice_name,
            append_dim=append_dim,
            index_range=plan.index_range,
            labels=labels,
        )

    def to_metadata(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["index_range"] = list(self.index_range)
        record["labels"] = list(self.labels) if self.labels is not None else None
        return {METADATA_KEY: record}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> CommitRecord | None:
        """The record in a commit's metadata, or None for commits versioncube did not write."""
        record = (metadata or {}).get(METADATA_KEY)
        if not isinstance(record, Mapping) or record.get("schema") != SCHEMA_VERSION:
            return None
        labels = record.get("labels")
        return cls(
            operation=record["operation"],
            slice=record["slice"],
            slice_name=record.get("slice_name", record["slice"]),
            append_dim=record["append_dim"],
            index_range=tuple(record["index_range"]),
            labels=tuple(labels) if labels is not None else None,
            tool_version=record.get("tool_version", "?"),
        )

    def message(self) -> str:
        """A readable commit message, e.g. ``append 2024-03-01.nc: time 2024-03-01``."""
        return f"{self.operation} {self.slice_name}: {self.extent()}"

    def extent(self) -> str:
        """Where the slice went: ``time 2024-03-01 .. 2024-03-02``, or rows without labels."""
        if self.labels is None:
            start, stop = self.index_range
            return f"{self.append_dim} [{start}:{stop}]"
        first, last = (_short(label) for label in self.labels)
        return f"{self.append_dim} {first}" + ("" if first == last else f" .. {last}")


def label_to_json(value: Any) -> Label:
    """An append label as JSON: ISO 8601 text for datetimes, plain numbers otherwise."""
    if isinstance(value, np.datetime64):
        for unit in ("D", "s", "ms", "us"):  # the coarsest exact form: a date, or seconds, ...
            if np.datetime64(value, unit) == value:
                return str(np.datetime64(value, unit))
        return str(np.datetime64(value, "ns"))
    if isinstance(value, np.generic):
        return value.item()
    return value


def _short(label: Label) -> str:
    if isinstance(label, str):
        try:
            return format_label(np.datetime64(label))
        except ValueError:
            return label
    return str(label)


def slices_in_history(snapshots: Iterable[Any]) -> dict[str, str]:
    """Map each slice identity in ``snapshots`` (Icechunk SnapshotInfo, newest first) to its commit.

    Only the cube's current content counts: the walk stops at the newest ``create`` commit, so
    the slices of a cube that ``force_new`` replaced are appended again.
    """
    found: dict[str, str] = {}
    for snapshot in snapshots:
        record = CommitRecord.from_metadata(snapshot.metadata)
        if record is not None:
            found.setdefault(record.slice, snapshot.id)
            if record.operation == "create":
                break
    return found
