"""HTML for notebooks: every result's ``_repr_html_`` is built from these few pieces, so that
results look alike in Jupyter and nothing user-provided reaches the page unescaped.

The look follows xarray's: a header naming the kind of result and what it is about, then
collapsible sections with counts. Everything is plain HTML with inline styles:

- no stylesheet and no JavaScript: sections fold with ``<details>``, which every notebook
  front end (Jupyter, VS Code, GitHub's viewer) renders natively;
- dark-mode friendly: text inherits the page's colour, rules are translucent grey, and the
  few colours (:mod:`versioncube.display.palette`) are mid tones that read on both.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from versioncube.display import palette

#: The outer box: monospace like a repr, a coloured rule on the left like a cell's margin.
_BOX = (
    "font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, "
    "monospace); font-size: 12px; line-height: 1.45; color: inherit; margin: 2px 0; "
    "padding: 3px 0 3px 10px; border-left: 3px solid {accent}"
)
_MUTED = "opacity: 0.65"
_TABLE = "border-collapse: collapse; font-size: 12px; margin: 2px 0"
_HEAD = f"text-align: left; padding: 1px 12px 1px 0; border-bottom: 1px solid {palette.RULE}"
_CELL = (
    "text-align: left; padding: 1px 12px 1px 0; vertical-align: top; "
    f"border-bottom: 1px solid {palette.FAINT_RULE}"
)
#: Tables longer than this show their first rows and say how many more there are.
MAX_ROWS = 200
SHOWN_OF_LONG_TABLES = 100


class Markup(str):
    """HTML that is safe as it is (made by these helpers): cells and values of this type are
    not escaped again."""


def escape(text: object) -> str:
    """Text as HTML (``Markup`` stays as it is)."""
    if isinstance(text, Markup):
        return text
    return html.escape(str(text))


def muted(text: object) -> Markup:
    """Secondary text: labels, units, counts."""
    return Markup(f'<span style="{_MUTED}">{escape(text)}</span>')


def code(text: object) -> Markup:
    """A name or an id, kept on one line."""
    return Markup(f'<span style="white-space: nowrap">{escape(text)}</span>')


def colored(text: object, color: str, *, bold: bool = False) -> Markup:
    """Text in one of the palette's colours (e.g. ``ok`` in green)."""
    weight = "; font-weight: 600" if bold else ""
    return Markup(f'<span style="color: {color}{weight}">{escape(text)}</span>')


def badge(text: object, color: str) -> Markup:
    """A small label with white text on a colour (operations, statuses)."""
    return Markup(
        f'<span style="color: #fff; background: {color}; border-radius: 3px; '
        f'padding: 0 4px; white-space: nowrap">{escape(text)}</span>'
    )


def operation_badge(operation: str) -> Markup:
    """A commit's operation in its colour (the colours of the history picture)."""
    return badge(operation, palette.operation_color(operation))


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    caption: str = "",
    *,
    limit: int | None = MAX_ROWS,
) -> Markup:
    """An HTML table with a header row; cells are escaped (``Markup`` cells are not).

    A table of more than ``limit`` rows shows its first rows and the number left out.
    """
    head = "".join(f'<th style="{_HEAD}">{escape(column)}</th>' for column in columns)
    rows = list(rows)
    shown = rows if limit is None or len(rows) <= limit else rows[:SHOWN_OF_LONG_TABLES]
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{escape(cell)}</td>' for cell in row) + "</tr>"
        for row in shown
    )
    if len(shown) < len(rows):
        left_out = f"... and {len(rows) - len(shown)} more rows"
        body += f'<tr><td style="{_CELL}" colspan="{len(columns)}">{muted(left_out)}</td></tr>'
    title = (
        f'<caption style="text-align: left; caption-side: top">{escape(caption)}</caption>'
        if caption
        else ""
    )
    return Markup(
        f'<table style="{_TABLE}">{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def facts(pairs: Iterable[tuple[str, object]]) -> Markup:
    """Named values, one a row: ``snapshot  ABC...``; names muted, values escaped."""
    rows = "".join(
        f'<tr><td style="padding: 0 14px 0 0; vertical-align: top; white-space: nowrap; '
        f'{_MUTED}">{escape(name)}</td><td style="padding: 0">{escape(value)}</td></tr>'
        for name, value in pairs
    )
    return Markup(f'<table style="{_TABLE}"><tbody>{rows}</tbody></table>')


def lines(items: Iterable[object]) -> Markup:
    """Lines of text, each on its own line (problems, changes)."""
    return Markup("".join(f"<div>{escape(item)}</div>" for item in items))


def preformatted(text: str) -> Markup:
    """Text as it is printed, with its line breaks and alignment."""
    return Markup(f'<pre style="margin: 2px 0; font-size: 12px">{escape(text)}</pre>')


def section(title: str, body: str, *, count: int | None = None, open: bool = True) -> Markup:
    """A collapsible section (``<details>``), open unless told otherwise, like xarray's."""
    number = f" {muted(f'({count})')}" if count is not None else ""
    state = " open" if open else ""
    return Markup(
        f'<details{state} style="margin: 1px 0"><summary style="cursor: pointer">'
        f'<span style="font-weight: 600">{escape(title)}</span>{number}</summary>'
        f'<div style="padding: 0 0 2px 16px">{body}</div></details>'
    )


def card(
    kind: str, title: object = "", note: object = "", *parts: str, accent: str = palette.ACCENT
) -> Markup:
    """A whole result: a header (its kind, what it is about, a note) and its sections.

    ``kind`` is the type people see in code (``versioncube.Cube``); ``title`` and ``note``
    are escaped unless they are ``Markup``.
    """
    header = f"{muted(kind)} <strong>{escape(title)}</strong>"
    if note != "":
        header += f" {escape(note)}"
    return Markup(
        f'<div class="versioncube" style="{_BOX.format(accent=accent)}">'
        f'<div style="margin-bottom: 2px">{header}</div>{"".join(parts)}</div>'
    )


def text_block(title: str, text: str) -> Markup:
    """A titled block of preformatted text (a result's ``describe()``)."""
    return card(title, "", "", preformatted(text))
