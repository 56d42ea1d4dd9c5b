"""The target is checked before anything is written, and a failed first append creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice
from versioncube.store.repository import _refuse_other_files
from versioncube.store.target import parse_target
from versioncube.testing import files
from versioncube.testing.cli_checks import assert_one_line_error, run_cli


@pytest.fixture
def slice_file(tmp_path: Path) -> Path:
    path = tmp_path / "slices" / "2024-01-01.nc"
    path.parent.mkdir()
    sample_slice("2024-01-01", shape=(3, 6)).to_netcdf(path)
    return path


def test_a_folder_of_other_files_is_refused(tmp_path, slice_file):
    data = slice_file.parent  # the user typed the data folder for the target
    before = files(data)

    result = run_cli("append", "-t", data, slice_file)
    assert_one_line_error(result, "is a folder with other files", "2024-01-01.nc", "not a cube")
    with pytest.raises(versioncube.TargetError, match="folder with other files"):
        versioncube.append([slice_file], target_dir=str(data))
    assert files(data) == before


def test_a_repository_another_writer_is_creating_is_not_other_files(tmp_path, slice_file):
    """Icechunk's local store writes a file as NAME#N and renames it: a writer that looks
    (before taking the lock) while another creates the repository sees ``repo#1``."""
    cube = tmp_path / "cube"
    cube.mkdir()
    (cube / "repo#1").write_bytes(b"")  # caught mid-write

    _refuse_other_files(parse_target(str(cube)), foreign_only=True)  # not refused
    (cube / "data.nc#1").write_bytes(b"")
    with pytest.raises(versioncube.TargetError, match=r"other files \(data.nc#1\)"):
        _refuse_other_files(parse_target(str(cube)), foreign_only=True)


def test_an_unwritable_target_is_one_line(slice_file):
    result = run_cli("append", "-t", "/proc/cube", slice_file)
    assert_one_line_error(result, "cannot create the cube folder /proc/cube")
    with pytest.raises(versioncube.TargetError, match="cannot create the cube folder"):
        versioncube.append([slice_file], target_dir="/proc/cube")


def test_a_file_as_target_is_refused(slice_file):
    before = slice_file.read_bytes()
    with pytest.raises(versioncube.TargetError, match="is a file"):
        versioncube.append([slice_file], target_dir=str(slice_file))
    assert slice_file.read_bytes() == before


def test_memory_targets_warn_in_the_cli(slice_file):
    result = run_cli("append", "-t", "memory://gone", slice_file)
    assert result.exit_code == 0
    assert "memory://gone lives in this process only" in result.stderr


@pytest.mark.parametrize(
    "failure",
    [
        {"attrs": {"end": "{{ ds.no_such_field }}"}, "permit_eval": True},
        {"variables": {"tas": {"encoding": {"compressors": [{"name": "no-such-codec"}]}}}},
    ],
    ids=["attribute expression", "codec"],
)
def test_a_failing_first_append_creates_nothing(tmp_path, slice_file, failure):
    target = tmp_path / "cube"
    with pytest.raises(versioncube.VersionCubeError):
        versioncube.append([slice_file], target_dir=str(target), **failure)
    assert not target.exists()

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"target_dir": str(target), **failure}))
    result = run_cli("append", "-c", config, slice_file)
    assert_one_line_error(result)
    assert not target.exists()


def test_a_slice_the_writer_rejects_is_a_one_line_slice_error(tmp_path):
    dataset = sample_slice("2024-01-01", shape=(3, 6))
    dataset["tas"].encoding["compressors"] = ("not a codec",)
    target = tmp_path / "cube"

    with pytest.raises(versioncube.SliceValidationError, match="cannot be written as the cube"):
        versioncube.append([dataset], target_dir=str(target))
    assert not target.exists()


def test_an_empty_repository_says_it_has_no_data(tmp_path, slice_file):
    import icechunk

    target = tmp_path / "cube"
    icechunk.Repository.create(icechunk.local_filesystem_storage(str(target)))
    before = files(target)

    assert "the cube has no data yet" in run_cli("log", "-t", target).stdout
    for command in ("show", "verify"):
        assert_one_line_error(run_cli(command, "-t", target), "the cube has no data yet")
    with pytest.raises(versioncube.CubeNotFoundError, match="no data yet"):
        open_cube(target).info()
    assert files(target) == before

    assert versioncube.append([slice_file], target_dir=str(target)) == 1  # and it can start


@pytest.mark.slow  # the session's S3 server process (~3 s to start)
def test_a_missing_bucket_is_named_at_once(seaweedfs, slice_file):
    with pytest.raises(versioncube.TargetError, match="NoSuchBucket") as caught:
        versioncube.append(
            [slice_file], target_dir="s3://no-such-bucket/cube", target_storage_options=seaweedfs
        )
    assert "s3://no-such-bucket/cube" in str(caught.value)
