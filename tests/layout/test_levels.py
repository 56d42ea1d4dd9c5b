"""Downsampling a slice into the levels of a pyramid, as xcube's subsample_dataset does."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.stats
import xarray as xr

from versioncube.errors import ConfigError
from versioncube.layout.levels import (
    LevelsSetting,
    LevelsSpec,
    count_levels,
    fit_chunks,
    subsample,
)


def grid(shape: tuple[int, int] = (13, 22), times: int = 2) -> xr.Dataset:
    """A float field with gaps (NaN), integer classes, a variable without the spatial dims,
    descending latitudes; 13 x 22 pixels, so blocks of 4 and 8 are partial at the edges."""
    rng = np.random.default_rng(7)
    field = rng.random((times, *shape)).astype("float32")
    field[:, 0, :3] = np.nan
    classes = rng.integers(0, 3, (times, *shape)).astype("int16")
    return xr.Dataset(
        {
            "field": (("time", "lat", "lon"), field, {"units": "1"}),
            "classes": (("time", "lat", "lon"), classes),
            "total": ("time", np.arange(times, dtype="float64")),
        },
        coords={
            "time": np.arange(times),
            "lat": np.linspace(60, -60, shape[0]),
            "lon": np.linspace(0, 21, shape[1]),
        },
        attrs={"title": "grid"},
    )


def blocks(values: np.ndarray, step: int) -> np.ndarray:
    """The step x step blocks of (time, lat, lon) values, padded with NaN: (t, y, x, step**2)."""
    times, rows, cols = values.shape
    pad_rows, pad_cols = -rows % step, -cols % step
    padded = np.pad(
        values.astype(float), ((0, 0), (0, pad_rows), (0, pad_cols)), constant_values=np.nan
    )
    y, x = padded.shape[1] // step, padded.shape[2] // step
    return padded.reshape(times, y, step, x, step).transpose(0, 1, 3, 2, 4).reshape(times, y, x, -1)


@pytest.mark.parametrize("step", [2, 4, 8])
@pytest.mark.parametrize("method", ["mean", "median", "min", "max", "mode"])
def test_block_methods_equal_the_reduction_of_each_block(method, step):
    dataset = grid()
    level = subsample(dataset, step, ("lon", "lat"), {"field": method, "classes": method})

    reduce = {
        "mean": np.nanmean,
        "median": np.nanmedian,
        "min": np.nanmin,
        "max": np.nanmax,
        "mode": lambda v, axis: scipy.stats.mode(v, axis=axis, nan_policy="omit").mode,
    }[method]
    for name in ("field", "classes"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an all-NaN block is NaN, as in xcube
            expected = reduce(blocks(dataset[name].values, step), axis=-1)
        expected = expected.astype(dataset[name].dtype)  # an integer block mean is truncated
        if method == "mean" and name == "field":  # float32 sums in another order than numpy's
            np.testing.assert_allclose(level[name].values, expected, rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(level[name].values, expected, err_msg=name)
        assert level[name].dtype == dataset[name].dtype
    lat_blocks = blocks(np.broadcast_to(dataset.lat.values[None, :, None], (1, 13, 22)), step)
    np.testing.assert_array_equal(level.lat.values, np.nanmin(lat_blocks, axis=-1)[0, :, 0])
    xr.testing.assert_identical(level.total, dataset.total)  # no spatial dims: as it is
    assert level.attrs == dataset.attrs and level.field.attrs == {"units": "1"}


def test_first_takes_every_step_th_pixel_and_the_block_coordinates():
    dataset = grid()
    level = subsample(dataset, 4, ("lon", "lat"), {"field": "mean", "classes": "first"})

    np.testing.assert_array_equal(level.classes.values, dataset.classes.values[:, ::4, ::4])
    # as in xcube: the coordinates are the blocks' minimum, so with descending latitudes the
    # first pixel (the northern one) is labelled with the southern end of its block
    assert level.lat.values[0] == dataset.lat.values[3]
    only_first = subsample(dataset, 4, ("lon", "lat"), {"field": "first", "classes": "first"})
    np.testing.assert_array_equal(only_first.lat.values, dataset.lat.values[::4])


@pytest.mark.parametrize("method", ["mean", "median", "min", "max", "mode", "first"])
def test_downsampling_stays_lazy_and_equals_the_eager_result(method):
    eager = grid((21, 34), times=3)
    lazy = eager.chunk({"time": 1, "lat": 8, "lon": 8})
    methods = {"field": method, "classes": method}

    downsampled = subsample(lazy, 4, ("lon", "lat"), methods)

    assert all(isinstance(variable.data, da.Array) for variable in downsampled.data_vars.values())
    eagerly = subsample(eager, 4, ("lon", "lat"), methods)
    if method == "mean":  # block sums in another order: equal to float32 rounding
        xr.testing.assert_allclose(downsampled.compute(), eagerly, rtol=1e-6)
    else:
        xr.testing.assert_identical(downsampled.compute(), eagerly)


def test_auto_methods_are_first_for_integers_and_mean_otherwise():
    spec = LevelsSetting.parse({"num_levels": 3, "agg_methods": {"cl*": "max"}}).settled(grid())
    assert spec.agg_methods == {"field": "mean", "classes": "max"}
    assert LevelsSetting.parse(2).settled(grid()).agg_methods == {
        "field": "mean",
        "classes": "first",
    }


def test_auto_counts_levels_as_xcube_does():
    assert count_levels((22, 13), (16, 16)) == 1  # 13 rows already fit one tile
    assert count_levels((1024, 512), (256, 256)) == 2  # 512 -> 256 fits
    assert count_levels((70, 45), (16, 16)) == 3  # 35 x 23, then 18 x 12
    spec = LevelsSetting.parse({"tile_size": [8, 4]}).settled(grid())  # auto
    assert spec.num_levels == 3 and spec.xy_dims == ("lon", "lat")


def test_the_description_round_trips_through_the_root_attributes():
    spec = LevelsSetting.parse({"num_levels": 3, "tile_size": 64}).settled(grid())
    assert LevelsSpec.from_attrs(spec.to_attrs()) == spec
    assert LevelsSpec.from_attrs({"title": "a flat cube"}) is None


def test_levels_are_chunked_in_tiles_no_bigger_than_themselves():
    spec = LevelsSetting.parse({"num_levels": 3, "tile_size": 8}).settled(grid())
    level = fit_chunks(spec.level(grid(), 1), spec, "time")
    assert level.field.encoding["chunks"] == (2, 7, 8)  # 7 x 11 pixels, tiles of 8
    configured = grid()
    configured.field.encoding = {"chunks": (1, 64, 64), "shards": (1, 128, 128)}
    fitted = fit_chunks(configured, spec, "time")
    assert fitted.field.encoding["chunks"] == (1, 13, 22)
    assert fitted.field.encoding["shards"] == (1, 13, 22)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"xy_dims": ["x", "y"]}, "levels.xy_dims names 'x', which the slice has no dimension"),
        ({"agg_methods": {"field": "average"}}, "'average' for 'field' is not one of"),
        ({"tile_size": [4]}, r"levels.tile_size must be \[width, height\]"),
    ],
)
def test_bad_settings_are_refused_by_name(setting, message):
    with pytest.raises(ConfigError, match=message):
        LevelsSetting.parse(setting).settled(grid(), "the slice")


def test_a_slice_without_known_spatial_dims_needs_xy_dims():
    odd = grid().rename(lat="row", lon="column")
    with pytest.raises(ConfigError, match="name them in levels.xy_dims"):
        LevelsSetting.parse(2).settled(odd)
    assert LevelsSetting.parse({"xy_dims": ["column", "row"]}).settled(odd).num_levels == 1
