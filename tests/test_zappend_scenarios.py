"""zappend's behaviour scenarios, ported to ``versioncube.append``.

Each test names the zappend scenario it ports (tests/test_api.py and tests/test_processor.py of
bcdev/zappend); the cube is read back and compared with what went in.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import versioncube
from versioncube import open_cube
from versioncube.testing import commits, tip

DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")


def _concat(slices: list[xr.Dataset]) -> xr.Dataset:
    return xr.concat(slices, "time")


def _commit_count(cube) -> int:
    return len(commits(cube)) if cube.exists() else 0


# -- slice lists: memory, files, generators --------------------------------------------------


def _datasets(make, tmp_path):
    return [make(day) for day in DAYS]


def _netcdf_paths(make, tmp_path):
    paths = []
    for day in DAYS:
        make(day).to_netcdf(tmp_path / f"{day}.nc")
        paths.append(str(tmp_path / f"{day}.nc"))
    return paths


def _zarr_paths(make, tmp_path):
    paths = []
    for day in DAYS:
        make(day).to_zarr(tmp_path / f"{day}.zarr", zarr_format=3, consolidated=False)
        paths.append(tmp_path / f"{day}.zarr")
    return paths


def _generator_of_datasets(make, tmp_path):
    return (make(day) for day in DAYS)


def _generator_of_paths(make, tmp_path):
    return iter(_netcdf_paths(make, tmp_path))


@pytest.mark.parametrize(
    "slices_of",
    [_datasets, _netcdf_paths, _zarr_paths, _generator_of_datasets, _generator_of_paths],
    ids=lambda f: f.__name__.strip("_"),
)
def test_slice_lists_from_memory_files_and_generators(
    slices_of, tmp_path, memory_target, small_slice
):
    """zappend: test_some_slices_memory, test_some_slices_local."""
    count = versioncube.append(slices_of(small_slice, tmp_path), target_dir=memory_target)

    assert count == 3
    cube = open_cube(memory_target)
    assert len(commits(cube)) == 3
    xr.testing.assert_identical(cube.to_xarray().load(), _concat([small_slice(d) for d in DAYS]))


def test_no_slices_creates_nothing(memory_target):
    """zappend: test_no_slices."""
    assert versioncube.append([], target_dir=memory_target) == 0
    assert not open_cube(memory_target).exists()


# -- slice sources: class, function, context manager, with ctx and kwargs ---------------------

CLOSED: list[str] = []


class CroppingSource(versioncube.SliceSource):
    """A slice source class: ctx first, the file path, and a keyword argument."""

    def __init__(self, ctx, path, rows=None):
        self.drop = ctx.config.extra["drop"]
        self.path, self.rows = path, rows
        self.dataset = None

    def get_dataset(self):
        self.dataset = xr.open_dataset(self.path)
        return self.dataset.drop_vars(self.drop).isel(lat=slice(0, self.rows))

    def close(self):
        self.dataset.close()
        CLOSED.append(os.path.basename(self.path))


def cropping_function(path, rows=None, *, ctx=None):
    """A slice source function: ctx as a keyword argument."""
    with xr.open_dataset(path) as dataset:
        return dataset.drop_vars(ctx.config.extra["drop"]).isel(lat=slice(0, rows)).load()


@contextlib.contextmanager
def cropping_context(ctx, path, rows=None):
    """A slice source context manager: yields the dataset, cleans up afterwards."""
    dataset = xr.open_dataset(path)
    try:
        yield dataset.drop_vars(ctx.config.extra["drop"]).isel(lat=slice(0, rows))
    finally:
        dataset.close()
        CLOSED.append(os.path.basename(path))


@pytest.mark.parametrize(
    ("source", "closes"),
    [
        (CroppingSource, True),
        (cropping_function, False),
        (cropping_context, True),
        (f"{__name__}.CroppingSource", True),  # a dotted name, as in a configuration file
    ],
    ids=["class", "function", "context-manager", "dotted-name"],
)
def test_slice_sources_with_ctx_and_kwargs(source, closes, tmp_path, memory_target, small_slice):
    """zappend: test_some_slices_with_slice_source_class/_func/_cm and the cropping source."""
    paths = _netcdf_paths(small_slice, tmp_path)
    CLOSED.clear()
    items = [
        paths[0],
        ([paths[1]], {"rows": 4}),
        {"path": paths[2]},
    ]  # one arg, (args, kwargs), kwargs

    count = versioncube.append(
        items,
        target_dir=memory_target,
        slice_source=source,
        slice_source_kwargs={"rows": 4},
        extra={"drop": "pr"},
    )

    assert count == 3
    expected = _concat([small_slice(d).drop_vars("pr").isel(lat=slice(0, 4)) for d in DAYS])
    cube = open_cube(memory_target)
    xr.testing.assert_identical(cube.to_xarray().load(), expected)
    closed = [os.path.basename(path) for path in paths] if closes else []
    assert closed == CLOSED
    identities = sorted(cube.appended_slices())
    assert all(identity.startswith("source:") for identity in identities)
    rerun = versioncube.append(
        items, target_dir=memory_target, slice_source=source, extra={"drop": "pr"}
    )
    assert rerun == 0  # the same source arguments are the same slices: skipped


def test_slice_source_instances_as_items(memory_target, small_slice):
    """zappend accepts SliceSource objects as slice items without a configured source."""

    class Given(versioncube.SliceSource):
        def __init__(self, dataset):
            self.dataset = dataset

        def get_dataset(self):
            return self.dataset

    slices = [Given(small_slice(day)) for day in DAYS[:2]]
    assert versioncube.append(slices, target_dir=memory_target) == 2
    assert versioncube.append([Given(small_slice(DAYS[0]))], target_dir=memory_target) == 0
    xr.testing.assert_identical(
        open_cube(memory_target).to_xarray().load(), _concat([small_slice(d) for d in DAYS[:2]])
    )


def test_failing_slice_source_names_the_slice_and_changes_nothing(memory_target, small_slice):
    versioncube.append([small_slice(DAYS[0])], target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)

    def broken(path):
        raise RuntimeError(f"cannot crop {path}")

    with pytest.raises(versioncube.SliceOpenError, match="slice b.nc: slice source failed: .*crop"):
        versioncube.append(["b.nc"], target_dir=memory_target, slice_source=broken)
    assert tip(cube) == before


# -- chunks with null entries ----------------------------------------------------------------


def _crop(dataset):
    """zappend's cropping source (issue 77): the grid is only known after cropping."""
    return dataset.isel(lat=slice(1, -1), lon=slice(2, -2))


@pytest.mark.parametrize(
    ("variables", "expected_chunks"),
    [
        ({}, {"time": (1024,), "lat": (4,), "lon": (8,)}),
        (
            {
                "*": {"encoding": {"chunks": None}},
                "tas": {"encoding": {"chunks": [1, None, None]}},
                "pr": {"encoding": {"chunks": [None, 2, 4]}},
            },
            {"tas": (1, 4, 8), "pr": (1, 2, 4), "time": (1,), "lat": (4,), "lon": (8,)},
        ),
        (
            {"time": {"encoding": {"chunks": [10]}}, "tas": {"encoding": {"chunks": [2, 2, 8]}}},
            {"time": (10,), "tas": (2, 2, 8)},
        ),
    ],
    ids=["default", "null-entries", "append-coordinate"],
)
def test_chunk_settings_with_null_entries(variables, expected_chunks, memory_target, small_slice):
    """zappend: test_some_slices_with_cropping_slice_source_no/with_chunks_spec."""
    slices = [small_slice(day) for day in DAYS]
    versioncube.append(slices, target_dir=memory_target, slice_source=_crop, variables=variables)

    cube = open_cube(memory_target).to_xarray()
    found = {name: cube[name].encoding["chunks"] for name in expected_chunks}
    assert found == expected_chunks
    xr.testing.assert_identical(cube.load(), _concat([_crop(s) for s in slices]))


def test_netcdf_style_chunksizes(memory_target, small_slice):
    variables = {
        "tas": {"encoding": {"chunksizes": [1, 3, 6]}},
        "pr": {"encoding": {"chunksizes": [1, 3, 6], "chunks": [1, 6, 4]}},
    }
    versioncube.append(
        [small_slice(d) for d in DAYS], target_dir=memory_target, variables=variables
    )

    cube = open_cube(memory_target).to_xarray()
    assert cube.tas.encoding["chunks"] == (1, 3, 6)
    assert cube.pr.encoding["chunks"] == (1, 6, 4)  # chunks wins over chunksizes
    xr.testing.assert_identical(cube.load(), _concat([small_slice(d) for d in DAYS]))


# -- append_step -----------------------------------------------------------------------------

HOURS_6 = [f"2024-01-01T{h:02d}" for h in (0, 6, 12)]


@pytest.mark.parametrize(
    ("step", "labels"),
    [
        ("1D", DAYS),
        ("+", ["2024-01-01", "2024-01-05", "2024-01-06"]),
        (None, ["2024-01-01", "2024-01-05", "2024-01-06"]),
        ("-1D", DAYS[::-1]),
        ("-", ["2024-01-09", "2024-01-05", "2024-01-01"]),
        ("6h", HOURS_6),
        (21600, HOURS_6),  # a number with time labels counts seconds, as in zappend
    ],
)
def test_append_step_accepted(step, labels, memory_target, small_slice):
    """zappend: test_some_slices_with_inc/dec_append_step, _inc/dec_append_labels."""
    slices = [small_slice(label) for label in labels]
    assert versioncube.append(slices, target_dir=memory_target, append_step=step) == 3
    cube = open_cube(memory_target).to_xarray()
    np.testing.assert_array_equal(cube.time.values, pd.DatetimeIndex(labels).values)


@pytest.mark.parametrize(
    ("step", "slices", "committed", "message"),
    [
        ("2D", [["2024-01-01"], ["2024-01-02"]], 1,
         "time label 2024-01-02 follows the cube's last label 2024-01-01 by 1D, but append_step "
         "is '2D'"),
        ("1D", [["2024-01-01"], ["2024-01-03"]], 1,
         "follows the cube's last label 2024-01-01 by 2D"),
        ("+", [["2024-01-03"], ["2024-01-02"]], 1,
         "time label 2024-01-02 is not after the cube's last label 2024-01-03"),
        ("-", [["2024-01-01"], ["2024-01-02"]], 1,
         "time label 2024-01-02 is not before the cube's last label 2024-01-01"),
        ("-1D", [["2024-01-03", "2024-01-01"]], 0,
         "time label 2024-01-01 follows 2024-01-03 by -2D, but append_step is '-1D'"),
        ("-", [["2024-01-01", "2024-01-02"]], 0,
         "time labels are not strictly decreasing: 2024-01-01, 2024-01-02"),
    ],
)  # fmt: skip
def test_append_step_refused(step, slices, committed, message, memory_target, small_slice):
    """zappend: test_it_raises_for_wrong_append_step, test_verify_append_labels_fails."""
    with pytest.raises(versioncube.SliceValidationError) as raised:
        versioncube.append(
            [small_slice(labels) for labels in slices], target_dir=memory_target, append_step=step
        )
    assert message in str(raised.value)
    assert _commit_count(open_cube(memory_target)) == committed


def test_numeric_append_step_with_numeric_labels(memory_target):
    def part(label: float) -> xr.Dataset:
        return xr.Dataset({"v": (("n",), [label * 2])}, coords={"n": [label]})

    slices = [part(0.5), part(1.0), part(1.5)]
    assert (
        versioncube.append(slices, target_dir=memory_target, append_dim="n", append_step=0.5) == 3
    )
    xr.testing.assert_identical(open_cube(memory_target).to_xarray().load(), xr.concat(slices, "n"))
    with pytest.raises(
        versioncube.SliceValidationError,
        match="n label 2.5 follows the cube's last label 1.5 by 1.0, but append_step is '0.5'",
    ):
        versioncube.append([part(2.5)], target_dir=memory_target)
    with pytest.raises(
        versioncube.SliceValidationError,
        match="append_step '1D' is a time step, but the n labels are not times",
    ):
        versioncube.append(
            [part(0.5), part(1.5)], target_dir=f"{memory_target}-days", append_dim="n",
            append_step="1D",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("step", "first_run", "second_run", "message"),
    [
        ("+", ["2024-01-05", "2024-01-06"], ["2024-01-04"], "is not after the cube's last label"),
        ("-", ["2024-01-06", "2024-01-05"], ["2024-01-07"], "is not before the cube's last label"),
        ("1D", ["2024-01-05", "2024-01-06"], ["2024-01-08"], "by 2D, but append_step is '1D'"),
    ],
)
def test_direction_is_checked_against_the_existing_cube(
    step, first_run, second_run, message, memory_target, small_slice
):
    """The stored append_step applies to later runs that give only the target."""
    versioncube.append(
        [small_slice(d) for d in first_run], target_dir=memory_target, append_step=step
    )
    cube = open_cube(memory_target)
    before = tip(cube)

    with pytest.raises(versioncube.SliceValidationError, match=message):
        versioncube.append([small_slice(d) for d in second_run], target_dir=memory_target)
    assert tip(cube) == before
    assert len(commits(cube)) == 2


# -- attributes ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_dynamic_attrs(count, memory_target, small_slice):
    """zappend: test_dynamic_attrs_with_one_slice / _with_some_slices."""
    attrs = {
        "title": "Ocean colour",
        "time_coverage_start": "{{ ds.time[0] }}",
        "time_coverage_end": "{{ ds.time[-1] }}",
        "steps": "{{ ds.sizes['time'] }}",
        "lat_range": "{{ lower_bound(ds.lat, 'center') }} .. {{ upper_bound(ds.lat, 'center') }}",
    }
    slices = [small_slice(day) for day in DAYS[:count]]
    versioncube.append(slices, target_dir=memory_target, permit_eval=True, attrs=attrs)

    cube = open_cube(memory_target).to_xarray()
    assert cube.attrs == {
        "title": "Ocean colour",
        "Conventions": "CF-1.8",
        "time_coverage_start": "2024-01-01T00:00:00",
        "time_coverage_end": f"{DAYS[count - 1]}T00:00:00",
        "steps": count,
        "lat_range": "-90.0 .. 90.0",
    }


def test_expressions_stay_text_without_permit_eval(memory_target, small_slice):
    versioncube.append(
        [small_slice(DAYS[0])], target_dir=memory_target, attrs={"end": "{{ ds.time[-1] }}"}
    )
    assert open_cube(memory_target).to_xarray().attrs["end"] == "{{ ds.time[-1] }}"


def test_a_failing_expression_changes_nothing(memory_target, small_slice):
    config = {
        "target_dir": memory_target,
        "permit_eval": True,
        "attrs": {"end": "{{ ds.tme[-1] }}"},
    }
    with pytest.raises(
        versioncube.ConfigError, match=r"attrs.end: cannot evaluate .*AttributeError"
    ):
        versioncube.append([small_slice(DAYS[0])], config)
    assert not open_cube(memory_target).exists()  # a failed first append creates nothing


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("keep", {"source": "first", "first_only": 1, "configured": "yes"}),
        ("replace", {"source": "second", "second_only": 2, "configured": "yes"}),
        ("update", {"source": "second", "first_only": 1, "second_only": 2, "configured": "yes"}),
        ("ignore", {"configured": "yes"}),
    ],
)
def test_attrs_update_modes(mode, expected, memory_target, small_slice):
    """zappend: test_it_updates_attrs_according_to_update_mode."""
    first, second = small_slice(DAYS[0]), small_slice(DAYS[1])
    first.attrs = {"source": "first", "first_only": 1}
    second.attrs = {"source": "second", "second_only": 2}

    versioncube.append(
        [first, second],
        target_dir=memory_target,
        attrs_update_mode=mode,
        attrs={"configured": "yes"},
    )
    assert open_cube(memory_target).to_xarray().attrs == expected


# -- encodings: packing, "*" defaults, compressors, shards -----------------------------------


def test_packing_to_int16_reads_back_within_the_scale(memory_target, small_slice):
    scale, offset = 0.01, 280.0
    variables = {
        "tas": {
            "encoding": {
                "dtype": "int16",
                "scale_factor": scale,
                "add_offset": offset,
                "fill_value": -32768,
            }
        }
    }
    slices = [small_slice(day) for day in DAYS]
    slices[1]["tas"][0, 0, 0] = np.nan  # missing values survive packing

    versioncube.append(slices, target_dir=memory_target, variables=variables)

    cube = open_cube(memory_target)
    head = cube.to_xarray()
    assert head.tas.encoding["dtype"] == np.dtype("int16")
    assert head.tas.encoding["scale_factor"] == scale
    expected = _concat(slices)
    np.testing.assert_allclose(head.tas.values, expected.tas.values, atol=scale / 2, rtol=0)
    assert np.isnan(head.tas.values[1, 0, 0])
    xr.testing.assert_identical(head.drop_vars("tas").load(), expected.drop_vars("tas"))
    stored = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")["tas"]
    assert stored.dtype == np.dtype("int16")
    assert stored[1, 0, 0] == -32768


def test_per_variable_settings_merge_with_star(memory_target, small_slice):
    variables = {
        "*": {
            "encoding": {"compressor": {"id": "zstd", "level": 7}, "chunks": None},
            "attrs": {"origin": "model"},
        },
        "tas": {"encoding": {"chunks": [1, 3, 12]}, "attrs": {"long_name": "air temperature"}},
    }
    slices = [small_slice(day) for day in DAYS]
    versioncube.append(slices, target_dir=memory_target, variables=variables)

    cube = open_cube(memory_target).to_xarray()
    assert cube.tas.encoding["chunks"] == (1, 3, 12)  # its own
    assert cube.pr.encoding["chunks"] == (1, 6, 12)  # from "*"
    for name in ("tas", "pr"):
        (compressor,) = cube[name].encoding["compressors"]
        assert compressor.to_dict() == {
            "name": "zstd",
            "configuration": {"level": 7, "checksum": False},
        }
    assert cube.tas.attrs == {
        **slices[0].tas.attrs, "origin": "model", "long_name": "air temperature"
    }  # fmt: skip
    expected = _concat(slices)
    for variable in expected.variables.values():
        variable.attrs["origin"] = "model"
    expected.tas.attrs["long_name"] = "air temperature"
    xr.testing.assert_identical(cube.load(), expected)


def _stored_chunk_objects(repository_path) -> int:
    return sum(len(files) for _, _, files in os.walk(repository_path / "chunks"))


def test_sharding_stores_at_least_ten_times_fewer_objects(tmp_path):
    rng = np.random.default_rng(5)
    slices = [
        xr.Dataset(
            {"v": (("time", "y", "x"), rng.random((1, 128, 128), dtype="float32"))},
            coords={"time": [np.datetime64(f"2024-01-{day:02d}", "ns")]},
        )
        for day in range(1, 11)
    ]
    chunks = {"v": {"encoding": {"chunks": [1, 32, 32], "compressor": None}}}
    sharded = {
        "v": {"encoding": {"chunks": [1, 32, 32], "shards": [1, 128, 128], "compressor": None}}
    }

    versioncube.append(slices, target_dir=str(tmp_path / "plain"), variables=chunks)
    versioncube.append(slices, target_dir=str(tmp_path / "sharded"), variables=sharded)

    plain, fewer = (_stored_chunk_objects(tmp_path / name) for name in ("plain", "sharded"))
    assert plain >= 10 * 16  # one object per 32 x 32 chunk
    assert fewer * 10 <= plain
    head = open_cube(tmp_path / "sharded").to_xarray()
    assert head.v.encoding["shards"] == (1, 128, 128)
    xr.testing.assert_identical(head.load(), xr.concat(slices, "time"))
    xr.testing.assert_identical(head.load(), open_cube(tmp_path / "plain").to_xarray().load())


# -- the outline: variables, fixed_dims, missing variables -----------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"included_variables": ["time", "lat", "lon", "tas"]}, {"time", "lat", "lon", "tas"}),
        # unlike zappend, the coordinates that the checks need are kept: label checks stay on
        ({"included_variables": ["tas"]}, {"time", "lat", "lon", "tas"}),
        ({"excluded_variables": ["psl"]}, {"time", "lat", "lon", "tas", "pr"}),
        (
            {
                "included_variables": ["time", "lat", "lon", "tas", "pr"],
                "excluded_variables": ["pr"],
            },
            {"time", "lat", "lon", "tas"},
        ),
    ],
    ids=["included", "included-without-coordinates", "excluded", "both"],
)
def test_included_and_excluded_variables(setting, expected, memory_target, small_slice):
    """zappend: test_it_strips_vars."""
    slices = [small_slice(day, variables=("tas", "pr", "psl")) for day in DAYS]
    versioncube.append(slices, target_dir=memory_target, **setting)

    cube = open_cube(memory_target).to_xarray()
    assert set(cube.variables) == expected
    kept = [item.drop_vars([n for n in item.variables if n not in expected]) for item in slices]
    xr.testing.assert_identical(cube.load(), xr.concat(kept, "time"))


@pytest.mark.parametrize(
    ("encoding", "stored_fill", "memory_value"),
    [
        ({"dtype": "int16", "fill_value": -999}, -999, np.nan),
        ({"dtype": "float32", "fill_value": "NaN"}, np.nan, np.nan),
        ({"dtype": "uint8"}, 0, 0),
    ],
    ids=["int16-fill", "float-nan", "uint8-no-fill"],
)
def test_a_configured_missing_variable_is_created_filled(
    encoding, stored_fill, memory_value, memory_target, small_slice
):
    """zappend: test_it_completes_vars / test_add_missing_variables."""
    variables = {
        "chl": {"dims": ["time", "lat", "lon"], "encoding": encoding, "attrs": {"units": "mg m-3"}}
    }
    versioncube.append(
        [small_slice(day) for day in DAYS], target_dir=memory_target, variables=variables
    )

    cube = open_cube(memory_target)
    head = cube.to_xarray().load()
    assert head.chl.sizes == {"time": 3, "lat": 6, "lon": 12}
    assert head.chl.attrs == {"units": "mg m-3"}
    np.testing.assert_array_equal(head.chl.values, np.full((3, 6, 12), memory_value))
    raw = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")["chl"]
    assert raw.dtype == np.dtype(encoding["dtype"])
    np.testing.assert_array_equal(raw[:], np.full((3, 6, 12), stored_fill, dtype=raw.dtype))
    xr.testing.assert_identical(head.drop_vars("chl"), _concat([small_slice(d) for d in DAYS]))


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (
            {"fixed_dims": {"lat": 7}},
            versioncube.SliceValidationError,
            "dimension 'lat' has size 6, but fixed_dims.lat is 7",
        ),
        (
            {"fixed_dims": {"x": 12}},
            versioncube.SliceValidationError,
            "has no dimension 'x', which fixed_dims sets to 12",
        ),
        (
            {"fixed_dims": {"time": 1}},
            versioncube.ConfigError,
            "fixed_dims names the append dimension 'time'",
        ),
        (
            {"fixed_dims": {"lat": 0}},
            versioncube.ConfigError,
            "'fixed_dims.lat' must be greater than 0",
        ),
    ],
)
def test_wrong_fixed_dims(config, error, message, memory_target, small_slice):
    """zappend: test_it_raises_if_fixed_dim_not_found_in_ds and its neighbours."""
    with pytest.raises(error, match=message):
        versioncube.append([small_slice(DAYS[0])], target_dir=memory_target, **config)
    assert not open_cube(memory_target).exists()
    assert (
        versioncube.append(
            [small_slice(DAYS[0])], target_dir=memory_target, fixed_dims={"lat": 6, "lon": 12}
        )
        == 1
    )


def _with_transposed_tas(s):
    return s.assign(tas=s.tas.transpose("time", "lon", "lat"))


def _next_but_one_day(s):
    return s.assign_coords(time=s.time + np.timedelta64(1, "D"))


@pytest.mark.parametrize(
    ("config", "make_bad", "message"),
    [
        ({"variables": {"tas": {"dims": ["time", "lat", "lon"]}}}, _with_transposed_tas,
         "variable 'tas' has dimensions (time, lon, lat), but variables.tas.dims is "
         "(time, lat, lon)"),
        ({"fixed_dims": {"lat": 6}}, lambda s: s.isel(lat=slice(0, 5)),
         "dimension 'lat' has size 5, but fixed_dims.lat is 6"),
        ({"append_step": "1D"}, _next_but_one_day, "by 2D, but append_step is '1D'"),
        ({"included_variables": ["time", "lat", "lon", "tas"]}, lambda s: s.drop_vars("tas"),
         "has no variable(s) 'tas' named in included_variables"),
        ({}, lambda s: s.assign(psl=s.tas), "has variable(s) 'psl' that the cube does not have"),
        ({}, lambda s: s.drop_vars("pr"), "lacks variable(s) 'pr' that the cube has"),
    ],
    ids=["dims", "fixed-dims", "append-step", "included", "extra-variable", "missing-variable"],
)  # fmt: skip
def test_incompatible_slices_leave_the_cube_unchanged(
    config, make_bad, message, memory_target, small_slice
):
    """zappend: test_raise_on_wrong_var_dimensions, _on_wrong_dimension_size; and no change."""
    versioncube.append([small_slice(day) for day in DAYS[:2]], target_dir=memory_target, **config)
    cube = open_cube(memory_target)
    before = tip(cube)

    with pytest.raises(versioncube.SliceValidationError) as raised:
        versioncube.append([make_bad(small_slice(DAYS[2]))], target_dir=memory_target)  # stored
    assert message in str(raised.value)
    assert tip(cube) == before
    assert len(commits(cube)) == 2


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"chl": {"dims": ["time", "lat", "lon"]}},
         "lacks the configured variable 'chl'; to create it, the configuration needs "
         "variables.chl.dims and variables.chl.encoding.dtype"),
        ({"chl": {"dims": ["time", "y"], "encoding": {"dtype": "int8"}}},
         "has no dimension(s) 'y' to create the configured variable 'chl'"),
        ({"tas": {"encoding": {"chunks": [1, 2]}}},
         "'variables.tas.encoding.chunks' has 2 entries, but the variable has 3 dimensions"),
        ({"tas": {"encoding": {"chunks": [1, 4, 4], "shards": [1, 6, 12]}}},
         "'variables.tas.encoding.shards' must be a multiple of the chunks [1, 4, 4]"),
        ({"tas": {"encoding": {"dtype": "int16", "fill_value": "NaN"}}},
         "is \"NaN\", which the storage dtype int16 cannot store"),
        ({"tas": {"encoding": {"compressor": {"id": "no-such-codec"}}}},
         "'variables.tas.encoding.compressor': invalid codec {'id': 'no-such-codec'}"),
    ],
    ids=["incomplete", "unknown-dim", "chunk-count", "shards", "nan-int", "codec"],
)  # fmt: skip
def test_a_first_slice_that_cannot_start_the_configured_cube_creates_nothing(
    variables, message, memory_target, small_slice
):
    with pytest.raises(versioncube.VersionCubeError) as raised:
        versioncube.append([small_slice(DAYS[0])], target_dir=memory_target, variables=variables)
    assert message in str(raised.value)
    assert not open_cube(memory_target).exists()


# -- slice polling ---------------------------------------------------------------------------


def test_slice_polling_waits_for_a_file_written_later(tmp_path, memory_target, small_slice):
    path = tmp_path / "late.nc"
    small_slice(DAYS[0]).to_netcdf(tmp_path / "late.partial")
    timer = threading.Timer(0.3, os.rename, (tmp_path / "late.partial", path))
    timer.start()
    try:
        count = versioncube.append(
            [path], target_dir=memory_target, slice_polling={"interval": 0.05, "timeout": 20}
        )
    finally:
        timer.join()
    assert count == 1
    xr.testing.assert_identical(open_cube(memory_target).to_xarray().load(), small_slice(DAYS[0]))


def test_slice_polling_times_out_clearly(tmp_path, memory_target, small_slice):
    versioncube.append([small_slice(DAYS[0])], target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)
    with pytest.raises(
        versioncube.SliceOpenError,
        match=r"slice never.nc: still not available after waiting 0.2 s \(slice_polling\): "
        "file not found",
    ):
        versioncube.append(
            [tmp_path / "never.nc"],
            target_dir=memory_target,
            slice_polling={"interval": 0.05, "timeout": 0.2},
        )
    assert tip(cube) == before


def test_included_variables_keep_the_label_checks_on(memory_target, small_slice):
    versioncube.append(
        [small_slice("2024-01-02")], target_dir=memory_target, included_variables=["tas"]
    )
    duplicate = small_slice("2024-01-02") + 1  # the same label, other values
    with pytest.raises(versioncube.SliceValidationError, match="not after the cube's last label"):
        versioncube.append([duplicate], target_dir=memory_target)
    shifted = small_slice("2024-01-03").assign_coords(lat=small_slice("2024-01-03").lat + 1)
    with pytest.raises(versioncube.SliceValidationError, match="coordinate 'lat' differs"):
        versioncube.append([shifted], target_dir=memory_target)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_contradicting_configuration_is_reported_when_every_slice_is_skipped(
    dry_run, memory_target, small_slice
):
    slices = [small_slice("2024-01-01"), small_slice("2024-01-02")]
    versioncube.append(slices, target_dir=memory_target, append_step="1D")
    with pytest.raises(versioncube.ConfigError, match="append_step is '1h', but the cube"):
        versioncube.append(slices, target_dir=memory_target, append_step="1h", dry_run=dry_run)
