"""A run reads the next slice file while it appends the current one, and never uses what it
read when the file changed since, could not be read, or was asked for by a generator."""

from __future__ import annotations

import logging
import os
import threading
import uuid

import fsspec
import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice, write_daily_files
from versioncube.slices import read_ahead as read_ahead_module
from versioncube.slices.identity import content_stamp, slice_ref
from versioncube.slices.opening import open_slice
from versioncube.slices.options import SliceOptions
from versioncube.slices.read_ahead import ReadAhead
from versioncube.testing import commits

OPTIONS = SliceOptions()
#: versioncube's own threshold, before the fixture below lowers it
MIN_BYTES = read_ahead_module.MIN_BYTES


@pytest.fixture(autouse=True)
def read_ahead_small_slices(monkeypatch):
    """These tests' slices are small: read them ahead all the same."""
    monkeypatch.setattr(read_ahead_module, "MIN_BYTES", 0)


def read_ahead_of(path, options=OPTIONS) -> ReadAhead:
    ahead = ReadAhead()
    ahead.upcoming(path)
    ahead.start(options)
    return ahead


def test_the_file_read_ahead_is_what_opening_it_gives(daily_files):
    ref = slice_ref(daily_files[1], OPTIONS)
    ahead = read_ahead_of(daily_files[1])

    taken = ahead.take(ref, OPTIONS, content_stamp(ref.location))

    assert taken is not None
    with open_slice(ref, OPTIONS) as opened:
        xr.testing.assert_identical(taken, opened.load())
    ahead.close()


def test_a_file_changed_after_it_was_read_ahead_is_not_used(tmp_path):
    path = write_daily_files(tmp_path, "2024-03-01", 1, shape=(4, 8))[0]
    ref = slice_ref(path, OPTIONS)
    ahead = read_ahead_of(path)
    ahead.settle()  # read

    sample_slice("2024-03-01", shape=(4, 9)).to_netcdf(path)  # another size: another stamp

    assert ahead.take(ref, OPTIONS, content_stamp(ref.location)) is None


@pytest.mark.parametrize(
    "case", ["unreadable", "other options", "another file", "a dataset", "nothing next"]
)
def test_nothing_read_ahead_is_used_unless_it_is_that_file_read_that_way(tmp_path, case):
    files = write_daily_files(tmp_path, "2024-03-01", 2, shape=(4, 8))
    upcoming = files[0]
    if case == "unreadable":
        upcoming.write_bytes(b"CDF\x01 not really")
    ahead = ReadAhead()
    ahead.upcoming(
        {"a dataset": sample_slice("2024-03-01"), "nothing next": None}.get(case, upcoming)
    )
    ahead.start(OPTIONS)
    wanted = files[1] if case == "another file" else upcoming
    options = SliceOptions(engine="h5netcdf") if case == "other options" else OPTIONS
    ref = slice_ref(wanted, options)

    assert ahead.take(ref, options, content_stamp(ref.location)) is None
    ahead.close()


def test_a_run_appends_a_file_changed_after_it_was_read_ahead_as_it_is_now(
    tmp_path, monkeypatch, caplog
):
    files = write_daily_files(tmp_path / "files", "2024-03-01", 4, shape=(4, 8))
    read = {}  # location -> an event set once that file was read ahead
    real = read_ahead_module.read_into_memory

    def reading(ref, options):
        try:
            return real(ref, options)
        finally:
            read.setdefault(ref.location, threading.Event()).set()

    monkeypatch.setattr(read_ahead_module, "read_into_memory", reading)
    changed = sample_slice("2024-03-03", shape=(4, 8))
    changed["tas"] = changed["tas"] + 100

    def after(result):
        if result.slice_name == files[1].name:  # the third file was read ahead meanwhile
            location = os.path.realpath(files[2])
            assert read.setdefault(location, threading.Event()).wait(30)
            changed.to_netcdf(files[2])

    with caplog.at_level(logging.DEBUG, logger="versioncube.slices.read_ahead"):
        versioncube.append(files, target_dir=str(tmp_path / "cube"), on_result=after)

    cube = open_cube(tmp_path / "cube")
    assert len(commits(cube)) == 4
    stored = cube.to_xarray().sel(time="2024-03-03")
    np.testing.assert_array_equal(stored["tas"].values, changed["tas"].values[0])
    assert f"reading {files[1].name} ahead" in caplog.text
    assert f"not using what was read ahead of {os.path.realpath(files[2])}" in caplog.text
    # a re-run skips every file: the ledger holds the changed file's stamp
    again = versioncube.append_slices(files, target_dir=str(tmp_path / "cube"))
    assert (again.appended, again.skipped) == (0, 4)


def test_a_generator_is_asked_for_each_slice_only_in_its_turn(tmp_path, caplog):
    files = write_daily_files(tmp_path / "files", "2024-03-01", 3, shape=(4, 8))
    done: list[str] = []

    def one_at_a_time():
        for index, path in enumerate(files):
            assert len(done) == index  # the slices before it are in the cube
            yield path

    with caplog.at_level(logging.DEBUG, logger="versioncube.slices.read_ahead"):
        versioncube.append(
            one_at_a_time(),
            target_dir=str(tmp_path / "cube"),
            on_result=lambda result: done.append(result.slice_name),
        )

    assert done == [path.name for path in files]
    assert "ahead" not in caplog.text


def test_uri_slices_are_read_ahead_and_checked_by_their_storage_stamp(memory_target, caplog):
    fs = fsspec.filesystem("memory")
    folder = f"/read-ahead-{uuid.uuid4().hex}"
    uris = []
    for day in ("2024-02-01", "2024-02-02", "2024-02-03"):
        with fs.open(f"{folder}/{day}.nc", "wb") as file:
            file.write(sample_slice(day, shape=(4, 8)).to_netcdf())
        uris.append(f"memory://{folder}/{day}.nc")
    changed = sample_slice("2024-02-03", shape=(4, 8))
    changed["tas"] = changed["tas"] + 100

    def after(result):
        if result.slice_name == "2024-02-02.nc":  # the third was read ahead meanwhile
            with fs.open(f"{folder}/2024-02-03.nc", "wb") as file:
                file.write(changed.to_netcdf())  # a new file: another creation time

    with caplog.at_level(logging.DEBUG, logger="versioncube.slices.read_ahead"):
        versioncube.append(uris, target_dir=memory_target, on_result=after)

    assert "reading 2024-02-02.nc ahead" in caplog.text
    # the second file was read as the new cube's first file was (groups found, none there)
    assert f"not using what was read ahead of {uris[1]}" not in caplog.text
    assert f"not using what was read ahead of {uris[2]}" in caplog.text
    cube = open_cube(memory_target)
    first, second = (sample_slice(day, shape=(4, 8)) for day in ("2024-02-01", "2024-02-02"))
    expected = xr.concat([first, second, changed], "time")
    xr.testing.assert_equal(cube.to_xarray().load(), expected)


def test_small_slices_are_not_read_ahead(tmp_path, caplog, monkeypatch):
    """Opening a file costs Python work whatever its size: for small slices reading ahead
    would cost more than it saves."""
    monkeypatch.setattr(read_ahead_module, "MIN_BYTES", MIN_BYTES)
    files = write_daily_files(tmp_path / "files", "2024-03-01", 3, shape=(4, 8))

    with caplog.at_level(logging.DEBUG, logger="versioncube.slices.read_ahead"):
        versioncube.append(files, target_dir=str(tmp_path / "cube"))

    assert sample_slice("2024-03-01", shape=(4, 8)).nbytes < MIN_BYTES
    assert "ahead" not in caplog.text
    assert len(commits(open_cube(tmp_path / "cube"))) == 3
