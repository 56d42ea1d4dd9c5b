"""The CLI: readable output, --json, exit 1 with one line on user errors, instant --help."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from versioncube import __version__, open_cube
from versioncube.cli import cli
from versioncube.testing import commits


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner, *args):
    return runner.invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def test_append_then_rerun(runner, daily_files, tmp_path):
    target = tmp_path / "cube"
    first = _run(runner, "append", "-t", target, *daily_files[:6])
    assert first.exit_code == 0, first.output
    assert "appended 6 slices, skipped 0" in first.stdout

    second = _run(runner, "append", "-t", target, *daily_files)
    assert second.exit_code == 0
    first_line, last_line = second.stdout.splitlines()
    assert first_line == (
        "skipped 6 slices already in the cube: 2024-03-01.nc .. 2024-03-06.nc "
        "(--verbose lists each)"
    )
    assert last_line.startswith("appended 4 slices, skipped 6 (already in the cube), ")
    assert len(commits(open_cube(target))) == 10

    third = _run(runner, "append", "--verbose", "-t", target, *daily_files[:2])
    history = open_cube(target).appended_slices()
    assert third.stdout.splitlines() == [
        f"skipped 2024-03-01.nc: already in the cube (snapshot {history[str(daily_files[0])]})",
        f"skipped 2024-03-02.nc: already in the cube (snapshot {history[str(daily_files[1])]})",
        third.stdout.splitlines()[-1],
    ]


def test_append_json_output(runner, daily_files, tmp_path):
    result = _run(runner, "append", "--json", "-t", tmp_path / "cube", *daily_files[:2])
    payload = json.loads(result.stdout)
    assert payload["appended"] == 2
    assert [r["status"] for r in payload["results"]] == ["appended", "appended"]
    assert payload["results"][1]["record"]["labels"] == ["2024-03-02", "2024-03-02"]
    assert payload["results"][0]["identity"] == str(daily_files[0])


def test_dry_run_writes_nothing(runner, daily_files, tmp_path):
    result = _run(runner, "append", "--dry-run", "-t", tmp_path / "cube", *daily_files[:3])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:3] == [
        "would append 2024-03-01.nc: time 2024-03-01, creating the cube",
        "would append 2024-03-02.nc: time 2024-03-02",
        "would append 2024-03-03.nc: time 2024-03-03",
    ]
    assert "would append 3 slices" in result.stdout
    assert not (tmp_path / "cube").exists()


def test_config_file_and_flags(runner, daily_files, tmp_path):
    config = tmp_path / "cube.yaml"
    config.write_text(f"target_dir: {tmp_path / 'cube'}\ntarget_branch: staging\n")
    result = _run(runner, "append", "-c", config, *daily_files[:2])
    assert result.exit_code == 0, result.output
    assert len(commits(open_cube(tmp_path / "cube", branch="staging"))) == 2


def test_user_error_is_one_line_and_exit_1(runner, daily_files, tmp_path, small_slice):
    target = tmp_path / "cube"
    _run(runner, "append", "-t", target, *daily_files[:2])
    wrong_grid = tmp_path / "2024-03-03.nc"
    small_slice("2024-03-03", shape=(5, 5)).to_netcdf(wrong_grid)

    result = _run(runner, "append", "-t", target, wrong_grid, daily_files[3])

    assert result.exit_code == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error_lines == [
        "Error: slice 2024-03-03.nc: dimension 'lat' of variable 'lat' has size 5, the cube has 9"
    ]
    assert "Traceback" not in result.output
    assert len(commits(open_cube(target))) == 2


def test_traceback_flag_shows_the_traceback(daily_files, tmp_path):
    args = ["append", "--traceback", "-t", str(tmp_path / "cube"), str(tmp_path / "missing.nc")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.exc_info is not None
    assert type(result.exception).__name__ == "SliceNotFoundError"


def test_missing_target_and_bad_config(runner, daily_files, tmp_path):
    result = _run(runner, "append", *daily_files[:1])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no target given: use -t/--target, or target_dir in a -c config file"
    )
    config = tmp_path / "bad.yaml"
    config.write_text("target_dri: x\n")
    result = _run(runner, "append", "-c", config, *daily_files[:1])
    assert result.stderr.strip() == (
        "Error: unknown configuration key 'target_dri' (did you mean 'target_dir'?)"
    )


def test_version(runner):
    assert _run(runner, "--version").stdout.strip() == f"versioncube, version {__version__}"


def _commands(group: click.Group):
    ctx = click.Context(group)
    return {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}


def test_every_command_has_help(runner):
    for name, command in _commands(cli).items():
        assert command.help, name
        result = _run(runner, name, "--help")
        assert result.exit_code == 0
        assert (
            "Usage: cli " + name in result.stdout or f"Usage: versioncube {name}" in result.stdout
        )


def test_help_imports_no_heavy_libraries():
    code = (
        "import sys\n"
        "from versioncube.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('xarray', 'icechunk', 'zarr', 'numpy', 'dask') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip().splitlines()[-1] == "[]"


def test_progress_bar_across_slices(runner, daily_files, tmp_path):
    result = _run(runner, "append", "--progress", "-t", tmp_path / "cube", *daily_files[:4])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"appending {n}/4 2024-03-0{n}.nc: appended" for n in range(1, 5)
    ]
    assert "appended 4 slices" in result.stdout


def test_partial_run_says_what_was_committed_before_the_error(runner, daily_files, tmp_path):
    missing = tmp_path / "slices" / "2024-03-04.nc"
    missing.unlink()
    result = _run(runner, "append", "-t", tmp_path / "cube", *daily_files[:5])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "appended 3, skipped 0 before the error",
        f"Error: slice 2024-03-04.nc: file not found: {missing}",
    ]


@pytest.fixture
def cube_dir(runner, daily_files, tmp_path):
    """A local cube of six daily slices, made with the CLI."""
    target = tmp_path / "cube"
    assert _run(runner, "append", "-t", target, *daily_files[:6]).exit_code == 0
    return target


def test_log_table_and_json(runner, cube_dir):
    result = _run(runner, "log", "-t", cube_dir, "-n", "2")
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["short", "id", "time"]
    assert len(lines) == 4  # header, rule, two commits
    assert "append     2024-03-06.nc" in lines[2] and "time 2024-03-06" in lines[2]

    records = json.loads(_run(runner, "log", "-t", cube_dir, "--json").stdout)
    assert [r["record"]["index_range"] for r in records] == [[n, n + 1] for n in range(5, -1, -1)]


def test_tag_tags_show_and_time_travel(runner, cube_dir):
    tagged = _run(runner, "tag", "-t", cube_dir, "v1", "--at", "~2", "-m", "first release")
    assert tagged.stdout.startswith("tagged ") and tagged.stdout.strip().endswith(" as v1")

    listing = _run(runner, "tags", "-t", cube_dir).stdout.splitlines()
    assert listing[0].split() == ["name", "short", "id", "created", "message"]
    assert listing[2].startswith("v1 ") and listing[2].endswith("first release")

    shown = _run(runner, "show", "-t", cube_dir, "--at", "v1").stdout
    assert "(tag:v1)" in shown
    assert "time       2024-03-01 .. 2024-03-04" in shown
    assert "dims       time: 4, lat: 9, lon: 18" in shown
    info = json.loads(_run(runner, "show", "-t", cube_dir, "--at", "v1", "--json").stdout)
    assert info["dims"]["time"] == 4 and info["last_label"] == "2024-03-04"

    again = _run(runner, "tag", "-t", cube_dir, "v1")
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: tag 'v1' already exists")


def test_rollback_reflog_and_diff(runner, cube_dir, daily_files):
    result = _run(runner, "rollback", "-t", cube_dir, "--to", "~2")
    lines = result.stdout.splitlines()
    assert lines[1] == "discarded 2 commits (time 2024-03-05 .. 2024-03-06)"
    previous_tip = lines[0].split()[1]

    reflog = _run(runner, "reflog", "-t", cube_dir, "-n", "1").stdout.splitlines()
    assert "branch reset" in reflog[2]

    changes = _run(runner, "diff", "-t", cube_dir, previous_tip).stdout
    assert "- time 2024-03-05 .. 2024-03-06 (2 steps)" in changes
    payload = json.loads(_run(runner, "diff", "-t", cube_dir, "~1", "--json").stdout)
    assert payload["labels_added"] == [{"first": "2024-03-04", "last": "2024-03-04", "count": 1}]

    rerun = _run(runner, "append", "-t", cube_dir, *daily_files[:6])
    assert "appended 2 slices, skipped 4" in rerun.stdout


def test_branches_and_promote(runner, cube_dir, daily_files):
    created = _run(runner, "branch", "-t", cube_dir, "create", "staging")
    assert created.stdout.startswith("created branch staging at ")
    _run(runner, "append", "-t", cube_dir, "--branch", "staging", daily_files[6])
    listing = _run(runner, "branch", "-t", cube_dir, "list").stdout.splitlines()
    assert [line.split()[0] for line in listing[2:]] == ["main", "staging"]

    promoted = _run(runner, "promote", "-t", cube_dir, "staging")
    assert "promoted 1 commit (time 2024-03-07)" in promoted.stdout
    deleted = _run(runner, "branch", "-t", cube_dir, "delete", "staging")
    assert deleted.stdout.startswith("deleted branch staging (was at ")
    refused = _run(runner, "branch", "-t", cube_dir, "delete", "main")
    assert refused.exit_code == 1 and "cannot be deleted" in refused.stderr


def test_gc_dry_run_and_safety(runner, cube_dir):
    unsafe = _run(runner, "gc", "-t", cube_dir, "--older-than", "1h")
    assert unsafe.exit_code == 1
    assert "shorter than the safe minimum 1d" in unsafe.stderr
    dry = _run(runner, "gc", "-t", cube_dir, "--older-than", "0s", "--force", "--dry-run")
    assert dry.exit_code == 0 and "would expire" in dry.stdout
    payload = json.loads(_run(runner, "gc", "-t", cube_dir, "--older-than", "30d", "--json").stdout)
    assert payload["expired_snapshots"] == 0 and payload["dry_run"] is False


def test_unknown_ref_is_one_line(runner, cube_dir):
    result = _run(runner, "show", "-t", cube_dir, "--at", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unknown version 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("where", [[], ["append"]], ids=["versioncube", "versioncube-append"])
def test_help_config_prints_the_reference(runner, where):
    from versioncube.config.reference import json_schema, markdown

    as_markdown = _run(runner, *where, "--help-config", "md")
    as_json = _run(runner, *where, "--help-config", "json")

    assert as_markdown.exit_code == 0
    assert as_markdown.stdout == markdown() + "\n"
    assert "| `variables.NAME.encoding.chunks` |" in as_markdown.stdout
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == json_schema()


def test_a_zappend_config_file_then_only_the_target(runner, daily_files, tmp_path):
    target = tmp_path / "cube"
    config = tmp_path / "zappend.yaml"
    config.write_text(
        f"target_dir: {target}\n"
        "append_step: 1D\n"
        "variables:\n"
        "  tas:\n    encoding: {dtype: int16, scale_factor: 0.01, add_offset: 273.15, "
        "fill_value: -32768}\n"
        "attrs_update_mode: ignore\n"
        "attrs: {title: daily fields}\n"
    )
    first = _run(runner, "append", "-c", config, *daily_files[:2])
    assert first.exit_code == 0, first.output

    gap = _run(runner, "append", "-t", target, daily_files[3])
    assert gap.exit_code == 1
    assert "by 2D, but append_step is '1D'" in gap.stderr
    later = _run(runner, "append", "-t", target, daily_files[2])
    assert later.exit_code == 0, later.output
    cube = open_cube(target)
    assert len(commits(cube)) == 3
    assert cube.to_xarray().attrs == {"title": "daily fields"}

    other = tmp_path / "other.yaml"
    other.write_text("append_step: 2D\n")
    refused = _run(runner, "append", "-c", other, "-t", target, daily_files[4])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: append_step is '2D', but the cube at ")
    assert len(commits(open_cube(target))) == 3


def test_force_new_flag(runner, daily_files, tmp_path):
    target = tmp_path / "cube"
    _run(runner, "append", "-t", target, *daily_files[:3])

    result = _run(runner, "append", "--force-new", "-t", target, *daily_files[5:7])

    assert result.exit_code == 0, result.output
    assert "appended 2 slices, skipped 0" in result.stdout
    cube = open_cube(target)
    assert len(commits(cube)) == 5
    assert cube.to_xarray().sizes["time"] == 2
