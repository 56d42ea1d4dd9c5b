"""Processes: a child forked from a process that used Icechunk gets a clear error instead of
hanging (the fork guard); a spawned child works."""

from __future__ import annotations

import multiprocessing

import pytest

import versioncube
from versioncube import open_cube

pytestmark = pytest.mark.slow  # child processes


def _append_in_child(target, queue):
    try:
        open_cube(target).to_xarray()
        queue.put("no error")
    except versioncube.VersionCubeError as error:
        queue.put(f"{type(error).__name__}: {error}")


def _child_reading_a_cube(start_method: str, tmp_path, small_slice) -> str:
    """What a child process started with ``start_method`` reports when it reads a cube."""
    target = str(tmp_path / "cube")
    versioncube.append([small_slice("2024-01-01")], target_dir=target)  # Icechunk used here
    context = multiprocessing.get_context(start_method)
    queue = context.Queue()
    child = context.Process(target=_append_in_child, args=(target, queue))
    child.start()
    child.join(120)
    assert not child.is_alive()
    return queue.get(timeout=5)


def test_a_forked_child_gets_a_clear_error_instead_of_hanging(tmp_path, small_slice):
    report = _child_reading_a_cube("fork", tmp_path, small_slice)
    assert report.startswith("UnsafeProcessError: this process was created by fork()")


def test_a_spawned_child_works(tmp_path, small_slice):
    assert _child_reading_a_cube("spawn", tmp_path, small_slice) == "no error"
