"""Typed result lists that print as tables: plain text in a terminal, HTML in Jupyter.

Every list a read command returns (log, tags, branches, reflog) is a :class:`Table` of frozen
dataclasses; ``--json`` serialises exactly those dataclasses, so scripts and people see the
same records.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from versioncube.display import html
from versioncube.display.format import plural
from versioncube.display.json import to_json

if TYPE_CHECKING:
    import pandas as pd


class Table[Row](list[Row]):
    """A list of records with a text table (``describe``/``str``), JSON and an HTML table."""

    columns: ClassVar[tuple[str, ...]] = ()
    empty: ClassVar[str] = "(none)"
    #: What one row is, and several, for headings: ``3 commits``.
    noun: ClassVar[tuple[str, str]] = ("row", "rows")

    def cells(self, row: Row) -> tuple[str, ...]:
        """The row's cells, in the order of ``columns``."""
        return tuple(str(getattr(row, column.replace(" ", "_"))) for column in self.columns)

    def html_cells(self, row: Row) -> tuple[object, ...]:
        """The row's cells in HTML (the text cells, unless a table marks some up)."""
        return self.cells(row)

    def describe(self) -> str:
        if not self:
            return self.empty
        rows = [self.columns, *(self.cells(row) for row in self)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                 for row in rows]  # fmt: skip
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.describe()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text form: the CLI's table."""
        printer.text(self.describe())

    def _repr_html_(self) -> str:
        kind = f"versioncube.{type(self).__name__}"
        if not self:
            return html.card(kind, self.empty)
        return html.card(kind, plural(len(self), *self.noun), "", self.html_table())

    def html_table(self) -> html.Markup:
        """The rows as an HTML table alone (for a section of another result)."""
        return html.table(self.columns, (self.html_cells(row) for row in self))

    def to_pandas(self) -> pd.DataFrame:
        """The records as a DataFrame, one row each, a column per field (as ``to_json``)."""
        import pandas as pd

        return pd.DataFrame(self.to_json())

    def to_json(self) -> list[Any]:
        """The records as JSON-ready dicts (datetimes as ISO 8601 strings)."""
        return [_row_json(row) for row in self]


def _row_json(row: Any) -> Any:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {field.name: to_json(getattr(row, field.name)) for field in dataclasses.fields(row)}
    return to_json(row)


class SnapshotRow:
    """For records that name a snapshot: the short id tables show (12 of its 20 characters)."""

    snapshot_id: str

    @property
    def short_id(self) -> str:
        return self.snapshot_id[:12]
