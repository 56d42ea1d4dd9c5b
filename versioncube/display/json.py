"""The one conversion of results, records and settings into plain JSON data.

Every ``--json`` output, every result's ``to_json()`` and the outline stored with a cube go
through :func:`to_json`, so that a datetime, a numpy number or a NaN looks the same everywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

#: What ``to_json`` returns: data that ``json.dumps`` writes as standard JSON.
JsonValue = dict[str, Any] | list[Any] | str | int | float | bool | None


def to_json(value: Any) -> JsonValue:
    """``value`` as plain JSON data.

    Objects with a ``to_json()`` method (results) give their own form; dataclasses become
    objects of their fields; mappings and sequences are converted item by item; datetimes
    become ISO 8601 text (datetime64 labels in their coarsest exact form, see
    :func:`label_to_json`); numpy scalars become numbers; NaN and infinities become the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers).
    """
    method = getattr(value, "to_json", None)
    if callable(method) and not isinstance(value, type):
        own: JsonValue = method()
        return own
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {field.name: to_json(getattr(value, field.name)) for field in fields}
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return [to_json(item) for item in value]
    if isinstance(value, np.datetime64):
        return label_to_json(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, os.PathLike):
        path: str = os.fspath(value)
        return path
    return str(value)


def label_to_json(value: Any) -> str | int | float | bool | None:
    """An append label as JSON: ISO 8601 text for datetimes (the coarsest exact form: a date,
    or seconds, ...), plain numbers otherwise."""
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        for unit in ("D", "s", "ms", "us"):
            if np.datetime64(value, unit) == value:
                return str(np.datetime64(value, unit))
        return str(np.datetime64(value, "ns"))
    if isinstance(value, np.generic):
        item: str | int | float | bool | None = value.item()
        return item
    if hasattr(value, "calendar") and hasattr(value, "isoformat"):  # cftime: other calendars
        return str(value.isoformat())
    label: str | int | float | bool | None = value
    return label
