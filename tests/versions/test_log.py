"""The log of a branch's commits, and the reflog of the repository's operations."""

from __future__ import annotations

import re

from versioncube.testing import commits
from versioncube.versions.record import CommitRecord


def test_log_newest_first_with_tags(grown):
    grown.tag("release-1", message="first five days")
    log = grown.log()

    assert [entry.snapshot_id for entry in log] == [s.id for s in commits(grown)]
    assert [entry.labels for entry in log] == [f"time 2024-03-0{n}" for n in range(5, 0, -1)]
    assert [entry.operation for entry in log] == ["append"] * 4 + ["create"]
    assert log[0].tags == ("release-1",)
    assert len(grown.log(2)) == 2
    table = str(log)
    assert table.splitlines()[0].split() == [
        "short", "id", "time", "operation", "slice", "labels", "tag", "names"
    ]  # fmt: skip
    assert "release-1" in table.splitlines()[2]
    assert re.search(r"<table[^>]*><thead><tr><th[^>]*>short id</th>", log._repr_html_())
    records = log.to_json()
    assert records[0]["record"]["labels"] == ["2024-03-05", "2024-03-05"]
    assert records[0]["tags"] == ["release-1"]


def test_reflog_traces_rollbacks(grown):
    grown.rollback("~1")
    entries = grown.reflog()
    assert entries[0].kind == "branch reset"
    assert "previous_snap_id=" in entries[0].details
    records = [CommitRecord.of_snapshot(s) for s in commits(grown)]
    assert len(records) == 4
