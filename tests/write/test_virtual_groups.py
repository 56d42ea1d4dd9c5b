"""Virtual appends to cubes of groups: a pyramid's level 0 referenced and its other levels
computed from the file's values (read through the references), and every group of a NetCDF4
file with groups referenced into a tree; one commit per file, the same checks as a flat
virtual append (messages naming the level or group), mixing with copied slices, rollback,
time travel, verify and gc. Real files cut from eofs' SST anomalies."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import icechunk
import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.errors import ConfigError, SliceValidationError
from versioncube.testing import commits, tip
from versioncube.testing.real_data import AMBIGUOUS_REFERENCE_DATE

STEPS = 5
LEVELS = 3
ZLIB = {"zlib": True, "shuffle": True, "complevel": 4, "chunksizes": (1, 18, 30)}


def sst() -> xr.Dataset:
    from eofs.examples import example_data_path

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", AMBIGUOUS_REFERENCE_DATE)
        return xr.open_dataset(example_data_path("sst_ndjfm_anom.nc")).load()


def write_steps(folder: Path, steps: int = STEPS, encoding: dict | None = None) -> list[Path]:
    """One NetCDF4 file (zlib, one chunk per step) per time step of eofs' SST anomalies."""
    folder.mkdir(parents=True, exist_ok=True)
    source = sst()
    paths = []
    for index in range(steps):
        path = folder / f"sst_{index:03d}.nc"
        source.isel(time=[index]).to_netcdf(
            path, engine="netcdf4", encoding={"sst": encoding or ZLIB}, unlimited_dims=[]
        )
        paths.append(path)
    return paths


def sources(paths: list[Path]) -> xr.Dataset:
    opened = [xr.open_dataset(path).load() for path in paths]
    return xr.concat(opened, "time", data_vars="minimal", coords="minimal", compat="override")


def coarsened(level0: xr.DataArray, level: int, method: str = "mean") -> xr.DataArray:
    """Level ``level`` of ``level0`` as xcube computes it, with xarray."""
    step = 2**level
    if method == "first":
        return level0.isel(latitude=slice(None, None, step), longitude=slice(None, None, step))
    blocks = level0.coarsen(latitude=step, longitude=step, boundary="pad", coord_func="min")
    return getattr(blocks, method)()


def assert_pyramid_equal(target: str, paths: list[Path], method: str = "mean", **kw) -> None:
    expected = sources(paths)
    level0 = versioncube.open_dataset(target, level=0, **kw).load()
    xr.testing.assert_identical(level0, expected)
    for level in range(1, LEVELS):
        got = versioncube.open_dataset(target, level=level, **kw).sst.load()
        xr.testing.assert_allclose(got, coarsened(expected.sst, level, method))
        assert got.sizes["time"] == len(paths)


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> list[Path]:
    return write_steps(tmp_path_factory.mktemp("nc4z"))


def levels_setting(method: str = "mean") -> dict:
    return {"num_levels": LEVELS, "agg_methods": {"sst": method}}


# -- pyramids --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["mean", "first"])
def test_pyramid_level_0_is_referenced_and_levels_are_computed(steps, tmp_path, method):
    target = str(tmp_path / "cube")
    summary = versioncube.append_slices(
        [str(p) for p in steps], target_dir=target, virtual=True, levels=levels_setting(method)
    )
    assert summary.appended == STEPS
    cube = open_cube(target)
    assert len(commits(cube)) == STEPS  # one commit per file, every level in it
    assert_pyramid_equal(target, steps, method)
    session = cube.repository.readonly_session(branch="main")
    for step in range(STEPS):
        assert session.chunk_type("/0/sst", [step, 0, 0]) == icechunk.ChunkType.virtual
        assert session.chunk_type("/1/sst", [step, 0, 0]) != icechunk.ChunkType.virtual
    records = [entry.record for entry in cube.log()]
    assert all(record.groups == ("/0", "/1", "/2") for record in records)
    assert [Path(r.virtual["url"].removeprefix("file://")) for r in reversed(records)] == steps
    assert "append (refs)" in cube.log().describe()
    assert "in levels 0-2" in cube.log().describe()
    # the append coordinate is stored natively, in the cube's time encoding
    encoding = cube.to_xarray(level=0).time.encoding
    assert encoding["dtype"] == np.int64 and encoding["chunks"] == (1024,)
    assert session.chunk_type("/0/time", [0]) != icechunk.ChunkType.virtual
    assert cube.verify().ok
    again = versioncube.append_slices([str(p) for p in steps], target_dir=target, virtual=True)
    assert again.skipped == STEPS  # resumes: the ledger holds every file


def test_copied_and_referenced_slices_mix_in_a_pyramid(steps, tmp_path):
    target = str(tmp_path / "cube")
    paths = [str(p) for p in steps]
    versioncube.append_slices(paths[:2], target_dir=target, virtual=True, levels=levels_setting())
    cube = open_cube(target)
    cube.append(paths[2])  # copied, encoded with the cube's stored (the file's) codecs
    versioncube.append_slices(paths[3:], target_dir=target, virtual=True)
    assert len(commits(cube)) == STEPS
    assert_pyramid_equal(target, steps)
    session = cube.repository.readonly_session(branch="main")
    kinds = [session.chunk_type("/0/sst", [step, 0, 0]) for step in range(STEPS)]
    virtual, native = icechunk.ChunkType.virtual, icechunk.ChunkType.native
    assert kinds == [virtual, virtual, native, virtual, virtual]
    assert [entry.record.virtual is not None for entry in reversed(cube.log())] == [
        True, True, False, True, True,
    ]  # fmt: skip
    assert cube.verify().ok


def test_rollback_and_time_travel_on_a_referenced_pyramid(steps, tmp_path):
    target = str(tmp_path / "cube")
    paths = [str(p) for p in steps]
    versioncube.append_slices(paths[:3], target_dir=target, virtual=True, levels=levels_setting())
    cube = open_cube(target)
    cube.tag("three")
    three = tip(cube)
    versioncube.append_slices(paths[3:], target_dir=target, virtual=True)
    for level in range(LEVELS):  # every level of an older version
        old = versioncube.open_dataset(target, "three", level=level).load()
        assert old.sizes["time"] == 3
    assert_pyramid_equal(target, steps[:3], version="three")
    cube.rollback("three")
    assert tip(cube) == three
    assert_pyramid_equal(target, steps[:3])
    again = versioncube.append_slices(paths, target_dir=target, virtual=True)
    assert (again.appended, again.skipped) == (2, 3)
    assert_pyramid_equal(target, steps)


def test_gc_keeps_the_referenced_pyramid_readable(steps, tmp_path):
    target = str(tmp_path / "cube")
    paths = [str(p) for p in steps]
    versioncube.append_slices(paths, target_dir=target, virtual=True, levels=levels_setting())
    cube = open_cube(target)
    cube.rollback("~1")
    cube.gc("0s", force=True)
    assert_pyramid_equal(target, steps[:-1])
    assert cube.verify().ok


def test_a_level_0_reference_that_does_not_fit_is_refused_naming_the_level(steps, tmp_path):
    target = str(tmp_path / "cube")
    versioncube.append_slices(
        [str(p) for p in steps[:2]], target_dir=target, virtual=True, levels=levels_setting()
    )
    other = write_steps(tmp_path / "other", 3, {**ZLIB, "chunksizes": (1, 9, 30)})[2]
    contiguous = write_steps(tmp_path / "contiguous", 3, {"contiguous": True})[2]
    cube = open_cube(target)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match=r"level 0: variable 'sst' has chunks"):
        cube.append(str(other), virtual=True)
    with pytest.raises(SliceValidationError, match=r"level 0: variable 'sst' is encoded with"):
        cube.append(str(contiguous), virtual=True)
    assert tip(cube) == before
    assert not cube.repository.readonly_session(branch="main").has_uncommitted_changes


def test_a_first_file_with_configured_chunks_for_a_referenced_variable_is_refused(steps, tmp_path):
    target = tmp_path / "cube"
    with pytest.raises(ConfigError, match=r"level 0: variables.sst.encoding \(chunks\)"):
        versioncube.append(
            [str(steps[0])], target_dir=str(target), virtual=True, levels=levels_setting(),
            variables={"sst": {"encoding": {"chunks": [1, 16, 16]}}},
        )  # fmt: skip
    assert not target.exists()  # a failed first append creates nothing


def test_dry_run_of_a_referenced_pyramid_writes_nothing(steps, tmp_path):
    target = tmp_path / "cube"
    paths = [str(p) for p in steps]
    summary = versioncube.append_slices(
        paths, target_dir=str(target), virtual=True, levels=levels_setting(), dry_run=True
    )
    assert summary.appended == STEPS and not target.exists()
    assert summary.results[0].record.virtual["url"].endswith("sst_000.nc")
    assert summary.results[1].record.groups == ("/0", "/1", "/2")
    versioncube.append(paths[:2], target_dir=str(target), virtual=True, levels=levels_setting())
    cube = open_cube(str(target))
    before = tip(cube)
    rest = versioncube.append_slices(paths, target_dir=str(target), virtual=True, dry_run=True)
    assert [result.status for result in rest.results] == ["skipped"] * 2 + ["would append"] * 3
    assert rest.results[2].record.index_range == (2, 3)
    assert tip(cube) == before
    other = write_steps(target.parent / "other", 3, {**ZLIB, "chunksizes": (1, 9, 30)})[2]
    with pytest.raises(SliceValidationError, match="level 0: variable 'sst' has chunks"):
        versioncube.append_slices([str(other)], target_dir=str(target), virtual=True, dry_run=True)
    assert tip(cube) == before


def test_verify_reports_a_changed_source_of_level_0(steps, tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(steps[0].parent, folder)
    paths = sorted(folder.glob("*.nc"))
    target = str(tmp_path / "cube")
    versioncube.append_slices(
        [str(p) for p in paths], target_dir=target, virtual=True, levels=levels_setting()
    )
    cube = open_cube(target)
    assert cube.verify().ok
    time.sleep(1.1)  # Icechunk compares modification times in whole seconds
    os.utime(paths[1])
    report = cube.verify()
    assert [problem.split(" (")[0] for problem in report.problems] == [
        f"source {paths[1].as_uri()} changed after it was referenced"
    ]


# -- trees -----------------------------------------------------------------------------------


def tree_everywhere(step: xr.Dataset) -> xr.DataTree:
    """Each node along time has its own time coordinate; nested groups; a static group."""
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs={"title": "SST anomalies"}),
            "/ocean": xr.Dataset({"sst": step.sst}),
            "/atmos": xr.Dataset({"t": step.sst * 2}),
            "/atmos/upper": xr.Dataset({"u": step.sst * 3}),
            "/grid": xr.Dataset({"bounds_latitude": step.bounds_latitude}),
        }
    )


def tree_at_root(step: xr.Dataset) -> xr.DataTree:
    """Time only at the root, inherited by the nested groups below it."""
    year = step.time.dt.year.values.astype("int32")
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset({"year": ("time", year)}, coords={"time": step.time}),
            "/ocean": xr.Dataset({"sst": step.sst.drop_vars("time")}),
            "/ocean/anomaly": xr.Dataset({"twice": (step.sst * 2).drop_vars("time")}),
            "/grid": xr.Dataset({"bounds_latitude": step.bounds_latitude}),
        }
    )


TREES = {"time-everywhere": tree_everywhere, "time-at-root": tree_at_root}


def write_trees(folder: Path, kind: str, steps: int = STEPS, chunks=(1, 18, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    source, paths = sst(), []
    for index in range(steps):
        tree = TREES[kind](source.isel(time=[index]))
        encoding = {  # the fields compressed, in one chunk per step
            node.path: {
                str(name): {**ZLIB, "chunksizes": chunks}
                for name, variable in node.data_vars.items()
                if variable.ndim == 3
            }
            for node in tree.subtree
        }
        path = folder / f"tree_{index:03d}.nc"
        tree.to_netcdf(path, engine="netcdf4", encoding=encoding)
        paths.append(path)
    return paths


def expected_tree(paths: list[Path]) -> dict[str, xr.Dataset]:
    """Each node of the files, concatenated along time where it has time (xr.concat)."""
    opened = [xr.open_datatree(path).load() for path in paths]
    nodes = {}
    for node in opened[0].subtree:
        parts = [tree[node.path].to_dataset(inherit=False) for tree in opened]
        if "time" in parts[0].dims:
            nodes[node.path] = xr.concat(
                parts, "time", data_vars="minimal", coords="minimal", compat="override"
            )
        else:
            nodes[node.path] = parts[0]
    return nodes


def assert_tree_equal(target: str, paths: list[Path], version=None) -> None:
    got = versioncube.open_datatree(target, version).load()
    expected = expected_tree(paths)
    assert sorted(node.path for node in got.subtree) == sorted(expected)
    for path, dataset in expected.items():
        xr.testing.assert_identical(got[path].to_dataset(inherit=False), dataset)


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("trees")
    return {kind: write_trees(root / kind, kind) for kind in TREES}


@pytest.mark.parametrize("kind", list(TREES))
def test_every_group_of_a_file_is_referenced_into_a_tree(trees, tmp_path, kind):
    paths = trees[kind]
    target = str(tmp_path / "cube")
    summary = versioncube.append_slices([str(p) for p in paths], target_dir=target, virtual=True)
    assert summary.appended == STEPS
    cube = open_cube(target)
    assert len(commits(cube)) == STEPS
    assert_tree_equal(target, paths)
    session = cube.repository.readonly_session(branch="main")
    assert session.chunk_type("/ocean/sst", [STEPS - 1, 0, 0]) == icechunk.ChunkType.virtual
    appended = ("/atmos", "/atmos/upper", "/ocean") if kind == "time-everywhere" else (
        "/", "/ocean", "/ocean/anomaly"
    )  # fmt: skip
    assert all(entry.record.groups == appended for entry in cube.log())
    # the group without time is written once, by the commit that creates the cube
    first, last = commits(cube)[-1].id, commits(cube)[0].id
    changed = cube.repository.diff(from_snapshot_id=first, to_snapshot_id=last).updated_chunks
    assert not any(path.startswith("/grid") for path in changed)
    assert "/ocean/sst" in changed
    assert cube.verify().ok


def test_copied_and_referenced_slices_mix_in_a_tree(trees, tmp_path):
    paths = [str(p) for p in trees["time-at-root"]]
    target = str(tmp_path / "cube")
    versioncube.append_slices(paths[:2], target_dir=target, virtual=True)
    cube = open_cube(target)
    cube.append(paths[2])  # copied: read as a tree, encoded with the stored codecs
    versioncube.append_slices(paths[3:], target_dir=target, virtual=True)
    assert_tree_equal(target, trees["time-at-root"])
    session = cube.repository.readonly_session(branch="main")
    kinds = [session.chunk_type("/ocean/anomaly/twice", [step, 0, 0]) for step in range(STEPS)]
    assert kinds.count(icechunk.ChunkType.virtual) == STEPS - 1
    assert cube.verify().ok


def test_rollback_and_time_travel_on_a_referenced_tree(trees, tmp_path):
    paths = [str(p) for p in trees["time-everywhere"]]
    target = str(tmp_path / "cube")
    versioncube.append_slices(paths[:2], target_dir=target, virtual=True)
    cube = open_cube(target)
    two = tip(cube)
    versioncube.append_slices(paths, target_dir=target, virtual=True)
    assert_tree_equal(target, trees["time-everywhere"][:2], version=two)
    cube.rollback(two)
    assert tip(cube) == two
    assert_tree_equal(target, trees["time-everywhere"][:2])
    cube.gc("0s", force=True)
    assert_tree_equal(target, trees["time-everywhere"][:2])


def test_a_group_that_does_not_fit_is_refused_naming_the_group(trees, tmp_path):
    target = str(tmp_path / "cube")
    versioncube.append_slices(
        [str(p) for p in trees["time-at-root"][:2]], target_dir=target, virtual=True
    )
    cube = open_cube(target)
    before = tip(cube)
    other = write_trees(tmp_path / "other", "time-at-root", 3, chunks=(1, 9, 30))[2]
    with pytest.raises(SliceValidationError, match=r"group /ocean: variable 'sst' has chunks"):
        cube.append(str(other), virtual=True)
    lacking = tmp_path / "lacking.nc"
    tree = tree_at_root(sst().isel(time=[2]))
    del tree["grid"]
    tree.to_netcdf(lacking, engine="netcdf4")
    with pytest.raises(SliceValidationError, match=r"lacks group\(s\) '/grid'"):
        cube.append(str(lacking), virtual=True)
    assert tip(cube) == before


def test_files_without_groups_cannot_be_referenced_into_a_tree(trees, tmp_path):
    target = str(tmp_path / "cube")
    versioncube.append_slices(
        [str(p) for p in trees["time-at-root"][:1]], target_dir=target, virtual=True
    )
    cube = open_cube(target)
    before = tip(cube)
    netcdf3 = tmp_path / "flat.nc"
    sst().isel(time=[1]).to_netcdf(netcdf3, engine="scipy")
    with pytest.raises(SliceValidationError, match="is a NetCDF3 file, which has no groups"):
        cube.append(str(netcdf3), virtual=True)
    with pytest.raises(ConfigError, match="virtual_group .* is a tree"):
        versioncube.append(
            [str(trees["time-at-root"][1])], target_dir=target, virtual=True, virtual_group="ocean"
        )
    assert tip(cube) == before


def test_virtual_group_still_makes_a_flat_cube_of_one_group(trees, tmp_path):
    target = str(tmp_path / "cube")
    paths = [str(p) for p in trees["time-everywhere"][:2]]
    versioncube.append(paths, target_dir=target, virtual=True, virtual_group="ocean")
    got = versioncube.open_dataset(target).load()
    assert got.sst.shape == (2, 18, 30)
    assert versioncube.open_datatree(target).children.keys() == set()


# -- S3 (the SeaweedFS server) --------------------------------------------------------------


def upload(paths: list[Path], options: dict, prefix: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(
        key=options["access_key_id"], secret=options["secret_access_key"],
        client_kwargs={"endpoint_url": options["endpoint_url"], "region_name": "us-east-1"},
    )  # fmt: skip
    uris = []
    for path in paths:
        uri = f"{prefix}/{path.name}"
        fs.put_file(str(path), uri)
        uris.append(uri)
    return uris


def s3_run(options: dict, target: str) -> dict:
    prefix = f"{target}-archive/"
    keys = {key: options[key] for key in ("access_key_id", "secret_access_key")}
    return {
        "target_storage_options": options,
        "slice_storage_options": options,
        "virtual_credentials": {prefix: keys},
    }


@pytest.mark.slow
def test_s3_pyramid_of_references(steps, s3_target):
    target, options = s3_target
    uris = upload(steps[:3], options, f"{target}-archive")
    run = s3_run(options, target)
    versioncube.append_slices(uris, target_dir=target, virtual=True, levels=levels_setting(), **run)
    reading = {"storage_options": options, "virtual_credentials": run["virtual_credentials"]}
    assert_pyramid_equal(target, steps[:3], **reading)
    cube = open_cube(target, **reading)
    assert len(commits(cube)) == 3 and cube.verify().ok
    assert all(entry.record.virtual["etag"] for entry in cube.log())


@pytest.mark.slow
def test_s3_tree_of_references(trees, s3_target):
    target, options = s3_target
    paths = trees["time-at-root"][:3]
    uris = upload(paths, options, f"{target}-archive")
    run = s3_run(options, target)
    versioncube.append_slices(uris, target_dir=target, virtual=True, **run)
    reading = {"storage_options": options, "virtual_credentials": run["virtual_credentials"]}
    cube = open_cube(target, **reading)
    got = cube.to_datatree().load()
    for path, dataset in expected_tree(paths).items():
        xr.testing.assert_identical(got[path].to_dataset(inherit=False), dataset)
    assert len(commits(cube)) == 3 and cube.verify().ok


def test_materialize_copies_the_references_of_every_group(steps, trees, tmp_path):
    pyramid, tree = str(tmp_path / "pyramid"), str(tmp_path / "tree")
    versioncube.append_slices(
        [str(p) for p in steps], target_dir=pyramid, virtual=True, levels=levels_setting()
    )
    versioncube.append_slices([str(p) for p in trees["time-at-root"]], target_dir=tree,
                              virtual=True)  # fmt: skip
    for target, array in ((pyramid, "/0/sst"), (tree, "/ocean/anomaly/twice")):
        cube = open_cube(target)
        result = cube.materialize()
        assert result.chunks >= STEPS
        session = cube.repository.readonly_session(branch="main")
        assert session.chunk_type(array, [STEPS - 1, 0, 0]) == icechunk.ChunkType.native
        assert not session.all_virtual_chunk_locations()
    assert_pyramid_equal(pyramid, steps)
    assert_tree_equal(tree, trees["time-at-root"])


def test_the_command_line_references_a_tree_and_dry_runs_it(trees, tmp_path):
    from click.testing import CliRunner

    from versioncube.cli import cli

    paths = [str(p) for p in trees["time-at-root"][:3]]
    target = str(tmp_path / "cube")
    dry = CliRunner().invoke(cli, ["append", "--virtual", "--dry-run", "-t", target, *paths])
    assert dry.exit_code == 0, dry.output
    assert "would append" in dry.output and not (tmp_path / "cube").exists()
    result = CliRunner().invoke(cli, ["append", "--virtual", "-t", target, *paths])
    assert result.exit_code == 0, result.output
    log = CliRunner().invoke(cli, ["log", "-t", target])
    assert "append (refs)" in log.output and "in groups /, /ocean, /ocean/anomaly" in log.output
    show = CliRunner().invoke(cli, ["show", "-t", target]).output
    assert "references 3 files under" in show  # each once, though three groups reference it
    assert_tree_equal(target, trees["time-at-root"][:3])
    netcdf3 = tmp_path / "flat.nc"
    sst().isel(time=[3]).to_netcdf(netcdf3, engine="scipy")
    refused = CliRunner().invoke(cli, ["append", "--virtual", "-t", target, str(netcdf3)])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        "Error: slice flat.nc: is a NetCDF3 file, which has no groups: only NetCDF4/HDF5 files "
        "can be referenced group by group into a tree of groups; append it without --virtual "
        "to copy its values"
    ]


def test_verify_reports_a_changed_source_of_a_tree(trees, tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(trees["time-everywhere"][0].parent, folder)
    paths = sorted(folder.glob("*.nc"))[:3]
    target = str(tmp_path / "cube")
    versioncube.append_slices([str(p) for p in paths], target_dir=target, virtual=True)
    cube = open_cube(target)
    assert cube.verify().ok
    time.sleep(1.1)  # Icechunk compares modification times in whole seconds
    os.utime(paths[2])
    report = cube.verify()
    assert [problem.split(" (")[0] for problem in report.problems] == [
        f"source {paths[2].as_uri()} changed after it was referenced"
    ]
    with pytest.raises(icechunk.IcechunkError, match="checksum of the object"):
        versioncube.open_datatree(target)["atmos/upper"].u.isel(time=2).load()


def test_dry_run_of_a_file_for_an_existing_flat_cube_of_references(steps, tmp_path):
    """The references are checked against the cube's arrays, opened read-only."""
    target = str(tmp_path / "cube")
    paths = [str(p) for p in steps]
    versioncube.append(paths[:2], target_dir=target, virtual=True)
    dry = versioncube.append_slices(paths, target_dir=target, virtual=True, dry_run=True)
    assert [result.status for result in dry.results] == ["skipped"] * 2 + ["would append"] * 3


def test_netcdf3_and_grib_files_make_pyramids_too(tmp_path):
    """Level 1 read back equal to the block mean of level 0, both parsers' files."""
    from versioncube.testing.grib_samples import cfgrib_samples, dated_copies

    source = sst()
    netcdf3 = []
    for index in range(3):
        path = tmp_path / f"nc3_{index}.nc"
        source.isel(time=[index]).to_netcdf(path, engine="scipy", unlimited_dims=["time"])
        netcdf3.append(str(path))
    grib = dated_copies(
        cfgrib_samples() / "regular_ll_msl.grib", tmp_path / "g2", [20240301, 20240302, 20240303]
    )
    for name, files, (x, y) in (
        ("sst", netcdf3, ("longitude", "latitude")),
        ("prmsl", [str(p) for p in grib], ("longitude", "latitude")),
    ):
        target = str(tmp_path / f"cube-{name}")
        versioncube.append(files, target_dir=target, virtual=True, levels=2)
        level0 = versioncube.open_dataset(target, level=0)[name].load()
        level1 = versioncube.open_dataset(target, level=1)[name].load()
        level1 = level1.drop_vars("spatial_ref", errors="ignore")  # GRIB's grid mapping
        blocks = level0.coarsen({x: 2, y: 2}, boundary="pad", coord_func="min")
        xr.testing.assert_allclose(level1, blocks.mean())
        session = open_cube(target).repository.readonly_session(branch="main")
        index = [2] + [0] * (level0.ndim - 1)
        assert session.chunk_type(f"/0/{name}", index) == icechunk.ChunkType.virtual


def test_a_writer_slipping_in_a_commit_makes_the_change_run_again(steps, tmp_path, monkeypatch):
    """Another writer commits while a virtual append is written: the commit conflicts and the
    change runs again on the new tip, after the other writer's (earlier) file; the next time
    the other writer appends the very same file, which the retry then finds in the ledger."""
    import versioncube.write.virtual_groups as module

    target = str(tmp_path / "cube")
    paths = [str(p) for p in steps]
    versioncube.append(paths[:2], target_dir=target, virtual=True, levels=levels_setting())
    checked = module.check_unchanged
    slip: list[str] = []  # the file the other writer appends, once, during the next append

    def slipping(url, stamp, files, name):
        if slip:
            open_cube(target).append(slip.pop(), virtual=True)
        return checked(url, stamp, files, name)

    monkeypatch.setattr(module, "check_unchanged", slipping)
    slip.append(paths[2])
    result = open_cube(target).append(paths[3], virtual=True)
    assert result.status == "appended" and result.record.index_range == (3, 4)
    slip.append(paths[4])
    other = open_cube(target).append(paths[4], virtual=True)
    assert other.status == "skipped" and other.snapshot_id == tip(open_cube(target))
    assert len(commits(open_cube(target))) == STEPS
    assert_pyramid_equal(target, steps)


def test_force_new_starts_a_referenced_pyramid_afresh_as_a_new_commit(steps, tmp_path):
    target = str(tmp_path / "cube")
    paths = [str(p) for p in steps]
    versioncube.append(paths[:3], target_dir=target, virtual=True, levels=levels_setting())
    versioncube.append(
        paths[3:], target_dir=target, virtual=True, levels=levels_setting(), force_new=True
    )
    cube = open_cube(target)
    assert len(commits(cube)) == STEPS  # the old pyramid stays in the history
    assert_pyramid_equal(target, steps[3:])
    assert_pyramid_equal(target, steps[:3], version="~2")
    assert cube.verify().ok
