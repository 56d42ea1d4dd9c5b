"""HTML for notebooks: every result's ``_repr_html_`` is built from these few pieces, so that
results look alike in Jupyter and nothing user-provided reaches the page unescaped."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

#: Inline styles only: notebooks, GitHub and VS Code render them without a stylesheet.
_TABLE = 'style="border-collapse: collapse; font-family: monospace; font-size: 12px"'
_CELL = 'style="text-align: left; padding: 2px 8px; border-bottom: 1px solid #ddd"'


def escape(text: object) -> str:
    return html.escape(str(text))


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], caption: str = "") -> str:
    """An HTML table with a header row; cells are escaped."""
    head = "".join(f"<th {_CELL}>{escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table {_TABLE}>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_block(title: str, text: str) -> str:
    """A titled block of preformatted text (a result's ``describe()``)."""
    return (
        f'<div class="versioncube"><strong>{escape(title)}</strong>'
        f'<pre style="margin: 4px 0">{escape(text)}</pre></div>'
    )
