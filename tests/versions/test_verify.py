"""verify finds damage: a missing chunk, and labels that disagree with the commit records."""

from __future__ import annotations

import subprocess
import sys

import pytest

import versioncube
from versioncube import open_cube


@pytest.mark.slow  # `versioncube verify` in a subprocess, big chunks (> 2 s)
def test_verify_finds_a_missing_chunk(tmp_path, small_slice):
    target = str(tmp_path / "cube")
    versioncube.append(
        [small_slice(f"2024-01-0{d}", shape=(45, 90)) for d in range(1, 4)], target_dir=target
    )
    assert open_cube(target).verify().ok
    chunk = sorted((tmp_path / "cube" / "chunks").iterdir())[0]
    chunk.unlink()

    report = open_cube(target).verify()

    assert not report.ok
    assert any("unreadable" in problem for problem in report.problems)
    cli = subprocess.run(
        [sys.executable, "-m", "versioncube", "verify", "-t", target],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1
    assert "DAMAGE: variable" in cli.stdout


def test_verify_finds_labels_that_disagree_with_the_records(memory_target, small_slice):
    import zarr

    versioncube.append(
        [small_slice(f"2024-01-0{d}") for d in range(1, 4)], target_dir=memory_target
    )
    cube = open_cube(memory_target)
    session = cube.repository.writable_session("main")
    zarr.open_group(session.store)["time"][1] = 0  # relabel a row, as a careless edit might
    session.commit("hand edit")

    report = cube.verify()

    assert not report.ok
    assert any("out of order" in problem for problem in report.problems)
    assert any("recorded labels ['2024-01-02', '2024-01-02']" in p for p in report.problems)
