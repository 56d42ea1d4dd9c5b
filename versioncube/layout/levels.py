"""Multi-level pyramids: the downsampled levels of a slice, as xcube computes them.

A cube with ``levels`` keeps level 0 (the slice as it is) and each downsampled level as the
groups ``0``, ``1``, ... of the same repository; every append writes all of them in one commit.
Level ``k`` is level 0 subsampled by ``2**k`` in the two spatial dimensions, variable by
variable with its aggregation method, exactly as xcube's ``subsample_dataset`` does (MIT
licensed; this is an equivalent of it, so xcube is not needed):

* ``first``: every ``step``-th pixel (``var[..., ::step, ::step]``);
* ``mean``, ``median``, ``min``, ``max``: the method over ``step x step`` blocks
  (``coarsen(boundary="pad", coord_func="min")``; a partial block at the edge counts its
  pixels only); ``mode``: the most frequent value of each block (the smallest on a tie, NaN
  ignored), as ``scipy.stats.mode``;
* the result keeps the variable's dtype (an integer block mean is truncated);
* ``auto`` (the default): ``first`` for integer variables, ``mean`` for the others;
* the spatial coordinates of every level are those of ``coarsen``, the minimum of each block
  (not the block's centre), and the level's dataset holds the data variables with their
  coordinates, as xcube's does.

Everything stays lazy for dask-backed slices: nothing is computed until the levels are written.
The pyramid's description is kept in the root group's attributes as ``xcube_levels``, with the
keys of xcube's ``.zlevels`` file (``version``, ``num_levels``, ``tile_size``, ``agg_methods``,
``use_saved_levels``) plus ``xy_dim_names``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import xarray as xr

from versioncube.config.model import AggMethod
from versioncube.errors import ConfigError
from versioncube.store.groups import LEVELS_ATTR

AGG_METHODS: tuple[AggMethod, ...] = typing.get_args(AggMethod)
#: The tile size of ``levels: auto`` when none is configured (xcube's map tiles).
DEFAULT_TILE_SIZE = 256
#: Spatial dimension pairs (x, y) recognised when ``xy_dims`` is not configured.
KNOWN_XY_DIMS = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"))


@dataclasses.dataclass(frozen=True)
class LevelsSetting:
    """The ``levels`` setting: how many levels (None: ``auto``), from which tile size, with
    which aggregation methods (a method for all variables, or name patterns -> method)."""

    num_levels: int | None
    tile_size: tuple[int, int] = (DEFAULT_TILE_SIZE, DEFAULT_TILE_SIZE)
    agg_methods: AggMethod | Mapping[str, AggMethod] = "auto"
    xy_dims: tuple[str, str] | None = None

    @classmethod
    def parse(cls, value: Any) -> LevelsSetting | None:
        """The setting from its configured form: a number, ``"auto"``, a mapping, or None."""
        if value is None:
            return None
        if isinstance(value, int) or value == "auto":
            value = {"num_levels": value}
        num_levels = value.get("num_levels", "auto")
        tile = value.get("tile_size", DEFAULT_TILE_SIZE)
        sizes = [tile, tile] if isinstance(tile, int) else list(tile)
        if len(sizes) != 2 or min(sizes) < 1:
            raise ConfigError(f"levels.tile_size must be [width, height], found {tile!r}")
        tile_size = (int(sizes[0]), int(sizes[1]))
        xy = value.get("xy_dims")
        if xy is not None and len(xy) != 2:
            raise ConfigError(f"levels.xy_dims must name two dimensions [x, y], found {xy!r}")
        return cls(
            num_levels=None if num_levels == "auto" else int(num_levels),
            tile_size=tile_size,
            agg_methods=value.get("agg_methods") or "auto",
            xy_dims=(str(xy[0]), str(xy[1])) if xy is not None else None,
        )

    def settled(self, level0: xr.Dataset, slice_name: str = "the slice") -> LevelsSpec:
        """The pyramid for a cube whose first slice is ``level0``: its spatial dimensions, the
        number of levels (``auto``: halve until the coarsest level fits one tile, as xcube's
        ``get_num_levels``) and every spatial variable's aggregation method."""
        xy = self.xy_dims or spatial_dims(level0, slice_name)
        for dim in xy:
            if dim not in level0.dims:
                raise ConfigError(
                    f"levels.xy_dims names {dim!r}, which {slice_name} has no dimension of "
                    f"(its dimensions: {', '.join(map(str, level0.dims))})"
                )
        num_levels = self.num_levels
        if num_levels is None:
            size = (level0.sizes[xy[0]], level0.sizes[xy[1]])
            num_levels = count_levels(size, self.tile_size)
        return LevelsSpec(
            num_levels=num_levels,
            tile_size=self.tile_size,
            agg_methods=variable_agg_methods(level0, xy, self.agg_methods),
            xy_dims=xy,
        )


@dataclasses.dataclass(frozen=True)
class LevelsSpec:
    """A settled pyramid: what the cube's root attributes say (``xcube_levels``)."""

    num_levels: int
    tile_size: tuple[int, int]
    agg_methods: Mapping[str, AggMethod]  # every spatial data variable -> its method
    xy_dims: tuple[str, str]

    @property
    def groups(self) -> list[str]:
        """The level groups, finest first: ``["0", "1", ...]``."""
        return [str(level) for level in range(self.num_levels)]

    def to_attrs(self) -> dict[str, Any]:
        """The root attributes of a pyramid: xcube's ``.zlevels`` keys, and the x/y dims."""
        return {
            LEVELS_ATTR: {
                "version": "1.0",
                "num_levels": self.num_levels,
                "tile_size": list(self.tile_size),
                "use_saved_levels": False,
                "agg_methods": dict(self.agg_methods),
                "xy_dim_names": list(self.xy_dims),
            }
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> LevelsSpec | None:
        """The pyramid described by a root group's attributes, or None (not a pyramid)."""
        spec = attrs.get(LEVELS_ATTR)
        if not isinstance(spec, Mapping):
            return None
        tile = spec.get("tile_size") or (DEFAULT_TILE_SIZE, DEFAULT_TILE_SIZE)
        xy = spec.get("xy_dim_names") or ("x", "y")
        return cls(
            num_levels=int(spec["num_levels"]),
            tile_size=(int(tile[0]), int(tile[1])),
            agg_methods={str(k): cast(AggMethod, v) for k, v in spec["agg_methods"].items()},
            xy_dims=(str(xy[0]), str(xy[1])),
        )

    def levels(self, level0: xr.Dataset) -> list[xr.Dataset]:
        """Level 0 and each downsampled level (lazy for dask-backed data)."""
        return [level0] + [self.level(level0, level) for level in range(1, self.num_levels)]

    def level(self, level0: xr.Dataset, level: int) -> xr.Dataset:
        """Level ``level`` of ``level0``, with level 0's encodings fitted to its size."""
        if level == 0:
            return level0
        downsampled = subsample(level0, 2**level, self.xy_dims, self.agg_methods)
        return with_level_encoding(downsampled, level0, self)


def count_levels(size: tuple[int, int], tile_size: tuple[int, int]) -> int:
    """How many levels until the coarsest fits one tile (xcube's ``get_num_levels``)."""
    (width, height), (tile_width, tile_height) = size, tile_size
    count = 1
    while width > tile_width and height > tile_height:
        width, height = (width + 1) // 2, (height + 1) // 2
        count += 1
    return count


def spatial_dims(dataset: xr.Dataset, slice_name: str = "the slice") -> tuple[str, str]:
    """The (x, y) dimensions of a dataset: the first known pair it has."""
    for x, y in KNOWN_XY_DIMS:
        if x in dataset.dims and y in dataset.dims:
            return x, y
    raise ConfigError(
        f"levels: {slice_name} has none of the spatial dimension pairs "
        f"{', '.join('/'.join(pair) for pair in KNOWN_XY_DIMS)} (its dimensions: "
        f"{', '.join(map(str, dataset.dims))}); name them in levels.xy_dims as [x, y]"
    )


def variable_agg_methods(
    dataset: xr.Dataset,
    xy_dims: tuple[str, str],
    configured: AggMethod | Mapping[str, AggMethod],
) -> dict[str, AggMethod]:
    """Each spatial data variable's method: the first matching name or pattern in
    ``configured`` (or ``configured`` itself when it is one method); ``auto`` and unmatched
    variables take ``first`` (integers) or ``mean`` (others), as xcube's ``find_agg_method``."""
    methods: dict[str, AggMethod] = {}
    for name, variable in dataset.data_vars.items():
        if not set(xy_dims) & set(map(str, variable.dims)):
            continue
        method: AggMethod = "auto"
        if isinstance(configured, str):
            method = configured
        else:
            for pattern, chosen in configured.items():
                if str(name) == pattern or fnmatch.fnmatch(str(name), pattern):
                    method = chosen or "auto"
                    break
        if method not in AGG_METHODS:
            raise ConfigError(
                f"levels.agg_methods: {method!r} for {name!r} is not one of "
                f"{', '.join(AGG_METHODS)}"
            )
        if method == "auto":
            method = "first" if np.issubdtype(variable.dtype, np.integer) else "mean"
        methods[str(name)] = method
    return methods


def subsample(
    dataset: xr.Dataset, step: int, xy_dims: tuple[str, str], methods: Mapping[str, AggMethod]
) -> xr.Dataset:
    """``dataset`` subsampled by ``step`` in x and y, as xcube's ``subsample_dataset``."""
    variables: dict[str, xr.DataArray] = {}
    coarse_coords: dict[str, xr.DataArray] = {}
    for name, variable in dataset.data_vars.items():
        method = methods.get(str(name))
        if method is None:  # no spatial dimension: the same at every level
            variables[str(name)] = variable
            continue
        if method == "first":
            strides = {dim: slice(None, None, step) for dim in xy_dims if dim in variable.dims}
            variables[str(name)] = variable.isel(strides)
            continue
        windows = {dim: step for dim in xy_dims if dim in variable.dims}
        blocks = variable.coarsen(windows, boundary="pad", coord_func="min")
        reduced = blocks.reduce(_mode) if method == "mode" else getattr(blocks, method)()
        if reduced.dtype != variable.dtype:
            reduced = reduced.astype(variable.dtype)
        reduced.attrs.update(variable.attrs)
        variables[str(name)] = reduced
        coarse_coords.update({str(key): coord for key, coord in reduced.coords.items()})
    if coarse_coords:  # the "first" variables take the coarsened coordinates too, as in xcube
        variables = {
            name: variable.assign_coords(
                {dim: coarse_coords[str(dim)] for dim in variable.dims if dim in coarse_coords}
            )
            for name, variable in variables.items()
        }
    return xr.Dataset(variables, attrs=dataset.attrs)


def _mode(values: Any, axis: tuple[int, ...], **kwargs: Any) -> Any:
    """The most frequent value over the block axes (lazily for dask arrays)."""
    if hasattr(values, "dask"):
        return values.map_blocks(
            _numpy_mode, axis=axis, dtype=values.dtype, drop_axis=list(axis), **kwargs
        )
    return _numpy_mode(values, axis)


def _numpy_mode(values: np.ndarray, axis: tuple[int, ...], **kwargs: Any) -> np.ndarray:
    from scipy import stats

    return np.asarray(stats.mode(values, axis, nan_policy="omit", **kwargs).mode)


#: Encoding keys that describe the stored chunking (fitted to each level's size).
CHUNK_KEYS = ("chunks", "shards", "preferred_chunks")


def with_level_encoding(level: xr.Dataset, level0: xr.Dataset, spec: LevelsSpec) -> xr.Dataset:
    """A downsampled level whose variables take level 0's encodings (fill values, packing,
    codecs, time units), without level 0's chunking (see :func:`fit_chunks`)."""
    level = level.copy(deep=False)
    for name, variable in level.variables.items():
        source = level0.variables.get(name)
        encoding = dict(source.encoding) if source is not None else {}
        variable.encoding = {key: value for key, value in encoding.items() if key not in CHUNK_KEYS}
    return level


def fit_chunks(level: xr.Dataset, spec: LevelsSpec, append_dim: str) -> xr.Dataset:
    """The level with chunks that fit it: spatial dimensions in tiles of ``tile_size`` unless
    configured otherwise; chunks and shards no bigger than the level (rounded up to whole
    chunks for shards). Level 0 keeps configured chunks along the other dimensions; without
    any, a variable's chunks along the append dimension are the slice's length."""
    level = level.copy(deep=False)
    tiles = dict(zip(spec.xy_dims, spec.tile_size, strict=True))
    for variable in level.variables.values():
        if not set(spec.xy_dims) & set(map(str, variable.dims)):
            continue
        encoding = dict(variable.encoding)
        chunks: Sequence[int] | None = encoding.get("chunks")
        if chunks is None:
            chunks = [tiles.get(str(dim), size) for dim, size in variable.sizes.items()]
        fitted = [min(chunk, size) for chunk, size in zip(chunks, variable.shape, strict=True)]
        encoding["chunks"] = tuple(fitted)
        shards = encoding.get("shards")
        if shards is not None:
            encoding["shards"] = tuple(
                min(shard, math.ceil(size / chunk) * chunk)
                for shard, chunk, size in zip(shards, fitted, variable.shape, strict=True)
            )
        encoding.pop("preferred_chunks", None)
        variable.encoding = encoding
    return level
