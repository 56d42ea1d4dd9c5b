"""Multi-level pyramids (the levels setting): every append writes every level in one commit.

Downsampled levels are compared with what xcube's subsampling computes, written here with plain
xarray (block means with ``coarsen``, strides for ``first``); a SIGKILL between two level
writes leaves every level at the same length.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import xarray as xr
import zarr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.errors import ConfigError, SliceValidationError
from versioncube.layout.levels import LevelsSetting, count_levels
from versioncube.samples import sample_slice
from versioncube.slices.identity import dataset_fingerprint
from versioncube.testing import appended_in_order, commits, tip
from versioncube.versions.ledger import Ledger

LEVELS = {"num_levels": 4, "tile_size": 16, "agg_methods": {"tas": "mean", "flags": "first"}}


def pyramid_slice(day: int, shape: tuple[int, int] = (45, 70)) -> xr.Dataset:
    """One day of a float field and an integer flag field; 45 x 70 pixels, so that the coarse
    levels have partial blocks at their edges."""
    dataset = sample_slice(np.datetime64("2024-01-01") + np.timedelta64(day, "D"), shape=shape)
    dataset = dataset.drop_vars("pr")
    rng = np.random.default_rng(day)
    flags = rng.integers(0, 4, size=(1, *shape)).astype("int16")
    return dataset.assign(flags=(("time", "lat", "lon"), flags, {"flag_meanings": "a b c d"}))


def expected_level(full: xr.Dataset, level: int) -> xr.Dataset:
    """Level ``level`` as xcube computes it, with plain xarray: the block mean of tas (cast
    back to its dtype), every 2**level-th pixel of flags, coordinates of the block minimum."""
    if level == 0:
        return full
    step = 2**level
    tas = full.tas.coarsen(lat=step, lon=step, boundary="pad", coord_func="min").mean()
    flags = full.flags.isel(lat=slice(None, None, step), lon=slice(None, None, step))
    return xr.Dataset(
        {"tas": tas.astype(full.tas.dtype), "flags": flags.assign_coords(lat=tas.lat, lon=tas.lon)}
    )


def assert_level_equal(found: xr.Dataset, expected: xr.Dataset) -> None:
    for name in ("tas", "flags"):
        np.testing.assert_array_equal(found[name].values, expected[name].values, err_msg=name)
        assert found[name].dtype == expected[name].dtype
    for name in ("time", "lat", "lon"):
        np.testing.assert_array_equal(found[name].values, expected[name].values, err_msg=name)


@pytest.fixture
def five_days():
    return [pyramid_slice(day) for day in range(5)]


@pytest.fixture
def pyramid(memory_target, five_days):
    versioncube.append(five_days, target_dir=memory_target, levels=LEVELS)
    return memory_target


def test_five_appends_with_four_levels_equal_xcube_subsampling(pyramid, five_days):
    full = xr.concat(five_days, "time")
    cube = open_cube(pyramid)

    assert len(cube.levels) == 4
    assert len(commits(cube)) == 5  # one commit per slice, every level in it
    for level in range(4):
        found = versioncube.open_dataset(pyramid, level=level).load()
        assert_level_equal(found, expected_level(full, level))
        assert_level_equal(cube.levels[level].load(), expected_level(full, level))
        assert found.sizes == {"time": 5, "lat": -(-45 // 2**level), "lon": -(-70 // 2**level)}
    xr.testing.assert_identical(versioncube.open_dataset(pyramid).load(), cube.levels[0].load())
    assert cube.verify().ok


def test_the_root_holds_xcube_levels_metadata(pyramid):
    cube = open_cube(pyramid)
    root = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")

    assert dict(root.attrs["xcube_levels"]) == {
        "version": "1.0",
        "num_levels": 4,
        "tile_size": [16, 16],
        "use_saved_levels": False,
        "agg_methods": {"tas": "mean", "flags": "first"},
        "xy_dim_names": ["lon", "lat"],
    }
    assert cube.levels.spec["num_levels"] == 4
    assert list(root.array_keys()) == []  # the levels are the groups 0..3
    # the levels, and the slice ledger (an internal group, which no reader shows)
    assert sorted(root.group_keys()) == [".versioncube", "0", "1", "2", "3"]


def test_levels_are_stored_in_tiles(pyramid):
    chunks = [level.tas.encoding["chunks"] for level in open_cube(pyramid).levels]
    assert chunks == [(1, 16, 16), (1, 16, 16), (1, 12, 16), (1, 6, 9)]


def test_time_travel_and_rollback_move_every_level(pyramid, five_days):
    cube = open_cube(pyramid)
    before = tip(cube)

    assert [level.sizes["time"] for level in cube.levels_at("~2")] == [3, 3, 3, 3]
    third = versioncube.open_dataset(pyramid, "~2", level=3).load()
    assert_level_equal(third, expected_level(xr.concat(five_days[:3], "time"), 3))

    cube.rollback("~2")
    assert [level.sizes["time"] for level in cube.levels] == [3, 3, 3, 3]
    assert cube.verify().ok
    summary = versioncube.append_slices(five_days, target_dir=pyramid)  # resumes
    assert (summary.appended, summary.skipped) == (2, 3)
    for level in range(4):
        assert_level_equal(
            cube.levels[level].load(), expected_level(xr.concat(five_days, "time"), level)
        )
    cube.rollback(before)  # undoing the rollback brings the first timeline back
    assert [level.sizes["time"] for level in cube.levels] == [5, 5, 5, 5]


def test_log_show_and_diff_list_the_levels(pyramid):
    runner = CliRunner()
    log = runner.invoke(cli, ["log", "-t", pyramid, "-n", "1"])
    show = runner.invoke(cli, ["show", "-t", pyramid])
    diff = runner.invoke(cli, ["diff", "-t", pyramid, "~2"])

    assert "time 2024-01-05 in levels 0-3" in log.output
    for level, size in enumerate(["lat: 45, lon: 70", "lat: 23, lon: 35", "lat: 12, lon: 18"]):
        assert f"level {level}    time: 5, {size}" in show.output
    assert "level 0, level 1, level 2, level 3:\n  + time 2024-01-04 .. 2024-01-05" in diff.output
    record = open_cube(pyramid).log(1)[0].record
    assert record.groups == ("/0", "/1", "/2", "/3")


def test_every_aggregation_method_equals_its_block_reduction(memory_target):
    days = [pyramid_slice(day, shape=(13, 22)) for day in range(2)]
    methods = {"tas": "max", "flags": "mode"}
    versioncube.append(
        days, target_dir=memory_target, levels={"num_levels": 3, "agg_methods": methods}
    )
    full = xr.concat(days, "time")
    level = open_cube(memory_target).levels[2].load()

    blocks = full.tas.coarsen(lat=4, lon=4, boundary="pad", coord_func="min")
    np.testing.assert_array_equal(level.tas.values, blocks.max().values)
    padded = np.pad(
        full.flags.values.astype(float), ((0, 0), (0, 3), (0, 2)), constant_values=np.nan
    )
    windows = padded.reshape(2, 4, 4, 6, 4).transpose(0, 1, 3, 2, 4).reshape(2, 4, 6, 16)
    modes = scipy.stats.mode(windows, axis=-1, nan_policy="omit").mode  # the smallest on a tie
    np.testing.assert_array_equal(level.flags.values, modes.astype("int16"))
    assert level.flags.dtype == np.int16


def test_auto_counts_levels_until_one_tile_holds_the_coarsest(memory_target):
    assert count_levels((70, 45), (16, 16)) == 3  # 70x45 -> 35x23 -> 18x12 (fits a 16 tile)
    versioncube.append(
        [pyramid_slice(0)], target_dir=memory_target, levels={"num_levels": "auto", "tile_size": 16}
    )
    assert len(open_cube(memory_target).levels) == 3
    setting = LevelsSetting.parse("auto")
    assert setting is not None and setting.settled(pyramid_slice(0)).num_levels == 1  # 256 tiles


def test_a_lazy_slice_is_written_to_every_level(memory_target, five_days):
    lazy = [day.chunk({"lat": 10, "lon": 10}) for day in five_days]
    versioncube.append(lazy, target_dir=memory_target, levels=LEVELS)
    full = xr.concat(lazy, "time")  # block means summed in the same order
    for level in range(4):
        assert_level_equal(
            open_cube(memory_target).levels[level].load(), expected_level(full, level)
        )


def test_refusals_name_the_level_and_change_nothing(pyramid):
    cube = open_cube(pyramid)
    before = tip(cube)
    shifted = pyramid_slice(9)
    shifted = shifted.assign_coords(lat=shifted.lat + 0.5)
    with pytest.raises(SliceValidationError, match=r": level 0: coordinate 'lat' differs"):
        versioncube.append(shifted, target_dir=pyramid)
    with pytest.raises(SliceValidationError, match=r"level 0: time label 2024-01-01 is not after"):
        versioncube.append(pyramid_slice(0).assign(tas=lambda d: d.tas + 1), target_dir=pyramid)
    with pytest.raises(ConfigError, match="levels.num_levels is 3, but the cube .* was created"):
        versioncube.append(pyramid_slice(9), target_dir=pyramid, levels={"num_levels": 3})
    assert tip(cube) == before


def test_levels_for_a_cube_created_without_them_are_refused(memory_target, five_days):
    versioncube.append(five_days[:2], target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)
    with pytest.raises(ConfigError, match="levels is 4, but the cube .* was created with levels"):
        versioncube.append(five_days[2], target_dir=memory_target, levels=4)
    assert tip(cube) == before
    with pytest.raises(versioncube.CubeNotFoundError, match="no levels"):
        len(cube.levels)


def test_a_dry_run_checks_every_level_and_writes_nothing(pyramid, five_days):
    cube = open_cube(pyramid)
    before = tip(cube)
    new = [pyramid_slice(day) for day in (5, 6)]
    summary = versioncube.append_slices(new, target_dir=pyramid, dry_run=True)

    assert [r.status for r in summary.results] == ["would append", "would append"]
    assert summary.results[1].record.extent() == "time 2024-01-07 in levels 0-3"
    assert tip(cube) == before


def test_verify_finds_levels_of_different_lengths(pyramid, small_slice):
    """What zappend's write_levels leaves after a crash: level 0 one step longer."""
    cube = open_cube(pyramid)
    session = cube.repository.writable_session("main")
    extra = pyramid_slice(5).drop_encoding()
    extra.to_zarr(session.store, group="0", append_dim="time", consolidated=False)
    session.commit("level 0 only, as a non-atomic writer leaves it")

    report = cube.verify()
    assert not report.ok
    assert "level 1 has 5 time steps, level 0 has 6" in report.describe()


def test_force_new_replaces_a_pyramid_by_a_flat_cube(pyramid, five_days):
    versioncube.append(five_days[:2], target_dir=pyramid, force_new=True, levels=None)
    cube = open_cube(pyramid)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(five_days[:2], "time"))
    with pytest.raises(versioncube.CubeNotFoundError, match="no levels"):
        len(cube.levels)
    assert len(cube.levels_at("~2")) == 4  # the pyramid stays in the history


def test_every_pyramid_append_writes_its_ledger_entry(pyramid, five_days):
    cube = open_cube(pyramid)
    ledger = Ledger.read(cube.repository.readonly_session("main").store)
    assert ledger is not None and ledger.count == ledger.rows == 5
    assert appended_in_order(cube) == [dataset_fingerprint(day) for day in five_days]
    more = [pyramid_slice(day) for day in range(5, 7)]
    summary = versioncube.append_slices(five_days + more, target_dir=pyramid, levels=LEVELS)
    assert (summary.skipped, summary.appended) == (5, 2)

    versioncube.append(more, target_dir=pyramid, force_new=True, levels=LEVELS)
    assert appended_in_order(cube) == [dataset_fingerprint(day) for day in more]
    assert [level.sizes["time"] for level in cube.levels] == [2, 2, 2, 2]
    assert cube.verify().ok


# -- the xcube adapter of docs/pyramids-and-groups.md ---------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "pyramids-and-groups.md"


def _adapter_code() -> str:
    text = DOC.read_text()
    start = text.index("```py\nfrom xcube.core.mldataset import LazyMultiLevelDataset")
    return text[start + len("```py\n") : text.index("```", start + 10)]


class _LazyMultiLevelDataset:
    """xcube's LazyMultiLevelDataset contract, as far as the adapter relies on it (xcube 1.14:
    num_levels and get_dataset call the two lazy methods once and keep the results)."""

    def __init__(self, ds_id=None, parameters=None):
        self.ds_id, self._parameters, self._levels = ds_id, parameters or {}, {}

    @property
    def num_levels(self):
        return self._get_num_levels_lazily()

    def get_dataset(self, index):
        if index not in self._levels:
            self._levels[index] = self._get_dataset_lazily(index, self._parameters)
        return self._levels[index]


def test_the_documented_xcube_adapter_reads_any_version(pyramid, monkeypatch, five_days):
    import types

    module = types.ModuleType("xcube.core.mldataset")
    module.LazyMultiLevelDataset = _LazyMultiLevelDataset
    for name in ("xcube", "xcube.core"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "xcube.core.mldataset", module)
    namespace: dict = {}
    exec(_adapter_code(), namespace)
    adapter = namespace["VersionCubeMultiLevelDataset"]

    at_tip, at_third = adapter(pyramid), adapter(pyramid, version="~2")
    open_cube(pyramid).rollback("~4")  # the adapters were pinned to their versions first

    assert at_tip.num_levels == at_third.num_levels == 4
    for level in range(4):
        assert_level_equal(
            at_tip.get_dataset(level).load(), expected_level(xr.concat(five_days, "time"), level)
        )
        assert at_third.get_dataset(level).sizes["time"] == 3


# -- a writer killed between two level writes -------------------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import dask, dask.array as da, xarray as xr, versioncube
    target, path, signal_file, block_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    dask.config.set(scheduler="synchronous")
    calls = []

    def computed(block):
        calls.append(1)
        if len(calls) == block_at:  # the levels before this one are written into the session
            open(signal_file, "w").write("blocked")
            time.sleep(600)
        return block

    day = xr.open_dataset(path).load()
    for name in ("tas", "flags"):
        values = day[name].values  # meta given: map_blocks would call computed to find it
        lazy = da.from_array(values, chunks=-1).map_blocks(computed, meta=values[:0])
        day[name] = (day[name].dims, lazy, day[name].attrs)
    versioncube.append(day, target_dir=target)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("block_at", [1, 3, 5, 7], ids=["level0", "level1", "level2", "level3"])
def test_sigkill_between_level_writes_leaves_every_level_at_the_same_length(
    tmp_path, five_days, block_at
):
    """Each level writes the two variables (two computations), so computation 2k+1 starts
    level k: levels 0..k-1 are in the session, not committed, when the writer is killed."""
    paths = []
    for index, day in enumerate(five_days):
        paths.append(tmp_path / f"day{index}.nc")
        day.to_netcdf(paths[-1])
    target = str(tmp_path / "cube")
    versioncube.append([str(p) for p in paths[:3]], target_dir=target, levels=LEVELS)
    signal_file = tmp_path / "blocked"

    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        writer = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, target, str(paths[3]), str(signal_file),
             str(block_at)],
            stderr=stderr,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert writer.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the writer never reached the level write"
            time.sleep(0.05)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()

    cube = open_cube(target)
    assert [level.sizes["time"] for level in cube.levels] == [3, 3, 3, 3]
    assert len(commits(cube)) == 3
    assert cube.verify().ok
    summary = versioncube.append_slices([str(p) for p in paths], target_dir=target)  # re-run
    assert (summary.appended, summary.skipped) == (2, 3)
    full = xr.concat(five_days, "time")
    for level in range(4):
        assert_level_equal(cube.levels[level].load(), expected_level(full, level))
    assert cube.verify().ok


@pytest.mark.slow
def test_a_lazy_pyramid_is_appended_on_a_dask_cluster(dask_cluster, tmp_path, five_days):
    """Each level is written by to_icechunk, which forks the session to the workers and merges
    their writes back: one commit per slice, every level in it, on worker processes."""
    from distributed import Client

    days = [day.chunk({"lat": 16, "lon": 16}) for day in five_days[:3]]
    target = str(tmp_path / "pyramid")
    with Client(dask_cluster.scheduler.address):  # the session's cluster, made current
        versioncube.append(days, target_dir=target, levels=LEVELS)

    assert len(commits(open_cube(target))) == 3
    full = xr.concat(days, "time")
    for level in range(4):
        found = versioncube.open_dataset(target, level=level).load()
        assert_level_equal(found, expected_level(full, level))


def test_one_cube_object_keeps_checking_against_its_own_last_commit(memory_target, five_days):
    """Appends through one Cube reuse the outline of their own last commit: it must follow."""
    cube = open_cube(memory_target, config={"levels": LEVELS})
    for day in five_days[:3]:
        cube.append(day)
    again = five_days[2].assign(tas=lambda d: d.tas + 1)  # new content, the last label again
    with pytest.raises(SliceValidationError, match="level 0: time label 2024-01-03 is not after"):
        cube.append(again)
    for day in five_days[3:]:
        cube.append(day)
    assert_level_equal(cube.levels[3].load(), expected_level(xr.concat(five_days, "time"), 3))


def test_virtual_appends_that_do_not_fit_level_0_are_refused(pyramid, tmp_path):
    """A copied pyramid's level 0 is chunked in tiles: a file's references, which keep the
    file's chunks, cannot join it (tests/write/test_virtual_groups.py appends files that fit)."""
    path = tmp_path / "day5.nc"
    pyramid_slice(5).to_netcdf(path)
    cube = open_cube(pyramid)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match=r"level 0: variable .* has chunks .*--virtual"):
        cube.append(str(path), virtual=True)
    assert tip(cube) == before
