"""The commit record: what versioncube writes with every commit, read back across schemas."""

from __future__ import annotations

import dataclasses
import json

from versioncube.versions.record import CommitRecord


def test_commit_record_is_compact_json_text_and_schema_1_is_still_read():
    record = CommitRecord(
        operation="append",
        slice="/data/2024-03-02.nc",
        slice_name="2024-03-02.nc",
        append_dim="time",
        index_range=(1, 2),
        labels=("2024-03-02", "2024-03-02"),
    )
    metadata = record.to_metadata()
    assert isinstance(metadata["versioncube"], str)
    assert json.loads(metadata["versioncube"])["schema"] == 2
    assert CommitRecord.from_metadata(metadata) == record

    schema_1 = {"versioncube": {**json.loads(metadata["versioncube"]), "schema": 1}}
    assert CommitRecord.from_metadata(schema_1) == dataclasses.replace(record, schema=2)
    assert CommitRecord.from_metadata({"versioncube": "not json"}) is None
    assert CommitRecord.from_metadata({"other": 1}) is None
