"""add-variable and drop-variable on cubes of groups: every level of a pyramid (the downsampled
levels computed with the variable's aggregation method, as appends do), one node of a tree
(``group``); one commit each, rollback restoring exactly, refusals leaving the tip unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import versioncube
from versioncube import SchemaError, SliceValidationError, open_cube
from versioncube.cli import cli
from versioncube.testing import commits, tip

from .test_grouped_trees import tree_everywhere
from .test_updates_groups import LEVELS, day_slice, levels_of, nodes_of

DAYS = [0, 1, 2, 3, 5, 6, 7]
GIVEN = [1, 2, 6]  # the days sst is given for (the others hold NaN)


@pytest.fixture
def pyramid(memory_target):
    """Days 0..7 without 4, three levels, in two appends."""
    versioncube.append(
        [day_slice([0, 1, 2, 3]), day_slice([5, 6, 7])], target_dir=memory_target, levels=LEVELS
    )
    return open_cube(memory_target, config={"levels": LEVELS})


@pytest.fixture
def tree(memory_target):
    versioncube.append([tree_everywhere(day) for day in range(4)], target_dir=memory_target)
    return open_cube(memory_target)


def _sst(days: list[int]) -> xr.DataArray:
    data = day_slice(days)
    sst = (data.tas - np.float32(273.15)).rename("sst")
    sst.attrs = {"units": "degC"}
    return sst


def _expected_levels(before0: xr.Dataset, sst: xr.DataArray, mask: xr.DataArray | None = None):
    """Level 0 with sst (NaN where not given), and the coarse levels as plain xarray computes
    them from it: block means for sst (auto, a float), strides for an integer mask."""
    full = xr.full_like(before0.tas, np.nan).rename("sst")
    full.loc[{"time": sst.time}] = sst.values
    expected = [before0.assign(sst=full)]
    for level in (1, 2):
        step = 2**level
        blocks = full.coarsen(lat=step, lon=step, boundary="pad", coord_func="min")
        level_sst = blocks.mean().astype(full.dtype)
        variables = {"sst": level_sst}
        if mask is not None:
            strided = mask.isel(lat=slice(None, None, step), lon=slice(None, None, step))
            variables["mask"] = strided.assign_coords(lat=level_sst.lat, lon=level_sst.lon)
        expected.append(xr.Dataset(variables))
    return expected


def _check_one_commit_and_rollback(cube, old_tip, snapshot_before) -> None:
    assert commits(cube)[1].id == old_tip
    assert cube.verify().ok
    cube.rollback(to="main~1")
    assert tip(cube) == old_tip
    for found, old in zip(levels_of(cube), snapshot_before, strict=True):
        xr.testing.assert_identical(found, old)


def test_pyramid_add_variable_writes_every_level(pyramid):
    before = levels_of(pyramid)
    old_tip = tip(pyramid)
    sst = _sst(GIVEN)
    result = pyramid.add_variable("sst", sst)
    assert result.given == len(GIVEN) and result.rows == len(DAYS)
    assert result.record.groups == ("/0", "/1", "/2")
    assert "levels" in commits(pyramid)[0].message
    found = levels_of(pyramid)
    expected = _expected_levels(before[0], sst)
    for level, (got, want) in enumerate(zip(found, expected, strict=True)):
        np.testing.assert_array_equal(got.sst.values, want.sst.values, err_msg=f"level {level}")
        assert got.sst.dtype == want.sst.dtype
        assert sorted(got.data_vars) == ["flags", "sst", "tas"]
    assert pyramid.levels.spec["agg_methods"]["sst"] == "mean"
    _check_one_commit_and_rollback(pyramid, old_tip, before)


def test_pyramid_integer_variable_is_strided_and_appends_go_on(pyramid):
    mask = day_slice(DAYS).flags.rename("mask").astype("int8")
    pyramid.add_variable("mask", mask, fill_value=-1)
    levels = levels_of(pyramid)
    for level in (1, 2):
        step = 2**level
        strided = mask.isel(lat=slice(None, None, step), lon=slice(None, None, step))
        np.testing.assert_array_equal(levels[level].mask.values, strided.values)
    assert pyramid.levels.spec["agg_methods"]["mask"] == "first"
    # read back, the mask is decoded (its _FillValue masked): a later slice gives it so
    pyramid.append(day_slice([8]).assign(mask=day_slice([8]).flags.astype("float32")))
    assert [level.sizes["time"] for level in levels_of(pyramid)] == [8, 8, 8]
    assert pyramid.verify().ok


def test_pyramid_drop_variable_leaves_every_level(pyramid):
    before = levels_of(pyramid)
    old_tip = tip(pyramid)
    result = pyramid.drop_variable("flags")
    assert result.record.groups == ("/0", "/1", "/2")
    for level in levels_of(pyramid):
        assert sorted(level.data_vars) == ["tas"]
    assert "flags" not in pyramid.levels.spec["agg_methods"]
    _check_one_commit_and_rollback(pyramid, old_tip, before)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda cube: cube.add_variable("tas", _sst(GIVEN)), SchemaError, "level 0: 'tas'"),
        (lambda cube: cube.add_variable("sst", _sst([4])), SliceValidationError, "level 0"),
        (lambda cube: cube.drop_variable("nope"), SchemaError, r"level 0: .*'nope'.*tas"),
        (lambda cube: cube.drop_variable("time"), SchemaError, "append coordinate"),
        (lambda cube: cube.drop_variable("tas", group="/1"), SchemaError, "pyramid"),
    ],
    ids=["exists", "unknown-day", "no-such-variable", "append-coord", "group"],
)
def test_pyramid_refusals_leave_the_tip_unchanged(pyramid, change, error, match):
    old_tip = tip(pyramid)
    with pytest.raises(error, match=match):
        change(pyramid)
    assert tip(pyramid) == old_tip


# -- trees -------------------------------------------------------------------------------------


def _salt(days: list[int]) -> xr.DataArray:
    times = [np.datetime64("2024-01-01", "ns") + np.timedelta64(day, "D") for day in days]
    values = np.arange(len(days) * 2, dtype="float64").reshape(len(days), 2)
    return xr.DataArray(
        values, dims=("time", "y"), coords={"time": times, "y": [10.0, 20.0]}, name="salt"
    )


def test_tree_add_and_drop_in_a_nested_node(tree):
    before = nodes_of(tree)
    old_tip = tip(tree)
    result = tree.add_variable("salt", _salt([1, 3]), group="/ocean")
    assert result.record.groups == ("/ocean",)
    after = nodes_of(tree)
    assert commits(tree)[1].id == old_tip
    np.testing.assert_array_equal(
        after["/ocean"].salt.values, [[np.nan, np.nan], [0, 1], [np.nan, np.nan], [2, 3]]
    )
    for path, node in before.items():  # every other node as it was
        if path != "/ocean":
            xr.testing.assert_identical(after[path], node)
    xr.testing.assert_identical(after["/ocean"].drop_vars("salt"), before["/ocean"])

    added_tip = tip(tree)
    tree.drop_variable("t", group="atmos")
    assert commits(tree)[1].id == added_tip
    dropped = nodes_of(tree)
    assert "t" not in dropped["/atmos"].variables
    assert "u" in dropped["/atmos/upper"].variables
    assert tree.verify().ok

    tree.rollback(to="main~2")
    assert tip(tree) == old_tip
    for path, node in nodes_of(tree).items():
        xr.testing.assert_identical(node, before[path])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            lambda cube: cube.add_variable("salt", _salt([1]), group="/nope"),
            SchemaError,
            r"no group /nope \(its groups: /, /atmos",
        ),
        (lambda cube: cube.drop_variable("t", group="/nope/deeper"), SchemaError, "/nope/deeper"),
        (
            lambda cube: cube.add_variable("salt", _salt([1]), group="/atmos"),
            SliceValidationError,
            r"group /atmos: .*\(y\)",
        ),
        (lambda cube: cube.drop_variable("t"), SchemaError, "group /: .*'t'"),
        (
            lambda cube: cube.add_variable("sst", _salt([1]).rename("sst"), group="/ocean"),
            SchemaError,
            "group /ocean: 'sst' is already",
        ),
    ],
    ids=["missing-group", "missing-drop", "wrong-dims", "root-only", "exists"],
)
def test_tree_refusals_name_the_group_and_leave_the_tip(tree, change, error, match):
    old_tip = tip(tree)
    with pytest.raises(error, match=match):
        change(tree)
    assert tip(tree) == old_tip


def test_command_line_group(tmp_path):
    target = str(tmp_path / "cube")
    versioncube.append([tree_everywhere(day) for day in range(2)], target_dir=target)
    path = tmp_path / "salt.nc"
    _salt([0, 1]).to_dataset().to_netcdf(path)
    runner = CliRunner()
    added = runner.invoke(
        cli, ["add-variable", "salt", str(path), "-t", target, "--group", "/ocean"]
    )
    assert added.exit_code == 0, added.output
    assert "salt" in open_cube(target).to_datatree()["ocean"].variables
    missing = runner.invoke(cli, ["drop-variable", "salt", "-t", target, "--group", "/nope"])
    assert missing.exit_code == 1
    assert "no group /nope" in missing.output
    dropped = runner.invoke(cli, ["drop-variable", "salt", "-t", target, "--group", "ocean"])
    assert dropped.exit_code == 0, dropped.output
    assert "salt" not in open_cube(target).to_datatree()["ocean"].variables
