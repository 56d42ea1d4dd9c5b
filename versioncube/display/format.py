"""Labels, steps, sizes, times and counts as people read them, in every message and table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

import numpy as np


def format_label(value: Any) -> str:
    """A label as people write it: dates without a midnight time, numbers without numpy."""
    if isinstance(value, np.datetime64 | np.ndarray) and np.asarray(value).dtype.kind == "M":
        if np.isnat(value):
            return "NaT"
        # indexing a 0-d array with () gives its scalar (numpy's stubs say an array)
        label = cast(np.datetime64, np.asarray(value)[()])
        for unit in ("D", "m", "s"):
            rounded = np.datetime64(label, unit)
            if rounded == value:
                return str(rounded)
        return str(np.datetime_as_string(value, unit="auto"))
    if isinstance(value, np.generic):
        return str(value.item())
    if hasattr(value, "calendar") and hasattr(value, "isoformat"):  # cftime: other calendars
        text = str(value.isoformat())
        return text.removesuffix("T00:00:00").removesuffix(":00")
    return str(value)


def format_step(value: Any) -> str:
    """A label difference as append_step writes it: ``2D``, ``-6h``, or a plain number."""
    if isinstance(value, np.timedelta64):
        for unit in ("W", "D", "h", "m", "s", "ms", "us"):
            one = np.timedelta64(1, unit)
            if value % one == np.timedelta64(0, "ns"):
                return f"{value // one}{unit}"
        return f"{value.astype('timedelta64[ns]').astype('int64')}ns"
    return format_label(value)


def label_extent(dim: str, first: Any, last: Any) -> str:
    """``time 2024-03-01`` or ``time 2024-03-01 .. 2024-03-05`` (labels as stored in records:
    ISO text for datetimes, plain numbers otherwise)."""
    start, end = _short(first), _short(last)
    return f"{dim} {start}" + ("" if start == end else f" .. {end}")


def _short(label: Any) -> str:
    if isinstance(label, str):
        try:
            return format_label(np.datetime64(label))
        except ValueError:
            return label
    return format_label(label)


def format_dims(dims: Iterable[str]) -> str:
    """``(time, lat, lon)``."""
    return "(" + ", ".join(dims) + ")"


def quote_names(names: Iterable[str]) -> str:
    """``'tas', 'pr'``."""
    return ", ".join(repr(name) for name in names)


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


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 slice``, ``2 slices`` (``many``: the plural when it is not ``noun + "s"``)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {many or noun + 's'}"


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe(error: BaseException) -> str:
    """A foreign error in one line: ``TypeError: Expected a BytesBytesCodec ...``."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
