"""Opening a version of the cube as an xarray Dataset: the one function every reader uses.

``open_version`` serves ``Cube.to_xarray``, ``show``, ``diff``, ``verify`` and the append
pipeline alike, so that they all read the same way and report the same errors: an empty
repository is :class:`CubeNotFoundError` ("no data yet"), arrays of different lengths along a
dimension are :class:`InconsistentCubeError` naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import icechunk
import xarray as xr

from versioncube.errors import CubeNotFoundError, InconsistentCubeError, VersionCubeError
from versioncube.store.translate import translated

#: What an empty repository (or branch) is said to be.
NO_DATA = "holds no cube yet: the cube has no data yet (nothing was appended to it)"

#: How versioncube reads a cube: Icechunk keeps no consolidated metadata (it is fast without).
BASE_OPTIONS: Mapping[str, Any] = {"engine": "zarr", "consolidated": False}

#: Groups versioncube keeps for itself inside a version are named with this prefix (such as
#: ``.versioncube``, a slice ledger): they are never part of the cube a reader sees.
INTERNAL_GROUP_PREFIX = "."


def is_internal_group(name: str) -> bool:
    """Whether a group (its name, the last part of its path) is versioncube's own, not data:
    the one filter every reader of a cube's groups applies."""
    return name.rpartition("/")[2].startswith(INTERNAL_GROUP_PREFIX)


def open_version(
    repo: icechunk.Repository,
    snapshot_id: str,
    group: str | None = None,
    *,
    where: str = "the cube",
    **options: Any,
) -> xr.Dataset:
    """The dataset of ``group`` (default: the root) at a snapshot, read-only and lazy.

    ``options`` go to ``xarray.open_dataset`` (``chunks``, ``decode_times``, ...); ``where``
    names the cube in messages.
    """
    with translated(where):
        session = repo.readonly_session(snapshot_id=snapshot_id)
    return open_store(session.store, group, where=where, **options)


def open_store(
    store: Any, group: str | None = None, *, where: str = "the cube", **options: Any
) -> xr.Dataset:
    """The dataset in an Icechunk session's store (see :func:`open_version`)."""
    import zarr.errors

    settings = {**BASE_OPTIONS, **options}
    try:
        with translated(where):
            try:
                dataset = in_stable_order(xr.open_dataset(store, group=group, **settings))
                return by_shards(dataset) if options.get("chunks") == {} else dataset
            except (zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError) as error:
                if group:
                    raise CubeNotFoundError(f"{where} has no group {group!r}") from error
                raise CubeNotFoundError(f"{where} {NO_DATA}") from error
    except ValueError as error:
        if isinstance(error, VersionCubeError):
            raise
        mismatch = length_mismatch(store, group)
        if mismatch is None:
            raise
        raise InconsistentCubeError(
            f"{where} is inconsistent: {mismatch}, so it cannot be read as one dataset (was it "
            "written by another tool?); `versioncube verify` lists what is wrong, and a rollback "
            "to an earlier version restores it"
        ) from error


def by_shards(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset with its sharded variables in dask chunks of one shard each.

    xarray reads a sharded array in chunks of the inner chunks; writing it to another Zarr
    store (``ds.to_zarr(other)``) then fails, since several of its dask chunks would write
    one shard. One shard per chunk also reads each stored object once.
    """
    for variable in dataset.variables.values():
        shards = variable.encoding.get("shards")
        if shards and hasattr(variable.data, "dask"):
            variable.data = variable.chunk(dict(zip(variable.dims, shards, strict=True))).data
    return dataset


def in_stable_order(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset with its variables in one order on every run.

    Icechunk lists a group's arrays in no fixed order, so xarray's order of variables and dims
    changes from process to process. Here: data variables by name, then the coordinates along
    their dimensions (in the order the data variables use them), then the other coordinates by
    name. Indexes and encodings are kept as they were opened.
    """
    data = sorted(map(str, dataset.data_vars))
    dims = [str(dim) for name in data for dim in dataset.variables[name].dims]
    dims += sorted(map(str, dataset.dims))
    dims = list(dict.fromkeys(dims))
    names = [dim for dim in dims if dim in dataset.coords]
    names += sorted(str(name) for name in dataset.coords if name not in names)
    coords = xr.Coordinates(
        {name: dataset.variables[name] for name in names}, indexes=dict(dataset.xindexes)
    )
    ordered = xr.Dataset(
        {name: dataset.variables[name] for name in data}, coords=coords, attrs=dataset.attrs
    )
    ordered.encoding = dataset.encoding
    ordered.set_close(dataset.close)
    return ordered


def has_data(store: Any, group: str | None = None) -> bool:
    """Whether the store holds a group with at least one array (a cube with data)."""
    import zarr
    import zarr.errors

    try:
        node = zarr.open_group(store, path=group or "", mode="r")
    except (zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError, FileNotFoundError):
        return False
    return any(True for _ in node.array_keys())


def length_mismatch(store: Any, group: str | None = None) -> str | None:
    """A description of the dimensions whose arrays disagree in length, or None."""
    import zarr

    try:
        node = zarr.open_group(store, path=group or "", mode="r")
    except Exception:  # not a group at all: nothing to say about lengths
        return None
    sizes: dict[str, dict[int, list[str]]] = {}
    for name, array in node.arrays():
        dims: Any = getattr(array.metadata, "dimension_names", None) or array.attrs.get(
            "_ARRAY_DIMENSIONS"
        )
        if not dims:
            continue
        for dim, size in zip(dims, array.shape, strict=False):
            sizes.setdefault(str(dim), {}).setdefault(int(size), []).append(str(name))
    problems = [
        f"dimension {dim!r} has length "
        + " or ".join(
            f"{size} ({', '.join(sorted(names))})" for size, names in sorted(found.items())
        )
        for dim, found in sizes.items()
        if len(found) > 1
    ]
    return "; ".join(problems) or None
