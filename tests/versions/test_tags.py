"""Tags: immutable release names, with the message and time they were made."""

from __future__ import annotations

import datetime as dt

import pytest

import versioncube
from versioncube.testing import commits


def test_tags_are_immutable_and_keep_message_and_time(grown):
    before = dt.datetime.now(dt.UTC)
    grown.tag("v1", at="~1", message="nightly release")
    (info,) = grown.tags()

    assert info.name == "v1"
    assert info.snapshot_id == commits(grown)[1].id
    assert info.message == "nightly release"
    assert before <= info.created_at <= dt.datetime.now(dt.UTC)
    with pytest.raises(versioncube.VersionError, match="tag 'v1' already exists.*immutable"):
        grown.tag("v1")
    grown.repository.delete_tag("v1")
    with pytest.raises(versioncube.VersionError, match="used before and deleted"):
        grown.tag("v1")
