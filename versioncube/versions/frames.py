"""A branch's commits as a pandas DataFrame (``Cube.log().to_pandas()``), for filtering and
plotting, and the one reading of the append labels commit records store as JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from versioncube.versions.log import LogEntry

#: The columns of a log's DataFrame, in order.
LOG_COLUMNS = (
    "snapshot_id",
    "time",
    "operation",
    "slice",
    "first_label",
    "last_label",
    "start_row",
    "stop_row",
    "tags",
    "message",
    "referenced_file",
)


def stored_label(value: Any) -> Any:
    """An append label as a record stores it (ISO 8601 text for datetimes, plain numbers
    otherwise), back as a label: ``numpy.datetime64`` for datetimes; numbers and the labels of
    other calendars (cftime's ISO text) stay as they are."""
    if isinstance(value, str):
        try:
            return np.datetime64(value, "ns")
        except ValueError:
            return value
    return value


def log_frame(entries: Iterable[LogEntry]) -> pd.DataFrame:
    """One row per commit, newest first (see :meth:`versioncube.versions.log.Log.to_pandas`)."""
    rows = []
    for entry in entries:
        record = entry.record
        labels = record.labels if record is not None and record.labels is not None else None
        rows_written = record.index_range if record is not None else None
        rows.append(
            (
                entry.snapshot_id,
                entry.written_at,
                entry.operation,
                entry.slice,
                stored_label(labels[0]) if labels else None,
                stored_label(labels[1]) if labels else None,
                rows_written[0] if rows_written else None,
                rows_written[1] if rows_written else None,
                entry.tags,
                entry.message,
                entry.referenced_file,
            )
        )
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    for column in ("first_label", "last_label"):
        known = frame[column].dropna()
        if len(known) and all(isinstance(value, np.datetime64) for value in known):
            frame[column] = pd.to_datetime(frame[column])
    for column in ("start_row", "stop_row"):
        frame[column] = frame[column].astype("Int64")
    return frame
