"""``Cube.log().to_pandas()``: the commits as a DataFrame for filtering and plotting."""

from __future__ import annotations

import pandas as pd

from versioncube.versions.frames import LOG_COLUMNS


def test_the_log_as_a_dataframe(grown):
    grown.tag("v1", at="~2")
    log = grown.log()
    frame = log.to_pandas()
    assert tuple(frame.columns) == LOG_COLUMNS
    assert list(frame["snapshot_id"]) == [entry.snapshot_id for entry in log]
    assert list(frame["operation"]) == ["append"] * 4 + ["create"]
    assert frame["first_label"].dtype.kind == "M"
    assert list(frame["first_label"]) == list(pd.date_range("2024-03-01", periods=5))[::-1]
    assert list(frame["start_row"]) == [4, 3, 2, 1, 0]
    assert frame.loc[frame["tags"].map(lambda tags: "v1" in tags), "first_label"].item() == (
        pd.Timestamp("2024-03-03")
    )
    assert str(frame["time"].dt.tz) == "UTC"
    appends = frame[frame["operation"] == "append"]
    assert len(appends) == 4


def test_an_empty_log_has_the_columns(memory_target):
    from versioncube.versions.log import Log

    assert tuple(Log().to_pandas().columns) == LOG_COLUMNS
