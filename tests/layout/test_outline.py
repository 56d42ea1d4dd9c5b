"""read_outline reads a cube's head (array metadata, the grid, the last label) and decodes it
exactly as xarray's ``open_dataset`` does; a cube whose arrays disagree is refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.layout.outline import CubeOutline, read_outline
from versioncube.testing import tip

#: A configuration with packing, a fill value and compression: its cube stores encoded values.
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


def _cube_with_scalar_coordinates(target, small_slice):
    """Scalar (0-d) coordinates, as GRIB files carry them (``step``, ``surface``)."""
    for day in ("2024-01-01", "2024-01-02"):
        item = small_slice(day).assign_coords(height=2.0, step=np.timedelta64(6, "h"))
        versioncube.append([item], target_dir=target)


KINDS = ["sample", "packed", "curvilinear", "no labels", "hourly", "scalar coordinates"]


@pytest.mark.parametrize("kind", KINDS)
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
    elif kind == "scalar coordinates":
        _cube_with_scalar_coordinates(memory_target, small_slice)
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
