"""One CommitOptions object (message, metadata, retry policy) on every verb that commits."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.testing import commits
from versioncube.versions.record import CommitRecord, human_message


def test_message_and_metadata_are_stored_beside_the_record(memory_target, small_slice):
    options = versioncube.CommitOptions(message="nightly run", metadata={"job": 42})
    versioncube.append_slices(
        [small_slice("2024-01-01"), small_slice("2024-01-02")],
        target_dir=memory_target,
        options=options,
    )
    history = commits(open_cube(memory_target))

    assert [human_message(snapshot.message) for snapshot in history] == ["nightly run"] * 2
    assert all(snapshot.metadata["job"] == 42 for snapshot in history)
    records = [CommitRecord.of_snapshot(snapshot) for snapshot in history]
    assert [record.labels[0] for record in records] == ["2024-01-02", "2024-01-01"]


def test_the_reserved_metadata_key_is_refused():
    with pytest.raises(versioncube.ConfigError, match="reserved"):
        versioncube.CommitOptions(metadata={"versioncube": "mine"})


def test_the_cli_takes_message_and_metadata(daily_files, tmp_path):
    target = tmp_path / "cube"
    result = CliRunner().invoke(
        cli,
        ["append", "-t", str(target), "-m", "backfill", "--metadata", "ticket=OPS-7",
         str(daily_files[0])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (snapshot,) = commits(open_cube(target))
    assert human_message(snapshot.message) == "backfill" and snapshot.metadata["ticket"] == "OPS-7"
    assert CommitRecord.of_snapshot(snapshot).slice_name == daily_files[0].name

    bad = CliRunner().invoke(cli, ["append", "-t", str(target), "--metadata", "x", "a.nc"])
    assert bad.exit_code == 2 and "is not KEY=VALUE" in bad.output
