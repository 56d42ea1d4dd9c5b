"""The private parts of Zarr and xarray that versioncube relies on, isolated here.

* ``zarr.core.sync.sync`` runs a coroutine on Zarr's own event loop, where Icechunk's store
  lives: the in-place append grows and writes all arrays of a slice concurrently in one trip.
* ``xarray.backends.zarr.encode_zarr_variable`` CF-encodes a variable exactly as
  ``to_zarr`` would, so that rows appended in place are stored as xarray would store them.
* ``xarray.backends.zarr.ZarrStore`` (its ``_fetch_members``) and
  ``xarray.conventions.decode_cf_variables`` decode a cube's variables exactly as
  ``open_dataset`` does, from arrays and values fetched in one trip (``read_decoded_variables``).
* ``xarray.backends.NetCDF4BackendEntrypoint`` is named as the engine of NetCDF and HDF5
  slices: naming a backend class skips xarray's import of every installed backend, which
  guessing or a backend's name costs (:func:`netcdf4_backend`).
* ``xarray.conventions.encode_cf_variable`` encodes times as xarray stores them, so that a
  time encoding's exactness is checked by the same code that writes it
  (:func:`cf_time_round_trip`).

Nothing else in the package imports a private name of another library; tests/store/
test_upstream.py fails loudly when one of these moves or changes its behaviour, naming the
library version to look at.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr


def run_on_zarr_loop[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on Zarr's event loop and return its result (blocking)."""
    from zarr.core.sync import sync

    return sync(coroutine)


def netcdf4_backend() -> Any:
    """xarray's netCDF4 backend class, to pass as ``engine=`` (None when netCDF4 is not
    installed): the backend xarray's guess picks for NetCDF and HDF5 files."""
    import importlib.util

    if importlib.util.find_spec("netCDF4") is None:
        return None
    from xarray.backends import NetCDF4BackendEntrypoint

    return NetCDF4BackendEntrypoint


def encode_for_zarr(variable: xr.Variable, name: str) -> xr.Variable:
    """``variable`` CF-encoded for Zarr format 3 as ``to_zarr`` encodes it (its ``encoding``
    says how: dtype, units, scale_factor, _FillValue, ...)."""
    return _zarr_encoder()(variable, name=name)


@functools.cache
def _zarr_encoder() -> Callable[..., xr.Variable]:
    """xarray's Zarr encoder, called as its Zarr store calls it for a format 3 group."""
    from xarray.backends.zarr import encode_zarr_variable

    if "zarr_format" in inspect.signature(encode_zarr_variable).parameters:
        return functools.partial(encode_zarr_variable, zarr_format=3)
    # xarray < 2026.9 has one Zarr encoding for formats 2 and 3, and to_zarr calls it so
    return encode_zarr_variable


@dataclasses.dataclass(frozen=True)
class OpenNodes:
    """A root group and its arrays as opened from one store (Zarr's async objects): a writer
    in the same session can use them without opening them again."""

    store: Any
    group: Any
    arrays: Mapping[str, Any]

    def in_session_of(self, store: Any) -> bool:
        """Whether they were opened in ``store``'s session. Icechunk's ``Session.store`` makes
        a new store object on each call; two of them compare equal when they are one
        session's."""
        return bool(self.store == store)

    def committed(self) -> CommittedNodes:
        """Their metadata as they stand now, for the sessions that start from the commit
        that stores them (:class:`CommittedNodes`)."""
        group = self.group.metadata
        return CommittedNodes(
            self.group.store_path.path,
            dataclasses.replace(group, attributes=copy.deepcopy(group.attributes)),
            {name: array.metadata for name, array in self.arrays.items()},
        )


@dataclasses.dataclass(frozen=True)
class CommittedNodes:
    """The metadata of a group and some of its arrays as one commit stores them.

    Opening a group and its arrays reads and parses each one's metadata: about 2 ms of an
    append of two fields. A session that starts from that very commit holds exactly this
    metadata, so :meth:`opened_in` makes its Zarr objects without reading anything. Each call
    makes new objects with their own attributes: Zarr changes the objects it writes through
    (a resize replaces an array's metadata, new attributes are set in place), and a write that
    fails must leave what the commit stores as it is.
    """

    path: str  # the group's ("": the root group)
    group: Any  # zarr GroupMetadata
    arrays: Mapping[str, Any]  # zarr ArrayV3Metadata, by array name

    def opened_in(self, store: Any) -> OpenNodes:
        """The group and arrays opened in ``store`` (a session's store on that commit)."""
        from zarr import AsyncArray, AsyncGroup
        from zarr.storage import StorePath

        group = dataclasses.replace(self.group, attributes=copy.deepcopy(self.group.attributes))
        arrays = {
            name: AsyncArray(
                metadata.update_attributes(copy.deepcopy(metadata.attributes)),
                StorePath(store, f"{self.path}/{name}" if self.path else name),
            )
            for name, metadata in self.arrays.items()
        }
        return OpenNodes(store, AsyncGroup(group, StorePath(store, self.path)), arrays)


def read_decoded_variables(
    store: Any, select: Callable[[Mapping[str, ArrayInfo]], Mapping[str, slice]]
) -> (
    tuple[dict[str, xr.Variable], dict[str, Any], set[str], dict[str, ArrayInfo], OpenNodes] | None
):
    """The root group's variables as ``xarray.open_dataset`` decodes them (its defaults), with
    the parts that ``select`` asks for already read, in two trips to Zarr's event loop.

    ``select`` gets every array's :class:`ArrayInfo` and returns, per array name, the part to
    read now along its first axis (``slice(None)`` for all of it); those variables hold just
    that part, the others stay lazy (decoding a datetime variable reads two of its values).
    Returns the variables, the global attributes, the names of the coordinates, every
    array's info and the opened nodes; None when the store holds no group. This is xarray's
    own path (its ``ZarrStore`` and ``decode_cf_variables``) without its one round trip per
    read, which costs more than the bytes for a cube's small metadata.
    """
    import zarr
    from xarray.backends.zarr import ZarrStore
    from xarray.conventions import decode_cf_variables

    prefetched = run_on_zarr_loop(_prefetch(store, select))
    if prefetched is None:
        return None
    group, arrays, parts = prefetched

    class Prefetched(ZarrStore):
        def _fetch_members(self) -> dict[str, Any]:
            return {name: zarr.Array(array) for name, array in arrays.items()}

    zarr_store = Prefetched(zarr.Group(group), mode="r", use_zarr_fill_value_as_mask=False)
    stored, attrs = zarr_store.load()  # type: ignore[no-untyped-call]
    variables = dict(stored)
    for name, values in parts.items():
        variable = variables[name]
        variables[name] = xr.Variable(variable.dims, values, variable.attrs, variable.encoding)
    decoded, attrs, coord_names = decode_cf_variables(variables, attrs)
    infos = {name: _info(array) for name, array in arrays.items()}
    nodes = OpenNodes(store, group, arrays)
    return dict(decoded), dict(attrs), set(map(str, coord_names)), infos, nodes


@dataclasses.dataclass(frozen=True)
class ArrayInfo:
    """What a Zarr array's metadata says, before any of its data is read."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: Mapping[str, Any]


def _info(array: Any) -> ArrayInfo:
    dims = tuple(map(str, array.metadata.dimension_names or ()))
    return ArrayInfo(dims, tuple(array.shape), dict(array.attrs))


async def _prefetch(
    store: Any, select: Callable[[Mapping[str, ArrayInfo]], Mapping[str, slice]]
) -> tuple[Any, dict[str, Any], dict[str, Any]] | None:
    import zarr.api.asynchronous
    import zarr.errors

    try:
        # r+: writers may use them
        mode: Literal["r", "r+"] = "r" if getattr(store, "read_only", True) else "r+"
        group = await zarr.api.asynchronous.open_group(
            store, mode=mode, zarr_format=3, use_consolidated=False
        )
    except (zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError, FileNotFoundError):
        return None
    arrays = {
        name: node async for name, node in group.members() if isinstance(node, zarr.AsyncArray)
    }
    wanted = select({name: _info(array) for name, array in arrays.items()})
    names = list(wanted)
    # a scalar (0-d) array is read whole: it has no first axis to take a part of
    parts = [wanted[name] if arrays[name].ndim else () for name in names]
    values = await asyncio.gather(
        *(arrays[n].getitem(p) for n, p in zip(names, parts, strict=True))
    )
    return group, arrays, dict(zip(names, values, strict=True))


def inlined_chunks(manifest: Any) -> dict[tuple[int, ...], bytes]:
    """The chunks a VirtualiZarr ``ChunkManifest`` holds inline (their encoded bytes, by chunk
    index): tiny variables a parser copied instead of referencing (``manifest._inlined``)."""
    inlined = getattr(manifest, "_inlined", None) or {}
    return {tuple(map(int, index)): bytes(data) for index, data in inlined.items()}


def buffer_prototype() -> Any:
    """Zarr's default buffer prototype, which store ``get``/``set`` calls take."""
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype()


def cf_time_round_trip(
    values: np.ndarray, units: str, calendar: str, dtype: Any
) -> tuple[np.ndarray, str]:
    """``values`` (datetime64 or cftime) encoded with this time encoding as xarray encodes them,
    then decoded again, and the units xarray stored them in. Raises ValueError when xarray
    cannot encode them in this dtype (or would pick other units, with a warning)."""
    from xarray.conventions import encode_cf_variable

    storage = np.dtype(dtype)
    # integers are encoded as int64 first: xarray casts to a smaller one without a range check
    wide = np.dtype("int64") if storage.kind in "iu" else storage
    encoding = {"units": units, "calendar": calendar, "dtype": wide}
    variable = xr.Variable(("label",), values, encoding=encoding)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Times can't be serialized faithfully ...": not exact
        try:
            encoded = encode_cf_variable(variable, name="label")
        except Warning as warning:
            raise ValueError(str(warning)) from None
        if storage != wide:
            limits = np.iinfo(storage)
            if encoded.values.min() < limits.min or encoded.values.max() > limits.max:
                raise OverflowError(f"times beyond the range of {storage}")
            encoded = encoded.astype(storage)
        decoded = xr.decode_cf(xr.Dataset({"label": encoded}))
    return decoded["label"].values, str(encoded.attrs.get("units"))
