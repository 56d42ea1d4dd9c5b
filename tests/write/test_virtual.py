"""Virtual slices (append --virtual): real NetCDF3/NetCDF4/HDF5 files cut from eofs' SST
anomalies and cfgrib's GRIB samples become cubes of references that read back equal to the
sources; the four silent mismatches VirtualiZarr lets through are refused with the tip
unchanged; changed sources are refused on read and reported by verify; materialize copies."""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import h5py
import icechunk
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.errors import (
    SliceOpenError,
    SliceValidationError,
    StaleSourceError,
    VirtualAccessError,
)
from versioncube.testing import appended_in_order, commits, tip
from versioncube.testing.grib_samples import cfgrib_samples, dated_copies, split_by_time
from versioncube.testing.real_data import AMBIGUOUS_REFERENCE_DATE
from versioncube.versions.ledger import Ledger, LedgerEntry

STEPS = 4

#: Layout name -> (xarray engine, format, encoding of sst, unlimited time)
LAYOUTS = {
    "nc3-classic": ("scipy", "NETCDF3_CLASSIC", {}, False),
    "nc3-64bit-records": ("scipy", "NETCDF3_64BIT", {}, True),
    "nc3-cdf5": ("netcdf4", "NETCDF3_64BIT_DATA", {}, False),
    "nc4-contiguous": ("netcdf4", "NETCDF4", {"contiguous": True}, False),
    "nc4-zlib-shuffle": (
        "netcdf4", "NETCDF4", {"zlib": True, "complevel": 4, "shuffle": True,
                               "chunksizes": (1, 18, 30)}, False,
    ),
    "nc4-fletcher32": (
        "netcdf4", "NETCDF4", {"fletcher32": True, "chunksizes": (1, 18, 30)}, False,
    ),
    "hdf5-big-endian": ("netcdf4", "NETCDF4", {"chunksizes": (1, 18, 30)}, False),
}  # fmt: skip


def sst() -> xr.Dataset:
    from eofs.examples import example_data_path

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", AMBIGUOUS_REFERENCE_DATE)
        return xr.open_dataset(example_data_path("sst_ndjfm_anom.nc")).load()


def write_steps(folder: Path, layout: str, steps: int = STEPS, start: int = 0) -> list[Path]:
    """One file per time step of eofs' SST anomalies, in ``layout``."""
    engine, file_format, encoding, unlimited = LAYOUTS[layout]
    folder.mkdir(parents=True, exist_ok=True)
    source = sst()
    paths = []
    for index in range(start, start + steps):
        path = folder / f"sst_{index:03d}.nc"
        source.isel(time=[index]).to_netcdf(
            path,
            engine=engine,
            format=file_format,
            encoding={"sst": encoding} if encoding else None,
            unlimited_dims=["time"] if unlimited else [],
        )
        if layout == "hdf5-big-endian":
            to_big_endian(path)
        paths.append(path)
    return paths


def to_big_endian(path: Path) -> None:
    """Rewrite the file's sst as a big-endian HDF5 dataset (xarray writes native order)."""
    import netCDF4

    with netCDF4.Dataset(path, "a") as file:
        old = file.variables["sst"]
        values, attrs = old[:], {key: old.getncattr(key) for key in old.ncattrs()}
        fill = attrs.pop("_FillValue", None)
        file.renameVariable("sst", "sst_native")
        new = file.createVariable(
            "sst", ">f8", old.dimensions, endian="big", chunksizes=(1, 18, 30), fill_value=fill
        )
        new.setncatts(attrs)
        new[:] = values
    with h5py.File(path, "a") as file:  # netCDF4 cannot delete variables; HDF5 can
        del file["sst_native"]


def sources(paths: list[Path]) -> xr.Dataset:
    return xr.open_mfdataset(
        paths, combine="nested", concat_dim="time", data_vars="minimal", coords="minimal",
        compat="override",
    ).load()  # fmt: skip


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("layouts")
    return {layout: write_steps(root / layout, layout) for layout in LAYOUTS}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_layout_reads_back_equal_to_its_sources(layout, layouts, tmp_path):
    paths = layouts[layout]
    target = str(tmp_path / "cube")
    summary = versioncube.append_slices([str(p) for p in paths], target_dir=target, virtual=True)
    assert summary.appended == STEPS
    cube = open_cube(target)
    assert len(commits(cube)) == STEPS  # one commit per file
    xr.testing.assert_equal(cube.to_xarray().load(), sources(paths))
    # every commit names its file and stamp; the data are references, the labels native
    records = [entry.record for entry in cube.log()]
    assert [Path(r.virtual["url"].removeprefix("file://")) for r in reversed(records)] == paths
    assert all(r.virtual["mtime_ns"] and r.virtual["size"] for r in records)
    session = cube.repository.readonly_session(branch="main")
    assert session.chunk_type("/sst", [STEPS - 1, 0, 0]) == icechunk.ChunkType.virtual
    assert session.chunk_type("/time", [0]) != icechunk.ChunkType.virtual
    time_encoding = cube.to_xarray().time.encoding
    assert time_encoding["dtype"] == np.int64 and time_encoding["chunks"] == (1024,)
    assert "(refs)" in cube.log().describe()
    # the containers are saved with the repository's settings, and nothing of versioncube's
    # session settings is (see tests/store/test_repository.py)
    saved = icechunk.Repository.fetch_config(icechunk.local_filesystem_storage(target))
    assert saved is not None and saved.manifest is not None
    assert list(saved.virtual_chunk_containers or {}) == [f"file://{paths[0].parent}/"]
    assert saved.manifest.preload is None and saved.manifest.splitting is not None


def test_resume_and_rollback_work_as_for_copied_slices(layouts, tmp_path):
    paths = [str(p) for p in layouts["nc4-zlib-shuffle"]]
    target = str(tmp_path / "cube")
    versioncube.append_slices(paths[:2], target_dir=target, virtual=True)
    summary = versioncube.append_slices(paths, target_dir=target, virtual=True)
    assert (summary.appended, summary.skipped) == (2, 2)
    cube = open_cube(target)
    cube.rollback("~2")
    assert cube.to_xarray().sizes["time"] == 2
    again = versioncube.append_slices(paths, target_dir=target, virtual=True)
    assert (again.appended, again.skipped) == (2, 2)
    xr.testing.assert_equal(cube.to_xarray().load(), sources(layouts["nc4-zlib-shuffle"]))


def test_every_virtual_append_writes_its_ledger_entry(layouts, tmp_path):
    paths = [str(p) for p in layouts["nc4-zlib-shuffle"]]
    target = str(tmp_path / "cube")
    versioncube.append_slices(paths, target_dir=target, virtual=True)
    cube = open_cube(target)

    ledger = Ledger.read(cube.repository.readonly_session("main").store)
    assert ledger is not None and ledger.count == ledger.rows == len(paths)
    assert [entry.rows for entry in sorted(ledger.entries(), key=lambda e: e.rows)] == [
        (n, n + 1) for n in range(len(paths))
    ]
    assert appended_in_order(cube) == paths
    assert cube.verify().ok


def test_variables_without_the_append_dim_are_written_once(layouts, tmp_path):
    target = str(tmp_path / "cube")
    versioncube.append_slices(
        [str(p) for p in layouts["nc4-contiguous"]], target_dir=target, virtual=True
    )
    cube = open_cube(target)
    first, last = commits(cube)[-1].id, commits(cube)[0].id
    changed = cube.repository.diff(from_snapshot_id=first, to_snapshot_id=last).updated_chunks
    assert "/bounds_latitude" not in changed and "/latitude" not in changed
    assert set(changed) >= {"/sst", "/time"}


def test_dry_run_checks_without_writing(layouts, tmp_path):
    target = str(tmp_path / "cube")
    paths = [str(p) for p in layouts["nc4-contiguous"]]
    summary = versioncube.append_slices(paths, target_dir=target, virtual=True, dry_run=True)
    assert summary.appended == STEPS and not Path(target).exists()
    assert summary.results[0].record.virtual["url"].endswith("sst_000.nc")


# -- the four silent mismatches, each refused with the tip unchanged --------------------------


def refused(target: str, path: Path, match: str) -> None:
    cube = open_cube(target)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match=match):
        cube.append(str(path), virtual=True)
    assert tip(cube) == before
    assert not cube.repository.readonly_session(branch="main").has_uncommitted_changes


def packed(folder: Path, index: int, scale: float) -> Path:
    encoding = {"sst": {"dtype": "int16", "scale_factor": scale, "_FillValue": -32768}}
    path = folder / f"packed_{index}.nc"
    folder.mkdir(parents=True, exist_ok=True)
    sst().isel(time=[index]).to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path


def test_a_different_scale_factor_per_file_is_refused(tmp_path):
    target = str(tmp_path / "cube")
    first, other, same = (
        packed(tmp_path, 0, 0.001),
        packed(tmp_path, 1, 0.002),
        packed(tmp_path, 2, 0.001),
    )
    versioncube.append(str(first), target_dir=target, virtual=True)
    refused(target, other, "scale_factor 0.002, the cube 0.001")
    # the same packing is accepted and decodes as the files do
    versioncube.append(str(same), target_dir=target, virtual=True)
    xr.testing.assert_equal(open_cube(target).to_xarray().load(), sources([first, same]))


def test_fill_value_against_missing_value_is_refused(tmp_path):
    """NetCDF3 files: the first marks missing values with _FillValue NaN, the second (as eofs
    does) with missing_value 1e20, which references would read as 1e20 under the cube's NaN."""
    data = sst().isel(time=[0, 1])
    first, second = tmp_path / "fill.nc", tmp_path / "missing.nc"
    data.isel(time=[1]).to_netcdf(second, format="NETCDF3_64BIT")
    data.sst.encoding = {"_FillValue": np.nan}
    data.isel(time=[0]).to_netcdf(first, format="NETCDF3_64BIT")
    target = str(tmp_path / "cube")
    versioncube.append(str(first), target_dir=target, virtual=True)
    refused(target, second, "_FillValue")


def test_a_cube_length_off_the_chunk_grid_is_refused(tmp_path):
    """Two steps per chunk; a copied step makes the cube 3 long: the next file's references
    would land shifted against their labels."""
    data = sst()
    encoding = {"sst": {"chunksizes": (2, 18, 30), "zlib": True}}
    pairs = []
    for start in (0, 3):
        path = tmp_path / f"pair_{start}.nc"
        data.isel(time=[start, start + 1]).to_netcdf(path, encoding=encoding)
        pairs.append(path)
    target = str(tmp_path / "cube")
    versioncube.append(str(pairs[0]), target_dir=target, virtual=True)
    # a copied slice joins the virtual cube, encoded with its codecs
    versioncube.append(data.isel(time=[2]), target_dir=target)
    refused(target, pairs[1], "length 3 is not a multiple of the chunk length 2")
    xr.testing.assert_equal(open_cube(target).to_xarray().sst.load(), data.sst.isel(time=[0, 1, 2]))


def test_oversized_chunks_on_an_unlimited_dim_are_refused(tmp_path):
    path = tmp_path / "oversized.nc"
    encoding = {"sst": {"chunksizes": (4, 18, 30), "zlib": True}}
    sst().isel(time=[0]).to_netcdf(path, encoding=encoding, unlimited_dims=["time"])
    target = str(tmp_path / "cube")
    with (
        pytest.warns(UserWarning, match="chunk shape larger"),
        pytest.raises(SliceValidationError, match="chunks of 4 along time, longer than"),
    ):
        versioncube.append(str(path), target_dir=target, virtual=True)
    assert not Path(target).exists()  # refused before the cube was created


def test_copied_cube_refuses_references_with_other_codecs(layouts, tmp_path):
    target = str(tmp_path / "cube")
    paths = layouts["nc4-zlib-shuffle"]
    versioncube.append(str(paths[0]), target_dir=target)  # copied: versioncube's Blosc
    refused(target, paths[1], r"encoded with bytes\(endian=little\) \+ numcodecs.shuffle")


# -- stale sources --------------------------------------------------------------------------


def test_a_source_changed_after_commit_is_refused_and_reported(layouts, tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(layouts["nc4-contiguous"][0].parent, folder)
    paths = sorted(folder.glob("*.nc"))
    target = str(tmp_path / "cube")
    versioncube.append_slices([str(p) for p in paths], target_dir=target, virtual=True)
    cube = open_cube(target)
    assert cube.verify().ok
    time.sleep(1.1)  # Icechunk compares modification times in whole seconds
    os.utime(paths[1])  # same bytes, new time: the references can no longer be trusted
    paths[2].unlink()
    with pytest.raises(icechunk.IcechunkError, match="checksum of the object"):
        cube.to_xarray().sst.isel(time=1).load()
    report = cube.verify()
    assert not report.ok
    assert [problem.split(" (")[0] for problem in report.problems] == [
        f"source {paths[1].as_uri()} changed after it was referenced",
        f"source {paths[2].as_uri()} is missing",
    ]
    with pytest.raises(
        StaleSourceError, match="sst_001.nc changed after its|sst_002.nc is missing"
    ):
        cube.materialize()


def test_a_file_rewritten_between_parsing_and_commit_is_refused(layouts, tmp_path):
    from versioncube.slices.virtual import open_virtual_slice
    from versioncube.store.commit import commit_change
    from versioncube.write.append import SliceNames
    from versioncube.write.virtual import VirtualAppendChange

    folder = tmp_path / "archive"
    shutil.copytree(layouts["nc4-contiguous"][0].parent, folder)
    paths = sorted(folder.glob("*.nc"))
    target = str(tmp_path / "cube")
    versioncube.append(str(paths[0]), target_dir=target, virtual=True)
    cube = open_cube(target, config={"virtual": True})
    before = tip(cube)
    parsed = open_virtual_slice(paths[1].as_uri(), paths[1].name, {})
    sst().isel(time=[7]).to_netcdf(paths[1])  # another writer replaces the file
    appender = cube._appender
    ref = versioncube.slices.identity.IdentifiedSlice(str(paths[1]), str(paths[1]), "sst_001.nc")
    names = SliceNames(ref, appender.slice_options)
    change = VirtualAppendChange(appender, names, parsed, appender.outline, False, {})
    with pytest.raises(SliceOpenError, match="changed while it was being appended"):
        commit_change(cube.repository, cube.target, "main", change)
    assert tip(cube) == before


# -- materialize ----------------------------------------------------------------------------


def test_materialize_copies_references_and_frees_the_cube_from_the_archive(layouts, tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(layouts["nc4-zlib-shuffle"][0].parent, folder)
    paths = sorted(folder.glob("*.nc"))
    target = str(tmp_path / "cube")
    versioncube.append_slices([str(p) for p in paths], target_dir=target, virtual=True)
    cube = open_cube(target)
    before = cube.to_xarray().load()
    part = cube.materialize(stop=str(before.time.values[1]))
    assert part.chunks == 2 and part.record.index_range == (0, 2)
    session = cube.repository.readonly_session(branch="main")
    native, virtual = icechunk.ChunkType.native, icechunk.ChunkType.virtual
    kinds = [session.chunk_type("/sst", [i, 0, 0]) for i in range(STEPS)]
    assert kinds == [native, native, virtual, virtual]
    rest = cube.materialize()
    assert rest.chunks >= 2 and len(commits(cube)) == STEPS + 2
    assert cube.materialize().snapshot_id is None  # nothing left: no commit
    assert "references" not in cube.info().describe()
    previous = cube.repository.lookup_snapshot(part.snapshot_id).parent_id
    assert "- references sst_000.nc .. sst_003.nc" in cube.diff(previous).describe()
    shutil.rmtree(folder)  # the archive is gone
    xr.testing.assert_identical(open_cube(target).to_xarray().load(), before)
    assert cube.verify().ok  # materialize moves no rows
    assert "is missing" in cube.verify(previous).problems[0]  # earlier versions still refer


def test_materialize_leaves_the_ledger_as_it_is(layouts, tmp_path):
    paths = [str(p) for p in layouts["nc4-zlib-shuffle"]]
    target = str(tmp_path / "cube")
    versioncube.append_slices(paths[:3], target_dir=target, virtual=True)
    cube = open_cube(target)
    before = tip(cube)

    assert cube.materialize().snapshot_id is not None

    def ledger_at(snapshot_id: str) -> list[LedgerEntry]:
        ledger = Ledger.read(cube.repository.readonly_session(snapshot_id=snapshot_id).store)
        assert ledger is not None
        return sorted(ledger.entries(), key=lambda entry: entry.rows)

    assert ledger_at(tip(cube)) == ledger_at(before)
    summary = versioncube.append_slices(paths, target_dir=target, virtual=True)
    assert (summary.skipped, summary.appended) == (3, len(paths) - 3)
    assert cube.verify().ok


def test_gc_never_deletes_archive_files(layouts, tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(layouts["nc3-classic"][0].parent, folder)
    paths = sorted(folder.glob("*.nc"))
    target = str(tmp_path / "cube")
    versioncube.append_slices([str(p) for p in paths], target_dir=target, virtual=True)
    cube = open_cube(target)
    cube.rollback("~2")
    cube.gc("0s", force=True)
    assert all(path.exists() for path in paths)
    assert cube.verify().ok


# -- layouts that cannot be referenced ------------------------------------------------------


def h5_file(path: Path, **options) -> Path:
    with h5py.File(path, "w") as file:
        time = file.create_dataset("time", data=np.array([0.0]))
        time.attrs["units"] = "days since 2000-01-01"
        time.make_scale("time")
        data = file.create_dataset(
            "v", data=np.arange(64.0).reshape(1, 64), chunks=(1, 64), **options
        )
        data.dims[0].attach_scale(time)
    return path


@pytest.mark.parametrize(
    ("options", "filter_name"),
    [({"compression": "lzf"}, "LZF"), ({"scaleoffset": 2}, "HDF5 scale-offset")],
)
def test_unsupported_hdf5_filters_name_variable_and_filter(options, filter_name, tmp_path):
    path = h5_file(tmp_path / "f.h5", **options)
    with pytest.raises(SliceValidationError) as raised:
        versioncube.append(str(path), target_dir=str(tmp_path / "cube"), virtual=True)
    message = str(raised.value)
    assert f"variable 'v' uses the {filter_name} filter" in message
    assert message.endswith("append it without --virtual to copy its values")
    assert "\n" not in message


@pytest.mark.parametrize(("compression", "filter_name"), [("bzip2", "bzip2"), ("szip", "szip")])
def test_unsupported_netcdf4_filters(compression, filter_name, tmp_path):
    import netCDF4

    path = tmp_path / "f.nc"
    with netCDF4.Dataset(path, "w") as file:
        file.createDimension("time", None)
        file.createDimension("x", 64)
        time = file.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time[:] = [0.0]
        options = {"szip_coding": "nn"} if compression == "szip" else {}
        variable = file.createVariable(
            "v", "f4", ("time", "x"), compression=compression, chunksizes=(1, 64), **options
        )
        variable[:] = np.arange(64.0).reshape(1, 64)
    with pytest.raises(SliceValidationError, match=f"variable 'v' uses the {filter_name} filter"):
        versioncube.append(str(path), target_dir=str(tmp_path / "cube"), virtual=True)


def test_variable_length_strings_are_refused(tmp_path):
    path = tmp_path / "strings.nc"
    data = sst().isel(time=[0])[["sst"]]
    data["label"] = ("time", np.array(["first"], dtype=object))
    data.to_netcdf(path, engine="netcdf4")
    with pytest.raises(SliceValidationError, match="'label' holds variable-length strings"):
        versioncube.append(str(path), target_dir=str(tmp_path / "cube"), virtual=True)


def test_datasets_cannot_be_referenced(small_slice, tmp_path):
    with pytest.raises(SliceValidationError, match="a dataset or a slice source has no file"):
        versioncube.append(small_slice("2024-03-01"), target_dir=str(tmp_path), virtual=True)


# -- GRIB -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grib_folder() -> Path:
    return cfgrib_samples()


def test_grib1_messages_become_references(grib_folder, tmp_path):
    source = grib_folder / "era5-levels-members.grib"
    parts = split_by_time(source, tmp_path / "parts")
    target = str(tmp_path / "cube")
    summary = versioncube.append_slices([str(p) for p in parts], target_dir=target, virtual=True)
    assert summary.appended == len(parts) == 4
    head = open_cube(target).to_xarray().load()
    whole = xr.open_dataset(source, engine="cfgrib", backend_kwargs={"indexpath": ""}).load()
    whole = whole.rename(isobaricInhPa="isobar").sel(isobar=head.isobar)
    np.testing.assert_array_equal(head.time.values, whole.valid_time.values)
    for name in ("t", "z"):
        expected = whole[name].transpose(*head[name].dims).values
        np.testing.assert_allclose(head[name].values, expected, rtol=1e-6)


def test_grib2_messages_become_references(grib_folder, tmp_path):
    source = grib_folder / "regular_ll_msl.grib"
    files = dated_copies(source, tmp_path / "g2", [20240301, 20240302, 20240303])
    target = str(tmp_path / "cube")
    versioncube.append_slices([str(p) for p in files], target_dir=target, virtual=True)
    head = open_cube(target).to_xarray().load()
    for index, path in enumerate(files):
        one = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}).load()
        assert head.time.values[index] == one.valid_time.values
        np.testing.assert_allclose(head.prmsl.values[index, 0], one.prmsl.values, rtol=1e-6)
    assert open_cube(target).materialize().chunks == len(files)
    xr.testing.assert_identical(open_cube(target).to_xarray().load(), head)


# -- the command line -----------------------------------------------------------------------


def test_cli_appends_virtually_and_shows_references(layouts, tmp_path):
    paths = [str(p) for p in layouts["nc3-64bit-records"]]
    target = str(tmp_path / "cube")
    runner = CliRunner()
    result = runner.invoke(cli, ["append", "--virtual", "-t", target, *paths])
    assert result.exit_code == 0, result.output
    log = runner.invoke(cli, ["log", "-t", target]).output
    assert log.count("append (refs)") == STEPS - 1 and "create (refs)" in log
    show = runner.invoke(cli, ["show", "-t", target]).output
    assert f"references {STEPS} files under {Path(paths[0]).parent.as_uri()}/" in show
    result = runner.invoke(cli, ["materialize", "-t", target, "--json"])
    assert result.exit_code == 0, result.output
    assert '"chunks"' in result.output


def test_cli_help_does_not_import_virtualizarr():
    import subprocess

    code = (
        "import sys, versioncube.cli\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(versioncube.cli.cli, ['append', '--help'])\n"
        "print('virtualizarr' in sys.modules, 'obstore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


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


@pytest.mark.slow
def test_s3_sources_and_target_with_keys(layouts, s3_target, tmp_path):
    target, options = s3_target
    uris = upload(layouts["nc4-zlib-shuffle"], options, f"{target}-archive")
    versioncube.append_slices(
        uris, target_dir=target, target_storage_options=options, virtual=True,
        slice_storage_options=options,
    )  # fmt: skip
    prefix = f"{target}-archive/"
    with pytest.raises(VirtualAccessError, match=f"references files under {prefix}"):
        versioncube.open_dataset(target, storage_options=options)
    keys = {key: options[key] for key in ("access_key_id", "secret_access_key")}
    head = versioncube.open_dataset(
        target, storage_options=options, virtual_credentials={prefix: keys}
    ).load()
    xr.testing.assert_equal(head, sources(layouts["nc4-zlib-shuffle"]))
    records = [entry.record for entry in open_cube(target, storage_options=options).log()]
    assert all(record.virtual["etag"] for record in records)
    cube = open_cube(target, storage_options=options, virtual_credentials={prefix: keys})
    assert cube.verify().ok
    assert cube.materialize().chunks >= STEPS
    xr.testing.assert_identical(versioncube.open_dataset(target, storage_options=options), head)


@pytest.mark.slow
def test_s3_sources_with_environment_credentials_need_no_options(
    layouts, s3_target, monkeypatch, tmp_path
):
    target, options = s3_target
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", options["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", options["secret_access_key"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    uris = upload(layouts["nc3-classic"][:2], options, f"{target}-archive")
    slice_options = {"endpoint_url": options["endpoint_url"], "region": "us-east-1"}
    local = str(tmp_path / "cube")
    versioncube.append_slices(
        uris, target_dir=local, virtual=True, slice_storage_options=slice_options
    )
    head = versioncube.open_dataset(local).load()
    xr.testing.assert_equal(head, sources(layouts["nc3-classic"][:2]))
    # a changed object (same key, other content: a new ETag) is refused and reported
    upload([layouts["nc3-classic"][2]], options, f"{target}-tmp")
    import s3fs

    fs = s3fs.S3FileSystem(
        key=options["access_key_id"], secret=options["secret_access_key"],
        client_kwargs={"endpoint_url": options["endpoint_url"], "region_name": "us-east-1"},
    )  # fmt: skip
    fs.copy(f"{target}-tmp/sst_002.nc", uris[1])
    report = open_cube(local).verify()
    assert [p.split(" (")[0] for p in report.problems] == [
        f"source {uris[1]} changed after it was referenced"
    ]
