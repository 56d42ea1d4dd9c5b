"""The commit record: a trailer line of the commit message (schema 3, short keys), and the
records of commit metadata (schemas 1 and 2) still read."""

from __future__ import annotations

import dataclasses
import json

from versioncube.versions.record import CommitRecord, human_message


def test_commit_record_is_a_message_trailer_and_schemas_1_and_2_are_still_read():
    record = CommitRecord(
        operation="append",
        slice="/data/2024-03-02.nc",
        slice_name="2024-03-02.nc",
        append_dim="time",
        index_range=(1, 2),
        labels=("2024-03-02", "2024-03-02"),
    )
    trailer = record.trailer()
    assert trailer == (
        'versioncube: {"v":3,"o":"append","n":"2024-03-02.nc","r":[1,2],"l":["2024-03-02"]}'
    )
    message = f"{record.message()}\n\n{trailer}"
    # the identity is kept in the ledger, the append dimension in the repository's metadata
    stored = dataclasses.replace(record, slice=None)
    assert CommitRecord.of_commit(message, None, "time") == stored
    assert CommitRecord.of_commit(message, None).append_dim == ""
    assert CommitRecord.of_commit(f"a message of mine\n\n{trailer}", {}, "time") == stored
    assert human_message(message) == "append 2024-03-02.nc: time 2024-03-02"
    assert human_message("just words") == "just words"

    created = dataclasses.replace(record, operation="create", labels=("2024-03-01", "2024-03-02"))
    assert '"l":["2024-03-01","2024-03-02"],"d":"time"' in created.trailer()
    assert CommitRecord.of_commit(f"x\n\n{created.trailer()}", None) == dataclasses.replace(
        created, slice=None
    )

    schema_2 = {
        "schema": 2,
        "operation": "append",
        "slice": "/data/2024-03-02.nc",
        "slice_name": "2024-03-02.nc",
        "append_dim": "time",
        "index_range": [1, 2],
        "labels": ["2024-03-02", "2024-03-02"],
        "tool_version": "0.1.0",
    }
    old = dataclasses.replace(record, tool_version="0.1.0", schema=2)
    assert CommitRecord.of_commit("m", {"versioncube": json.dumps(schema_2)}) == old
    schema_1 = {"versioncube": {**schema_2, "schema": 1}}
    assert CommitRecord.of_commit("m", schema_1) == dataclasses.replace(old, schema=1)
    assert CommitRecord.of_commit("m", {"versioncube": "not json"}) is None
    assert CommitRecord.of_commit("m\n\nversioncube: not json", None) is None
    assert CommitRecord.of_commit("m", {"versioncube": '{"schema": 9}'}) is None
    assert CommitRecord.of_commit("m", {"other": 1}) is None


def test_optional_keys_have_short_keys_and_read_back():
    record = CommitRecord(
        operation="append",
        slice="/data/sst.nc",
        slice_name="sst.nc",
        append_dim="time",
        index_range=(3, 4),
        labels=("2024-03-04", "2024-03-04"),
        stamp="1024 bytes, modified 2024-03-05T00:00:00.000000000Z",
        virtual={"url": "file:///data/sst.nc", "size": 1024, "mtime_ns": 17},
        groups=("/0", "/1"),
    )
    stored = json.loads(record.trailer().removeprefix("versioncube: "))
    assert stored["s"] == record.stamp
    assert stored["f"] == {"url": "file:///data/sst.nc", "size": 1024, "mtime_ns": 17}
    assert stored["g"] == ["/0", "/1"]
    read = CommitRecord.of_commit(f"{record.message()}\n\n{record.trailer()}", None, "time")
    assert read == dataclasses.replace(record, slice=None)
    assert read is not None and read.extent() == "time 2024-03-04 in levels 0-1"
    assert {"stamp", "virtual", "groups"} <= set(read.to_json())
    # a record without them shows none of them
    plain = dataclasses.replace(record, stamp=None, virtual=None, groups=None)
    assert not {"s", "f", "g"} & set(json.loads(plain.trailer().removeprefix("versioncube: ")))
    assert not {"stamp", "virtual", "groups"} & set(plain.to_json())

    materialized = CommitRecord("materialize", None, "", "time", (0, 4), ("2024-03-01", "x"))
    again = CommitRecord.of_commit(f"m\n\n{materialized.trailer()}", None, "time")
    assert again == materialized and again.keeps_rows and not again.appends_rows


def test_records_of_schema_2_with_the_optional_keys_are_read():
    schema_2 = {
        "schema": 2,
        "operation": "append",
        "slice": "/data/sst.nc",
        "slice_name": "sst.nc",
        "append_dim": "time",
        "index_range": [3, 4],
        "labels": ["2024-03-04", "2024-03-04"],
        "stamp": "etag abc",
        "tool_version": "0.1.0",
        "virtual": {"url": "s3://bucket/sst.nc", "size": 10, "etag": "abc"},
        "groups": ["/", "/atmos"],
    }
    read = CommitRecord.of_commit("m", {"versioncube": json.dumps(schema_2)})
    assert read is not None
    assert (read.stamp, read.groups, read.schema) == ("etag abc", ("/", "/atmos"), 2)
    assert read.virtual == {"url": "s3://bucket/sst.nc", "size": 10, "etag": "abc"}
    assert read.to_json()["groups"] == ["/", "/atmos"]
    assert human_message(f"x\n\n{read.trailer()}") == "x"
