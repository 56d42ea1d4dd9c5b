"""Writes by label and deletes on cubes of groups: every level of a pyramid, every node of a
tree along the append dimension, changed in one commit; the result equals what plain xarray
builds per level (block means and strides of the expected level 0) and per node."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.errors import SliceValidationError
from versioncube.testing import commits, tip

from .test_grouped_levels import assert_level_equal, expected_level, pyramid_slice
from .test_grouped_trees import tree_at_root, tree_everywhere

LEVELS = {"num_levels": 3, "tile_size": 8, "agg_methods": {"tas": "mean", "flags": "first"}}
SHAPE = (9, 14)  # partial blocks at the edges of the coarse levels


def day_slice(days: list[int], by: float = 0.0) -> xr.Dataset:
    """Days of the pyramid's data, ``by`` added to tas (a re-issued file)."""
    data = xr.concat([pyramid_slice(day, SHAPE) for day in days], "time")
    return data.assign(tas=data.tas + np.float32(by)) if by else data


def along_time(before: xr.Dataset, new: xr.Dataset, drop: list | None = None) -> xr.Dataset:
    kept = before.drop_sel(time=new.time.values, errors="ignore")
    if drop is not None:
        kept = kept.drop_sel(time=drop, errors="ignore")
    return xr.concat([kept, new], "time").sortby("time")


@pytest.fixture
def pyramid(memory_target):
    """Days 0..7 without 4, in three appends."""
    versioncube.append(
        [day_slice([0, 1, 2]), day_slice([3, 5]), day_slice([6, 7])],
        target_dir=memory_target,
        levels=LEVELS,
    )
    return open_cube(memory_target, config={"levels": LEVELS})


def levels_of(cube, snapshot=None) -> list[xr.Dataset]:
    tree = cube.to_datatree(snapshot) if snapshot else cube.to_datatree()
    return [tree[str(level)].to_dataset().load() for level in range(3)]


def check_pyramid(cube, old_tip, expected0: xr.Dataset) -> None:
    """One new commit; every level equals the expected level 0 subsampled; verify is clean;
    rolling back restores the old tip exactly."""
    history = commits(cube)
    assert history[1].id == old_tip
    levels = levels_of(cube)
    for level, found in enumerate(levels):
        assert_level_equal(found, expected_level(expected0, level))
    report = cube.verify()
    assert report.ok, report.problems
    before = levels_of(cube, old_tip)
    cube.rollback(to="main~1")
    assert tip(cube) == old_tip
    for found, old in zip(levels_of(cube), before, strict=True):
        xr.testing.assert_identical(found, old)


def test_pyramid_upsert_overwrites_and_inserts_in_every_level(pyramid):
    before0 = levels_of(pyramid)[0]
    old_tip = tip(pyramid)
    new = day_slice([3, 4, 5, 8], by=2.0)
    result = pyramid.write(new, mode="upsert")
    assert result.status == "written"
    assert result.record.counts == {"replaced": 2, "inserted": 1, "appended": 1}
    assert result.record.groups == ("/0", "/1", "/2")
    check_pyramid(pyramid, old_tip, along_time(before0, new))


@pytest.mark.parametrize("mode", ["replace", "insert"])
def test_pyramid_replace_and_insert(pyramid, mode):
    before0 = levels_of(pyramid)[0]
    old_tip = tip(pyramid)
    new = day_slice([1, 2], by=-1.0) if mode == "replace" else day_slice([4])
    assert pyramid.write(new, mode=mode).status == "written"
    check_pyramid(pyramid, old_tip, along_time(before0, new))


def test_pyramid_time_series_replaces_the_window(pyramid):
    before0 = levels_of(pyramid)[0]
    old_tip = tip(pyramid)
    new = day_slice([2, 4], by=3.0)  # day 3 in the window goes
    assert pyramid.write(new, mode="time_series").status == "written"
    dropped = [np.datetime64("2024-01-04", "ns")]
    check_pyramid(pyramid, old_tip, along_time(before0, new, drop=dropped))


def test_pyramid_delete_removes_the_range_from_every_level(pyramid):
    before0 = levels_of(pyramid)[0]
    old_tip = tip(pyramid)
    result = pyramid.delete("2024-01-02..2024-01-04")
    assert result.status == "written"
    assert result.record.groups == ("/0", "/1", "/2")
    expected0 = before0.drop_sel(time=before0.time.values[1:4])
    check_pyramid(pyramid, old_tip, expected0)


def test_pyramid_appends_go_on_after_updates(pyramid):
    pyramid.delete("2024-01-08")
    pyramid.write(day_slice([4]), mode="insert")
    pyramid.append(day_slice([7]))
    assert pyramid.verify().ok
    expected0 = day_slice(list(range(8)))
    for level, found in enumerate(levels_of(pyramid)):
        assert_level_equal(found, expected_level(expected0, level))


@pytest.mark.parametrize(
    ("mode", "days", "message"),
    [
        ("insert", [3], "in the cube already"),
        ("replace", [4], "not in the cube"),
    ],
)
def test_pyramid_refusals_leave_the_tip_unchanged(pyramid, mode, days, message):
    old_tip = tip(pyramid)
    with pytest.raises(SliceValidationError, match=message):
        pyramid.write(day_slice(days), mode=mode)
    assert tip(pyramid) == old_tip


def test_a_pyramid_slice_that_does_not_fit_names_the_level(pyramid):
    old_tip = tip(pyramid)
    with pytest.raises(SliceValidationError, match="level 0"):
        pyramid.write(day_slice([4]).drop_vars("flags"), mode="upsert")
    assert tip(pyramid) == old_tip


# -- trees -------------------------------------------------------------------------------------


def concat_trees(trees: list[xr.DataTree]) -> dict[str, xr.Dataset]:
    """Every node as appending the trees leaves it: along time, or the first tree's."""
    nodes: dict[str, xr.Dataset] = {}
    for node in trees[0].subtree:
        own = [tree[node.path].to_dataset(inherit=False) for tree in trees]
        nodes[node.path] = xr.concat(own, "time") if "time" in own[0].dims else own[0]
    return nodes


def nodes_of(cube, snapshot=None) -> dict[str, xr.Dataset]:
    tree = cube.to_datatree(snapshot) if snapshot else cube.to_datatree()
    return {node.path: node.to_dataset(inherit=False).load() for node in tree.subtree}


def with_days(make, days: list[int], by: float = 0.0) -> xr.DataTree:
    nodes = concat_trees([make(day) for day in days])
    if by:
        nodes = {
            path: node.map(lambda v: v + by if "time" in v.dims and v.dtype.kind == "f" else v)
            if "time" in node.dims
            else node
            for path, node in nodes.items()
        }
    return xr.DataTree.from_dict(nodes)


def expected_nodes(before: dict[str, xr.Dataset], new: xr.DataTree, drop=None):
    """Per node: the old rows not overwritten (nor dropped), then the new, in time order; the
    node's rows keep the root's time order (nodes without a time coordinate follow it)."""
    root_before, root_new = before["/"], new.to_dataset(inherit=False)
    times = np.concatenate([root_before.time.values, root_new.time.values])
    source = np.concatenate([np.zeros(root_before.sizes["time"]), np.ones(root_new.sizes["time"])])
    keep = ~np.isin(times, root_new.time.values) | (source == 1)
    if drop is not None:
        keep &= ~np.isin(times, drop)
    order = np.argsort(times, kind="stable")
    order = order[keep[order]]
    nodes = {}
    for path, old in before.items():
        if "time" not in old.dims:
            nodes[path] = old
            continue
        both = xr.concat([old, new[path].to_dataset(inherit=False)], "time")
        nodes[path] = both.isel(time=order)
    return nodes


def check_tree(cube, old_tip, expected: dict[str, xr.Dataset]) -> None:
    assert commits(cube)[1].id == old_tip
    found = nodes_of(cube)
    assert sorted(found) == sorted(expected)
    for path, node in expected.items():
        xr.testing.assert_identical(found[path], node)
    report = cube.verify()
    assert report.ok, report.problems
    before = nodes_of(cube, old_tip)
    cube.rollback(to="main~1")
    assert tip(cube) == old_tip
    for path, node in nodes_of(cube).items():
        xr.testing.assert_identical(node, before[path])


@pytest.fixture(params=[tree_everywhere, tree_at_root], ids=["time everywhere", "time at root"])
def tree_cube(request, memory_target):
    make = request.param
    versioncube.append(
        [with_days(make, [0, 1, 2]), with_days(make, [3, 5])], target_dir=memory_target
    )
    return open_cube(memory_target), make


@pytest.mark.parametrize("mode", ["upsert", "replace", "insert", "time_series"])
def test_tree_writes_change_every_node_along_time(tree_cube, mode):
    cube, make = tree_cube
    before, old_tip = nodes_of(cube), tip(cube)
    days = {"upsert": [2, 4, 6], "replace": [1, 3], "insert": [4], "time_series": [1, 4]}[mode]
    new = with_days(make, days, by=0.5)
    result = cube.write(new, mode=mode)
    assert result.status == "written"
    drop = [np.datetime64("2024-01-03", "ns"), np.datetime64("2024-01-04", "ns")]
    check_tree(cube, old_tip, expected_nodes(before, new, drop if mode == "time_series" else None))


def test_tree_delete_removes_the_range_from_every_node(tree_cube):
    cube, _ = tree_cube
    before, old_tip = nodes_of(cube), tip(cube)
    assert cube.delete("2024-01-02..2024-01-03").status == "written"
    expected = {
        path: node.isel(time=[0, 3, 4]) if "time" in node.dims else node
        for path, node in before.items()
    }
    check_tree(cube, old_tip, expected)


def test_a_tree_whose_unchanging_node_differs_is_refused(memory_target):
    versioncube.append([with_days(tree_at_root, [0, 1])], target_dir=memory_target)
    cube = open_cube(memory_target)
    old_tip = tip(cube)
    nodes = concat_trees([tree_at_root(2)])
    nodes["/grid"] = nodes["/grid"].assign(area=("x", [9.0, 9.0, 9.0]))
    new = xr.DataTree.from_dict(nodes)
    with pytest.raises(SliceValidationError, match="group /grid"):
        cube.write(new, mode="upsert")
    assert tip(cube) == old_tip


# -- conflicts, the command line ---------------------------------------------------------------


def _slipping_in(monkeypatch, other_writer):
    """Let ``other_writer`` commit once, right after a write's session was opened (its commit
    then conflicts, and the write runs again on the new tip)."""
    import versioncube.write.updates as updates

    fired = []
    read = updates.read_groups_outline

    def read_then_slip(*args, **kwargs):
        outline = read(*args, **kwargs)
        if not fired:
            fired.append(True)
            other_writer()
        return outline

    monkeypatch.setattr(updates, "read_groups_outline", read_then_slip)
    return fired


def test_a_pyramid_write_runs_again_on_the_new_tip(monkeypatch, pyramid):
    other = open_cube(pyramid.target.uri)
    fired = _slipping_in(monkeypatch, lambda: other.append(day_slice([8])))
    new = day_slice([4, 5], by=1.0)

    result = pyramid.write(new, mode="upsert")

    assert fired and result.status == "written"
    expected0 = along_time(day_slice([0, 1, 2, 3, 5, 6, 7, 8]), new)
    for level, found in enumerate(levels_of(pyramid)):
        assert_level_equal(found, expected_level(expected0, level))
    assert len(commits(pyramid)) == 5 and pyramid.verify().ok


def test_a_tree_write_is_validated_again_on_the_new_tip(monkeypatch, memory_target):
    versioncube.append([with_days(tree_everywhere, [0, 1, 2])], target_dir=memory_target)
    cube, other = open_cube(memory_target), open_cube(memory_target)
    _slipping_in(monkeypatch, lambda: other.delete("2024-01-02"))

    with pytest.raises(SliceValidationError, match="2024-01-02.*not in the cube"):
        cube.write(with_days(tree_everywhere, [1], by=1.0), mode="replace")

    assert tip(cube) == tip(other)  # the other writer's delete, nothing else


def test_write_and_delete_a_pyramid_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from versioncube.cli import cli

    target = tmp_path / "cube"
    versioncube.append([day_slice([0, 1, 2])], target_dir=str(target), levels=LEVELS)
    path = tmp_path / "day1.nc"
    day_slice([1], by=1.0).to_netcdf(path)
    runner = CliRunner()
    written = runner.invoke(cli, ["write", "-t", str(target), "--mode", "upsert", str(path)])
    assert written.exit_code == 0, written.output
    assert "(1 replaced) in levels 0-2" in written.output
    deleted = runner.invoke(cli, ["delete", "-t", str(target), "--labels", "2024-01-01"])
    assert deleted.exit_code == 0, deleted.output
    expected0 = along_time(day_slice([2]), day_slice([1], by=1.0))
    for level, found in enumerate(levels_of(open_cube(str(target)))):
        assert_level_equal(found, expected_level(expected0, level))
