"""Trees of groups (xarray.DataTree slices, files with groups): every group in one commit.

A node whose own variables use the append dimension is appended to, the others are written
once; read back, every node equals ``xr.concat`` of that node over the slices.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.errors import CubeNotFoundError, SliceValidationError
from versioncube.slices.identity import dataset_fingerprint
from versioncube.testing import appended_in_order, commits, tip
from versioncube.versions.ledger import Ledger
from versioncube.versions.record import human_message

X, Y, LEVELS = [0.5, 1.5, 2.5], [10.0, 20.0], [1000, 500, 250]


def _time(day: int) -> np.ndarray:
    return np.array([np.datetime64("2024-01-01") + np.timedelta64(day, "D")], "datetime64[ns]")


def _values(day: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(day).random((1, *shape))


def tree_everywhere(day: int) -> xr.DataTree:
    """time in every node: the root holds the time coordinate, every node below has variables
    along it (xarray keeps the coordinate at the root, the nodes inherit it)."""
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(
                {"index": ("time", [day])}, coords={"time": _time(day)}, attrs={"title": "tree"}
            ),
            "/atmos": xr.Dataset(
                {"t": (("time", "x"), _values(day, 3), {"units": "K"})}, coords={"x": X}
            ),
            "/atmos/upper": xr.Dataset(
                {"u": (("time", "x", "level"), _values(day + 100, 3, 3))},
                coords={"level": LEVELS},
            ),
            "/ocean": xr.Dataset(
                {"sst": (("time", "y"), _values(day + 200, 2).astype("float32"))},
                coords={"y": Y},
                attrs={"source": "model"},
            ),
        }
    )


def tree_at_root(day: int) -> xr.DataTree:
    """time only at the root: the nodes below are written once (grids, masks)."""
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset({"index": ("time", [day])}, coords={"time": _time(day)}),
            "/grid": xr.Dataset({"area": ("x", [1.0, 2.0, 3.0])}, coords={"x": X}),
            "/grid/mask": xr.Dataset({"land": ("x", np.array([0, 1, 1], "int8"))}),
        }
    )


def tree_of_siblings(day: int) -> xr.DataTree:
    """No data at the root; two siblings, each with its own time coordinate."""
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs={"title": "siblings"}),
            "/a": xr.Dataset({"v": (("time", "x"), _values(day, 3))}, coords={"time": _time(day)}),
            "/b": xr.Dataset({"w": ("time", [float(day)])}, coords={"time": _time(day)}),
        }
    )


def expected_node(slices: list[xr.DataTree], path: str) -> xr.Dataset:
    """A node as appending the slices should leave it: concatenated along time, or the first
    slice's when it has no variables along time."""
    own = [tree[path].to_dataset(inherit=False) for tree in slices]
    return xr.concat(own, "time") if "time" in own[0].dims else own[0]


def assert_tree_equal(found: xr.DataTree, slices: list[xr.DataTree]) -> None:
    assert sorted(node.path for node in found.subtree) == sorted(
        node.path for node in slices[0].subtree
    )
    for node in slices[0].subtree:
        own = found[node.path].to_dataset(inherit=False).load()
        xr.testing.assert_identical(own, expected_node(slices, node.path))


@pytest.mark.parametrize("make", [tree_everywhere, tree_at_root, tree_of_siblings])
def test_five_appended_trees_equal_concat_per_node(memory_target, make):
    slices = [make(day) for day in range(5)]
    summary = versioncube.append_slices(slices, target_dir=memory_target)

    assert summary.appended == 5
    cube = open_cube(memory_target)
    assert len(commits(cube)) == 5
    assert_tree_equal(versioncube.open_datatree(memory_target), slices)
    assert_tree_equal(cube.to_datatree(), slices)
    assert cube.verify().ok


def test_nodes_without_the_append_dimension_are_written_once(memory_target):
    slices = [tree_at_root(day) for day in range(3)]
    versioncube.append(slices, target_dir=memory_target)
    cube = open_cube(memory_target)
    first, last = commits(cube)[-1].id, tip(cube)

    changed = cube.repository.diff(from_snapshot_id=first, to_snapshot_id=last).updated_chunks
    # nothing below /grid was written again; the slice ledger was
    assert sorted(changed) == ["/.versioncube/slices", "/index", "/time"]
    assert human_message(commits(cube)[0].message).endswith("time 2024-01-03 in group /")


def test_a_group_reads_with_the_coordinates_it_inherits(memory_target):
    slices = [tree_everywhere(day) for day in range(3)]
    versioncube.append(slices, target_dir=memory_target)

    upper = versioncube.open_dataset(memory_target, group="/atmos/upper").load()
    xr.testing.assert_identical(upper, versioncube.open_datatree(memory_target)["atmos/upper"]
                                .to_dataset().load())  # fmt: skip
    assert list(upper.time.values) == [_time(day)[0] for day in range(3)]
    assert list(upper.x.values) == X


def test_a_tree_without_data_at_its_root_says_how_to_read_it(memory_target):
    versioncube.append([tree_of_siblings(day) for day in range(2)], target_dir=memory_target)
    with pytest.raises(CubeNotFoundError, match=r"tree of groups .* group= \(one of /a, /b\)"):
        versioncube.open_dataset(memory_target)
    assert versioncube.open_dataset(memory_target, group="b").w.values.tolist() == [0.0, 1.0]


def test_time_travel_and_rollback_move_every_group(memory_target):
    slices = [tree_everywhere(day) for day in range(5)]
    versioncube.append(slices, target_dir=memory_target)
    cube = open_cube(memory_target)

    assert_tree_equal(versioncube.open_datatree(memory_target, "~2"), slices[:3])
    assert_tree_equal(cube.to_datatree(cube.log()[3].snapshot_id), slices[:2])
    cube.rollback("~2")
    assert_tree_equal(cube.to_datatree(), slices[:3])
    assert cube.verify().ok
    summary = versioncube.append_slices(slices, target_dir=memory_target)  # resumes
    assert (summary.appended, summary.skipped) == (2, 3)
    assert_tree_equal(cube.to_datatree(), slices)


def test_log_show_and_diff_list_the_groups(memory_target):
    versioncube.append([tree_everywhere(day) for day in range(3)], target_dir=memory_target)
    runner = CliRunner()
    log = runner.invoke(cli, ["log", "-t", memory_target, "-n", "1"])
    show = runner.invoke(cli, ["show", "-t", memory_target])
    diff = runner.invoke(cli, ["diff", "-t", memory_target, "~1", "--json"])

    assert "time 2024-01-03 in groups /, /atmos, /atmos/upper, /ocean" in log.output
    assert "group /atmos/upper  time: 3, x: 3, level: 3" in show.output
    assert "sst  (time, y) float32" in show.output
    changes = versioncube.display.json.to_json(open_cube(memory_target).diff("~1"))
    assert sorted(changes["group_diffs"]) == [
        "group /", "group /atmos", "group /atmos/upper", "group /ocean"
    ]  # fmt: skip
    assert '"count": 1' in diff.output


def test_a_dry_run_checks_every_group_and_writes_nothing(memory_target):
    versioncube.append(tree_everywhere(0), target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)
    broken = tree_everywhere(2)
    broken["ocean"]["sst"] = broken["ocean"]["sst"].astype("float64")
    with pytest.raises(SliceValidationError) as raised:
        versioncube.append_slices(
            [tree_everywhere(1), broken], target_dir=memory_target, dry_run=True
        )  # fmt: skip (every verdict, then the error)
    verdicts = [result.status for result in raised.value.summary.results]
    assert verdicts == ["would append", "would fail"]
    assert "group /ocean: variable 'sst' has dtype float64" in str(raised.value)
    assert tip(cube) == before


def _with(tree: xr.DataTree, path: str, dataset: xr.Dataset | None) -> xr.DataTree:
    nodes = {node.path: node.to_dataset(inherit=False) for node in tree.subtree}
    if dataset is None:
        del nodes[path]
    else:
        nodes[path] = dataset
    return xr.DataTree.from_dict(nodes)


REFUSALS = [
    (
        lambda: _with(tree_everywhere(2), "/atmos/upper", tree_everywhere(2)["atmos/upper"]
                      .to_dataset(inherit=False).astype("float32")),
        r"group /atmos/upper: variable 'u' has dtype float32, the cube has float64",
    ),
    (lambda: _with(tree_everywhere(2), "/ocean", None), r"lacks group\(s\) '/ocean' that the cube"),
    (
        lambda: _with(tree_everywhere(2), "/land", xr.Dataset({"z": ("time", [1.0])})),
        r"has group\(s\) '/land' that the cube does not have",
    ),
    (
        lambda: _with(tree_everywhere(2), "/atmos", tree_everywhere(2)["atmos"]
                      .to_dataset(inherit=False).assign_coords(x=[0.0, 1.0, 2.0])),
        r"group /atmos: coordinate 'x' differs from the cube's",
    ),
    (
        lambda: _with(tree_everywhere(2), "/.ledger", xr.Dataset({"z": ("time", [1.0])})),
        r"has the group /.ledger, whose name starts with '.'",
    ),
    (
        lambda: _with(tree_everywhere(0), "/", tree_everywhere(0).to_dataset(inherit=False)
                      .assign(index=("time", [7]))),  # not the slice appended: new content
        r"group /: time label 2024-01-01 is not after",
    ),
]  # fmt: skip


@pytest.mark.parametrize("make, message", REFUSALS)
def test_refusals_name_the_group_and_change_nothing(memory_target, make, message):
    versioncube.append([tree_everywhere(day) for day in range(2)], target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match=message):
        versioncube.append(make(), target_dir=memory_target)
    assert tip(cube) == before


def test_unchanging_groups_must_stay_as_the_cube_has_them(memory_target):
    versioncube.append(tree_at_root(0), target_dir=memory_target)
    changed = _with(tree_at_root(1), "/grid/mask", xr.Dataset({"land": ("x", np.ones(3, "int16"))}))
    with pytest.raises(SliceValidationError, match="group /grid/mask: variable 'land' has dtype"):
        versioncube.append(changed, target_dir=memory_target)


def test_siblings_must_get_the_same_steps(memory_target):
    versioncube.append(tree_of_siblings(0), target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)
    other_day = _with(
        tree_of_siblings(1), "/b", xr.Dataset({"w": ("time", [1.0])}, coords={"time": _time(2)})
    )
    two_steps = _with(
        tree_of_siblings(1),
        "/b",
        xr.Dataset(
            {"w": ("time", [1.0, 2.0])}, coords={"time": np.concatenate([_time(1), _time(2)])}
        ),
    )
    with pytest.raises(SliceValidationError, match="group /b has the time label 2024-01-03 where"):
        versioncube.append(other_day, target_dir=memory_target)
    with pytest.raises(SliceValidationError, match="group /b has 2 time step.*group /a has 1"):
        versioncube.append(two_steps, target_dir=memory_target)
    assert tip(cube) == before


def test_a_tree_for_a_flat_cube_is_refused(memory_target, small_slice):
    versioncube.append(small_slice("2024-01-01"), target_dir=memory_target)
    tree = xr.DataTree.from_dict({"/": small_slice("2024-01-02"), "/extra": xr.Dataset({"a": 1})})
    with pytest.raises(SliceValidationError, match=r"has group\(s\) '/extra' that the cube does"):
        versioncube.append(tree, target_dir=memory_target)


@pytest.mark.parametrize("store", ["netcdf", "zarr"])
def test_files_with_groups_are_appended_as_trees(tmp_path, store):
    slices = [tree_everywhere(day) for day in range(3)]
    paths = []
    for day, tree in enumerate(slices):
        if store == "netcdf":
            paths.append(str(tmp_path / f"day{day}.nc"))
            tree.to_netcdf(paths[-1], engine="h5netcdf")
        else:
            paths.append(str(tmp_path / f"day{day}.zarr"))
            tree.to_zarr(paths[-1], consolidated=False)
    target = str(tmp_path / "cube")

    versioncube.append(paths, target_dir=target)

    assert_tree_equal(versioncube.open_datatree(target), slices)
    assert appended_in_order(open_cube(target)) == paths
    summary = versioncube.append_slices(paths, target_dir=target)  # later files: read as trees
    assert summary.skipped == 3


def test_internal_groups_are_never_shown(memory_target):
    """A group versioncube keeps for itself (a name starting with a dot, such as a slice
    ledger) is left out of the tree, the summary and the checks."""
    slices = [tree_everywhere(day) for day in range(2)]
    versioncube.append(slices, target_dir=memory_target)
    cube = open_cube(memory_target)
    session = cube.repository.writable_session("main")
    hidden = zarr.open_group(session.store, path=".notes", mode="w")
    hidden.create_array("slices", shape=(4,), dtype="int64", dimension_names=["bucket"])[:] = 1
    session.commit("an internal group")
    root = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")
    assert {".versioncube", ".notes"} <= set(root.group_keys())  # the ledger, and this one

    assert_tree_equal(cube.to_datatree(), slices)
    assert_tree_equal(versioncube.open_datatree(memory_target), slices)
    assert ".versioncube" not in cube.info().describe() and ".notes" not in cube.info().describe()
    assert cube.verify().ok
    for group in ("/.versioncube", "/.notes"):
        with pytest.raises(CubeNotFoundError, match=f"no group '{group}'"):
            versioncube.open_dataset(memory_target, group=group)


@pytest.mark.parametrize("make", [tree_everywhere, tree_of_siblings])
def test_every_tree_append_writes_its_ledger_entry(memory_target, make):
    """The cube's one ledger, in its root group: an entry per tree, resume through it, and a
    new one (the old cube's entries gone) when force_new starts the tree afresh."""
    slices = [make(day) for day in range(5)]
    versioncube.append(slices[:3], target_dir=memory_target)
    cube = open_cube(memory_target)
    ledger = Ledger.read(cube.repository.readonly_session("main").store)
    assert ledger is not None and ledger.count == ledger.rows == 3
    assert appended_in_order(cube) == [dataset_fingerprint(tree) for tree in slices[:3]]

    summary = versioncube.append_slices(slices[:4], target_dir=memory_target)
    assert (summary.skipped, summary.appended) == (3, 1)

    versioncube.append(slices[3:], target_dir=memory_target, force_new=True)
    root = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")
    assert ".versioncube" in set(root.group_keys())  # back beside the new tree
    assert appended_in_order(cube) == [dataset_fingerprint(tree) for tree in slices[3:]]
    assert_tree_equal(versioncube.open_datatree(memory_target), slices[3:])
    assert cube.verify().ok


def test_configured_attributes_go_to_the_root_of_a_tree(memory_target):
    versioncube.append(
        [tree_everywhere(day) for day in range(2)],
        target_dir=memory_target,
        attrs={"project": "demo", "last": "{{ ds.time[-1] }}"},
        permit_eval=True,
    )
    tree = versioncube.open_datatree(memory_target)
    assert tree.attrs == {"title": "tree", "project": "demo", "last": "2024-01-02T00:00:00"}
    assert tree["ocean"].attrs == {"source": "model"}


@pytest.mark.slow
def test_lazy_trees_are_appended_on_a_dask_cluster(dask_cluster, tmp_path):
    """Each group is written by to_icechunk, which forks the session to the workers and merges
    their writes back: one commit per slice on a real cluster of worker processes."""
    from distributed import Client

    trees = [tree_everywhere(day) for day in range(3)]
    with Client(dask_cluster.scheduler.address):  # the session's cluster, made current
        versioncube.append([tree.chunk() for tree in trees], target_dir=str(tmp_path / "tree"))

    assert_tree_equal(versioncube.open_datatree(str(tmp_path / "tree")), trees)
    assert len(commits(open_cube(str(tmp_path / "tree")))) == 3


def test_one_cube_object_keeps_checking_against_its_own_last_commit(memory_target):
    cube = open_cube(memory_target)
    slices = [tree_everywhere(day) for day in range(4)]
    for tree in slices[:2]:
        cube.append(tree)
    again = _with(slices[1], "/", slices[1].to_dataset(inherit=False).assign(index=("time", [9])))
    with pytest.raises(SliceValidationError, match="group /: time label 2024-01-02 is not after"):
        cube.append(again)
    for tree in slices[2:]:
        cube.append(tree)
    assert_tree_equal(cube.to_datatree(), slices)


def test_a_first_tree_that_cannot_be_written_names_the_group_and_creates_nothing(tmp_path):
    target = str(tmp_path / "cube")
    codec = {"sst": {"encoding": {"compressors": [{"name": "bytes"}]}}}  # not a compressor
    with pytest.raises(SliceValidationError, match="group /ocean: cannot be written as the cube"):
        versioncube.append(tree_everywhere(0), target_dir=target, variables=codec)
    assert not open_cube(target).exists()


def provide_tree(day: int) -> xr.DataTree:
    """A slice source that provides a DataTree."""
    return tree_everywhere(day)


def test_a_slice_source_may_provide_trees(memory_target):
    versioncube.append([0, 1, 2], target_dir=memory_target, slice_source=provide_tree)
    assert_tree_equal(
        versioncube.open_datatree(memory_target), [tree_everywhere(d) for d in range(3)]
    )
    again = versioncube.append_slices(
        [0, 1, 2], target_dir=memory_target, slice_source=provide_tree
    )
    assert again.skipped == 3


def test_virtual_appends_that_do_not_fit_a_copied_tree_are_refused(tmp_path):
    """The copied tree's arrays have versioncube's codecs, the file its own: refused, naming
    the group (tests/write/test_virtual_groups.py appends files that fit)."""
    target = str(tmp_path / "cube")
    versioncube.append(tree_everywhere(0), target_dir=target)
    path = tmp_path / "day1.nc"
    tree_everywhere(1).to_netcdf(path)
    cube = open_cube(target)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match="group /.*encoded with .*--virtual"):
        cube.append(str(path), virtual=True)
    assert tip(cube) == before
