"""Foreign errors reach users as one VersionCubeError line, never as a traceback.

Each case here leaked a raw Icechunk or xarray error before errors were translated in one
place (versioncube/store/translate.py): version commands on damaged storage, a tag name used
before, and a cube whose arrays disagree in length (written by another tool).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import icechunk
import pytest
import zarr

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice
from versioncube.testing import tip
from versioncube.testing.cli_checks import assert_one_line_error, run_cli

SHAPE = (4, 8)


def _days(count: int, start: int = 1) -> list:
    return [sample_slice(f"2024-01-{day:02d}", shape=SHAPE) for day in range(start, start + count)]


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """A cube on local disk with a branch "dev" one commit ahead of main, and a tag."""
    target = tmp_path / "cube"
    versioncube.append(_days(2), target_dir=str(target))
    cube = open_cube(target)
    cube.tag("v1")
    cube.create_branch("dev")
    open_cube(target, branch="dev").append(_days(1, start=3)[0])
    return target


# -- damaged storage: every version verb -------------------------------------------------------

VERBS = {
    "delete_branch": (lambda cube: cube.delete_branch("dev"), ["branch", "delete", "dev"]),
    "promote": (lambda cube: cube.promote("dev"), ["promote", "dev"]),
    "gc --dry-run": (
        lambda cube: cube.gc("1d", dry_run=True), ["gc", "--older-than", "1d", "--dry-run"]
    ),
    "show": (lambda cube: cube.info(), ["show"]),
    "diff": (lambda cube: cube.diff("v1"), ["diff", "v1"]),
    "rollback": (lambda cube: cube.rollback("v1"), ["rollback", "--to", "v1"]),
}  # fmt: skip


@pytest.mark.parametrize("verb", VERBS)
def test_version_verbs_on_damaged_storage_raise_a_versioncube_error(staged, verb):
    call, _ = VERBS[verb]
    cube = open_cube(staged)
    cube.exists()  # opened while the storage was whole
    shutil.rmtree(staged / "snapshots")
    (staged / "repo").unlink()  # the repository's branches and tags are gone too

    with pytest.raises(versioncube.VersionCubeError, match=str(staged)):
        call(cube)


@pytest.mark.parametrize("verb", VERBS)
def test_version_commands_on_damaged_storage_print_one_line(staged, verb):
    _, arguments = VERBS[verb]
    (staged / "repo").write_bytes(b"not an Icechunk file")  # branches, tags, snapshot list

    result = run_cli(*arguments[:1], "-t", staged, *arguments[1:])

    assert_one_line_error(result, str(staged))


# -- tags: a name used before ------------------------------------------------------------------


def test_a_deleted_tag_name_is_refused_by_type_not_by_message(staged):
    cube = open_cube(staged)
    cube.repository.delete_tag("v1")
    before = tip(cube)

    with pytest.raises(versioncube.VersionError, match="'v1' was used before and deleted"):
        cube.tag("v1")
    assert_one_line_error(run_cli("tag", "-t", staged, "v1"), "was used before and deleted")
    assert tip(open_cube(staged)) == before


def test_an_existing_tag_name_is_refused(staged):
    assert_one_line_error(run_cli("tag", "-t", staged, "v1"), "tag 'v1' already exists")
    with pytest.raises(versioncube.VersionError, match="tags are immutable"):
        open_cube(staged).tag("v1")


def test_an_unknown_snapshot_id_is_a_ref_error(staged):
    with pytest.raises(versioncube.RefNotFoundError, match="unknown version"):
        open_cube(staged).rollback("AAAAAAAAAAAAAAAAAAAA")


# -- a cube whose arrays disagree in length (another tool wrote to it) -------------------------


@pytest.fixture
def inconsistent(tmp_path: Path) -> Path:
    """A cube where another tool grew one variable along time without the others."""
    target = tmp_path / "cube"
    versioncube.append(_days(3), target_dir=str(target))
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(target)))
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="tas", mode="r+").resize((4, *SHAPE))
    session.commit("another tool grew tas")
    return target


@pytest.mark.parametrize(
    "call",
    [
        lambda cube: cube.to_xarray(),
        lambda cube: cube.info(),
        lambda cube: cube.diff("~1"),
        lambda cube: cube.append(_days(1, start=4)[0]),
    ],
    ids=["to_xarray", "info", "diff", "append"],
)
def test_arrays_of_different_lengths_say_the_cube_is_inconsistent(inconsistent, call):
    cube = open_cube(inconsistent)
    before = tip(cube)

    with pytest.raises(versioncube.InconsistentCubeError) as caught:
        call(cube)

    message = str(caught.value)
    assert "dimension 'time' has length 3" in message and "4 (tas)" in message
    assert "versioncube verify" in message
    assert tip(open_cube(inconsistent)) == before


@pytest.mark.parametrize("command", [["show"], ["diff", "~1"], ["append", "NEW"]])
def test_inconsistent_cube_commands_print_one_line(inconsistent, tmp_path, command):
    if command[0] == "append":
        path = tmp_path / "2024-01-04.nc"
        _days(1, start=4)[0].to_netcdf(path)
        command = ["append", path]
    result = run_cli(command[0], "-t", inconsistent, *command[1:])
    assert_one_line_error(result, "is inconsistent", "versioncube verify")


def test_verify_reports_an_inconsistent_cube_as_damage(inconsistent):
    report = open_cube(inconsistent).verify()
    assert not report.ok
    assert any("dimension 'time'" in problem for problem in report.problems)
    result = run_cli("verify", "-t", inconsistent)
    assert result.exit_code == 1 and "DAMAGE" in result.stdout
