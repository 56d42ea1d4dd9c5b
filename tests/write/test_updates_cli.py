"""``versioncube write --mode`` and ``versioncube delete`` on the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from versioncube import open_cube
from versioncube.cli import cli
from versioncube.testing import commits, tip


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner, *args):
    return runner.invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def test_write_and_delete(runner, daily_files, tmp_path):
    target = tmp_path / "cube"
    late = daily_files[4]
    assert _run(runner, "append", "-t", target, *daily_files[:4], *daily_files[5:]).exit_code == 0

    inserted = _run(runner, "write", "-t", target, "--mode", "insert", late)
    assert inserted.exit_code == 0, inserted.output
    assert inserted.output.startswith(f"insert {late.name}: time 2024-03-05 (1 inserted); ")

    again = _run(runner, "write", "-t", target, "--mode", "upsert", *daily_files[:2], "--json")
    assert again.exit_code == 0
    assert [item["status"] for item in json.loads(again.output)] == ["skipped", "skipped"]

    deleted = _run(runner, "delete", "-t", target, "--labels", "2024-03-09..2024-03-10", "--json")
    assert deleted.exit_code == 0
    data = json.loads(deleted.output)
    assert data["record"]["counts"] == {"removed": 2} and data["record"]["size"] == 8

    log = _run(runner, "log", "-t", target, "-n", "2").output
    assert "delete" in log and "time 2024-03-09 .. 2024-03-10 (2 removed)" in log
    assert "time 2024-03-05 (1 inserted)" in log
    assert open_cube(target).to_xarray().sizes["time"] == 8


def test_write_mode_from_a_configuration_file(runner, daily_files, tmp_path):
    target = tmp_path / "cube"
    _run(runner, "append", "-t", target, *daily_files[:3])
    config = tmp_path / "config.yaml"
    config.write_text("write_mode: insert\n")

    result = _run(runner, "write", "-t", target, "-c", config, daily_files[5])

    assert result.exit_code == 0 and result.output.startswith("insert ")


def test_a_refused_write_is_one_line_and_leaves_the_tip(runner, daily_files, tmp_path):
    target = tmp_path / "cube"
    _run(runner, "append", "-t", target, *daily_files[:3])
    before = tip(open_cube(target))

    result = _run(runner, "write", "-t", target, "--mode", "replace", daily_files[5])

    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not in the cube" in result.output
    assert tip(open_cube(target)) == before
    assert len(commits(open_cube(target))) == 3
