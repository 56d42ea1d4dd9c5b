"""The cube remembers its target outline; force_new starts it afresh as a new commit."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import commits, tip

import versioncube
from versioncube import open_cube
from versioncube.config.append_step import AppendStep
from versioncube.config.outline import TargetOutline
from versioncube.layout.outline import CubeOutline, read_outline
from versioncube.slices.identity import dataset_fingerprint
from versioncube.versions.record import CommitRecord

OUTLINE = {
    "append_step": "1D",
    "fixed_dims": {"lat": 6, "lon": 12},
    "excluded_variables": ["psl"],
    "variables": {
        "*": {"encoding": {"compressor": {"id": "zstd", "level": 3}}},
        "tas": {
            "encoding": {
                "dtype": "int16",
                "scale_factor": 0.01,
                "add_offset": 280.0,
                "fill_value": -32768,
            }
        },
    },
    "attrs": {"title": "Daily fields", "end": "{{ ds.time[-1] }}"},
    "attrs_update_mode": "update",
    "permit_eval": True,
}


def _three_variables(make, day):
    return make(day, variables=("tas", "pr", "psl"))


def test_the_outline_is_stored_and_later_runs_need_only_the_target(memory_target, small_slice):
    versioncube.append(
        [_three_variables(small_slice, "2024-01-01")], OUTLINE, target_dir=memory_target
    )

    stored = open_cube(memory_target).repository.get_metadata()["versioncube"]
    assert stored == {
        "schema": 1,
        "append_dim": "time",
        "included_variables": [],
        **OUTLINE,
    }

    later = _three_variables(small_slice, "2024-01-02").assign_attrs(note="second")
    assert versioncube.append([later], target_dir=memory_target) == 1
    cube = open_cube(memory_target).to_xarray()
    assert "psl" not in cube.variables  # excluded_variables, remembered
    assert cube.tas.encoding["dtype"] == np.dtype("int16")
    assert cube.attrs["end"] == "2024-01-02T00:00:00"  # evaluated again after the append
    assert cube.attrs["note"] == "second"  # attrs_update_mode "update", remembered
    with pytest.raises(versioncube.SliceValidationError, match="by 2D, but append_step is '1D'"):
        versioncube.append(
            [small_slice("2024-01-04", variables=("tas", "pr"))], target_dir=memory_target
        )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"append_step": "2D"}, "append_step is '2D', but the cube at memory://"),
        ({"append_dim": "step"}, "append_dim is 'step', but the cube at memory://"),
        (
            {"variables": {"tas": {"encoding": {"scale_factor": 0.1}}}},
            "variables.tas.encoding.scale_factor is 0.1, but the cube at memory://",
        ),
        (
            {"variables": {"pr": {"encoding": {"dtype": "float64"}}}},
            "variables.pr is {'encoding': {'dtype': 'float64'}}, but the cube at memory://",
        ),
        ({"fixed_dims": {"lat": 7}}, "fixed_dims.lat is 7, but the cube at"),
        ({"attrs_update_mode": "replace"}, "attrs_update_mode is 'replace'"),
    ],
)
def test_a_contradicting_configuration_is_refused(given, message, memory_target, small_slice):
    versioncube.append(
        [_three_variables(small_slice, "2024-01-01")], OUTLINE, target_dir=memory_target
    )
    cube = open_cube(memory_target)
    before = tip(cube)

    with pytest.raises(versioncube.ConfigError) as raised:
        versioncube.append(
            [_three_variables(small_slice, "2024-01-02")], given, target_dir=memory_target
        )
    assert message in str(raised.value)
    assert "force_new starts it afresh" in str(raised.value)
    assert tip(cube) == before


def test_a_configuration_that_repeats_the_outline_is_accepted(memory_target, small_slice):
    versioncube.append(
        [_three_variables(small_slice, "2024-01-01")], OUTLINE, target_dir=memory_target
    )
    subset = {"append_step": "1D", "variables": {"tas": {"encoding": {"dtype": "int16"}}}}
    assert (
        versioncube.append(
            [_three_variables(small_slice, "2024-01-02")], subset, target_dir=memory_target
        )
        == 1
    )
    assert (
        versioncube.append(
            [_three_variables(small_slice, "2024-01-03")], OUTLINE, target_dir=memory_target
        )
        == 1
    )


def test_force_new_starts_afresh_as_a_new_commit(memory_target, small_slice):
    old = [small_slice(day) for day in ("2024-01-01", "2024-01-02")]
    versioncube.append(old, target_dir=memory_target)
    cube = open_cube(memory_target)
    old_tip = tip(cube)

    new = [small_slice(day, variables=("psl",)) for day in ("2024-02-01", "2024-02-02")]
    assert versioncube.append(new, target_dir=memory_target, force_new=True, append_step="1D") == 2

    cube = open_cube(memory_target)
    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(new, "time"))
    records = [CommitRecord.of_snapshot(s, "time") for s in commits(cube)]
    assert [r.operation for r in records] == ["append", "create", "append", "create"]
    old_session = cube.repository.readonly_session(snapshot_id=old_tip)
    old_head = xr.open_zarr(old_session.store, consolidated=False).load()
    xr.testing.assert_identical(old_head, xr.concat(old, "time"))  # still in the history
    assert cube.repository.get_metadata()["versioncube"]["append_step"] == "1D"
    # the old slices are no longer in the cube, so appending them again is not skipped
    assert set(cube.appended_slices()) == {dataset_fingerprint(item) for item in new}


def test_force_new_appends_slices_that_the_old_cube_held(memory_target, small_slice):
    slices = [small_slice(day) for day in ("2024-01-01", "2024-01-02")]
    versioncube.append(slices, target_dir=memory_target)

    assert versioncube.append(slices, target_dir=memory_target, force_new=True) == 2
    assert len(commits(open_cube(memory_target))) == 4
    xr.testing.assert_identical(
        open_cube(memory_target).to_xarray().load(), xr.concat(slices, "time")
    )
    assert versioncube.append(slices, target_dir=memory_target) == 0


def test_force_new_with_dry_run_writes_nothing(memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target)
    before = tip(open_cube(memory_target))
    summary = versioncube.append_slices(
        [small_slice("2023-01-01"), small_slice("2023-01-02")],
        target_dir=memory_target,
        force_new=True,
        dry_run=True,
    )
    assert [r.record.operation for r in summary.results] == ["create", "append"]
    assert tip(open_cube(memory_target)) == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, AppendStep(1)),
        ("+", AppendStep(1)),
        ("-", AppendStep(-1, text="-")),
        ("1D", AppendStep(1, 1, "D", "1D")),
        ("D", AppendStep(1, 1, "D", "D")),
        ("-6h", AppendStep(-1, -6, "h", "-6h")),
        ("30m", AppendStep(1, 30, "m", "30m")),
        (2.5, AppendStep(1, 2.5, None, "2.5")),
        (-3, AppendStep(-1, -3, None, "-3")),
    ],
)
def test_append_step_parsing(value, expected):
    assert AppendStep.parse(value) == expected


@pytest.mark.parametrize("value", ["", "0D", "1M", "1Y", "1 day", 0, float("nan"), True])
def test_append_step_refusals(value):
    with pytest.raises(ValueError, match="append_step"):
        AppendStep.parse(value)


def test_variable_settings_merge_star_with_their_own():
    outline = TargetOutline(
        variables={
            "*": {"encoding": {"chunks": None, "dtype": "float32"}, "attrs": {"a": 1}},
            "tas": {"encoding": {"chunks": [1, 2, 3]}, "attrs": {"b": 2}},
        }
    )
    assert outline.variable("tas") == {
        "encoding": {"chunks": [1, 2, 3], "dtype": "float32"},
        "attrs": {"a": 1, "b": 2},
    }
    assert outline.variable("pr") == outline.variables["*"]
    assert outline.converts("pr")
    assert not TargetOutline().converts("pr")


def _outline_via_xarray(store, append_dim):
    """The outline as ``open_dataset`` reads it whole: what read_outline must equal."""
    dataset = xr.open_dataset(
        store, engine="zarr", consolidated=False, chunks=None, create_default_indexes=False
    )
    return CubeOutline.of_dataset(dataset, append_dim)


def _same_value(a, b) -> bool:
    floats = (float, np.floating)
    if isinstance(a, floats) and isinstance(b, floats) and np.isnan(a) and np.isnan(b):
        return type(a) is type(b)
    return bool(np.all(a == b)) and type(a) is type(b)


def _assert_same_outline(found, expected):
    assert (found.append_dim, found.size) == (expected.append_dim, expected.size)
    assert set(found.variables) == set(expected.variables)
    for name, variable in expected.variables.items():
        other = found.variables[name]
        assert (other.dims, other.sizes, other.dtype, other.time_units) == (
            variable.dims,
            variable.sizes,
            variable.dtype,
            variable.time_units,
        ), name
        assert set(other.encoding) == set(variable.encoding), name
        for key, value in variable.encoding.items():
            assert _same_value(other.encoding[key], value), (name, key)
    assert set(found.grid) == set(expected.grid)
    for name, variable in expected.grid.items():
        xr.testing.assert_identical(found.grid[name], variable)
    assert found.last_label == expected.last_label
    assert type(found.last_label) is type(expected.last_label)
    assert dict(found.attrs) == dict(expected.attrs)


def _cube_with_2d_grid(target):
    y, x = np.arange(3), np.arange(4)
    for day in range(3):
        item = xr.Dataset(
            {"v": (("time", "y", "x"), np.full((1, 3, 4), float(day)))},
            coords={
                "time": [np.datetime64("2024-01-01") + np.timedelta64(day, "D")],
                "lat": (("y", "x"), np.add.outer(y, x) * 1.5),
                "lon": (("y", "x"), np.subtract.outer(x.sum() + y, x) * 0.5),
                "y": y,
                "x": x,
            },
            attrs={"title": "curvilinear"},
        )
        versioncube.append([item], target_dir=target)


def _packed_cube(target, small_slice):
    items = [_three_variables(small_slice, f"2024-01-0{day}") for day in (1, 2, 3)]
    versioncube.append(items, OUTLINE, target_dir=target)


def _cube_without_labels(target):
    for part in range(3):
        item = xr.Dataset({"v": (("n", "x"), np.full((2, 3), part, dtype="int32"))})
        versioncube.append([item], target_dir=target, append_dim="n")


@pytest.mark.parametrize("kind", ["sample", "packed", "curvilinear", "no labels", "hourly"])
def test_read_outline_equals_what_xarray_reads(memory_target, small_slice, kind):
    dim = "n" if kind == "no labels" else "time"
    if kind == "sample":
        versioncube.append([small_slice(day) for day in ("2024-01-01", "2024-01-02")],
                           target_dir=memory_target)  # fmt: skip
    elif kind == "packed":
        _packed_cube(memory_target, small_slice)
    elif kind == "curvilinear":
        _cube_with_2d_grid(memory_target)
    elif kind == "no labels":
        _cube_without_labels(memory_target)
    else:
        hours = [small_slice(np.datetime64("2024-01-01T00") + np.timedelta64(h, "h"))
                 for h in range(3)]  # fmt: skip
        versioncube.append(hours, target_dir=memory_target)
    store = open_cube(memory_target).repository.readonly_session("main").store

    _assert_same_outline(read_outline(store, dim), _outline_via_xarray(store, dim))


def test_read_outline_of_real_reanalysis_files(eofs_steps, tmp_path):
    import warnings

    target = str(tmp_path / "cube")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Ambiguous reference date string")
        versioncube.append(eofs_steps["sst_ndjfm_anom"][:3], target_dir=target)
    store = open_cube(target).repository.readonly_session("main").store

    _assert_same_outline(read_outline(store, "time"), _outline_via_xarray(store, "time"))


def test_an_inconsistent_cube_is_refused_before_anything_is_written(memory_target, small_slice):
    import zarr

    versioncube.append([small_slice("2024-01-01"), small_slice("2024-01-02")],
                       target_dir=memory_target)  # fmt: skip
    cube = open_cube(memory_target)
    session = cube.repository.writable_session("main")
    tas = zarr.open_array(session.store, path="tas", mode="r+")
    tas.resize((3, *tas.shape[1:]))
    session.commit("another tool grew tas alone")
    before = tip(cube)

    with pytest.raises(versioncube.InconsistentCubeError, match=r"'time' has length 2 .* or 3"):
        cube.append(small_slice("2024-01-03"))
    assert tip(cube) == before
