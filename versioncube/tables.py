"""Typed result lists that print as tables: plain text in a terminal, HTML in Jupyter.

Every list a read command returns (log, tags, branches, reflog) is a :class:`Table` of frozen
dataclasses; ``--json`` serialises exactly those dataclasses, so scripts and people see the
same records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import Any, ClassVar, TypeVar

Row = TypeVar("Row")


class Table[Row](list[Row]):
    """A list of records with a text table (``str``) and an HTML table (Jupyter)."""

    columns: ClassVar[tuple[str, ...]] = ()
    empty: ClassVar[str] = "(none)"

    def cells(self, row: Row) -> tuple[str, ...]:
        """The row's cells, in the order of ``columns``."""
        return tuple(str(getattr(row, column.replace(" ", "_"))) for column in self.columns)

    def __str__(self) -> str:
        if not self:
            return self.empty
        rows = [self.columns, *(self.cells(row) for row in self)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                 for row in rows]  # fmt: skip
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(column)}</th>" for column in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in self.cells(row)) + "</tr>"
            for row in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def to_json(self) -> list[dict[str, Any]]:
        """The records as JSON-ready dicts (datetimes as ISO 8601 strings)."""
        return [jsonable(dataclasses.asdict(row)) for row in self]  # type: ignore[call-overload]


class SnapshotRow:
    """For records that name a snapshot: the short id tables show (12 of its 20 characters)."""

    snapshot_id: str

    @property
    def short_id(self) -> str:
        return self.snapshot_id[:12]


def jsonable(value: Any) -> Any:
    """Datetimes to ISO strings and tuples to lists, recursively."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def short_time(moment: dt.datetime) -> str:
    """A commit time as people read it, in UTC to the second."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def human_size(count: float) -> str:
    """Bytes as people read them: ``512 B``, ``3.2 MiB``."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")
