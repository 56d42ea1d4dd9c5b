"""The result protocol: every result a versioncube verb returns can be read three ways.

* ``describe()``: the text the CLI prints (also ``str(result)``);
* ``to_json()``: the data ``--json`` prints, plain JSON (see :mod:`versioncube.display.json`);
* ``_repr_html_()``: how Jupyter shows it.

The CLI only renders results; everything they say is decided here and in the result classes.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from versioncube.display import html
from versioncube.display.json import JsonValue, to_json


@runtime_checkable
class Displayable(Protocol):
    """What every result offers (see the module docstring)."""

    def describe(self) -> str: ...

    def to_json(self) -> JsonValue: ...

    def _repr_html_(self) -> str: ...


class Result:
    """Base of result records: JSON from the dataclass fields, HTML from ``describe()`` until
    a result shows its facts in sections of its own (see :mod:`versioncube.display.html`)."""

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> JsonValue:
        return self._fields_json()

    def _fields_json(self) -> dict[str, JsonValue]:
        """The dataclass fields of the result as JSON data."""
        import dataclasses

        if dataclasses.is_dataclass(self):
            return {
                field.name: to_json(getattr(self, field.name)) for field in dataclasses.fields(self)
            }
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return html.card(
            self.html_kind(), self.html_title(), "", html.preformatted(self.describe())
        )

    def html_kind(self) -> str:
        """The type people see in code, at the head of the HTML form: ``versioncube.CubeDiff``."""
        return f"versioncube.{type(self).__name__}"

    def html_title(self) -> str:
        """The heading of the HTML form (the class name in words by default)."""
        return type(self).__name__

    def __str__(self) -> str:
        return self.describe()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text form (terminals, a notebook's text/plain): the CLI's text."""
        printer.text(self.describe())
