"""Append a checked slice to the cube's Zarr arrays in place: the fast path for in-memory slices.

xarray's append path (``to_icechunk``/``to_zarr`` with ``append_dim``) opens and decodes the
cube again on every call to find each variable's stored encoding: about 15 ms per append,
whatever the slice's size. The cube's outline, read once and kept between appends, already holds
those encodings. So each variable of the slice is CF-encoded exactly as xarray would encode it
(with xarray's own encoder, see :mod:`versioncube.store.upstream`, and the cube's stored
encoding), its Zarr array is
grown along the append dimension, and the new rows are written into it.

Dask-backed slices keep going through ``to_icechunk``, which writes them chunk by chunk in
parallel within bounded memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import xarray as xr
import zarr.api.asynchronous

from versioncube.layout.encoding import encode_datetimes
from versioncube.layout.outline import CubeOutline
from versioncube.store.upstream import OpenNodes, encode_for_zarr, run_on_zarr_loop


class PendingWrite(Protocol):
    """Another write of the same session, made in the same trip (the slice ledger's)."""

    async def open(self) -> None: ...

    async def write(self) -> None: ...


def can_append_in_place(dataset: xr.Dataset) -> bool:
    """Whether every variable of the slice is held in memory (none is dask-backed)."""
    return not any(hasattr(variable.data, "dask") for variable in dataset.variables.values())


def append_in_place(
    store: Any,
    dataset: xr.Dataset,
    cube: CubeOutline,
    attrs: Mapping[str, Any],
    also: Sequence[PendingWrite] = (),
) -> None:
    """Grow the cube's arrays by the slice's rows and write them; set ``attrs`` if they changed.

    ``dataset`` holds only the variables that run along the append dimension (as
    :func:`versioncube.layout.validation.plan_append` leaves it), already checked against
    ``cube``. All arrays are grown and written concurrently, in one trip to Zarr's event loop,
    with the writes ``also`` makes (the slice ledger's; each opened before any write starts):
    with many small appends, the round trips, not the bytes, are what costs. The arrays
    ``cube`` was read with are used when they were opened in this store (this session).
    """
    dim = cube.append_dim
    rows = {
        str(name): (variable.dims.index(dim), _encoded(str(name), variable, cube))
        for name, variable in dataset.variables.items()
    }
    nodes = cube.nodes if cube.nodes is not None and cube.nodes.store is store else None
    run_on_zarr_loop(_append_rows(store, rows, dict(attrs), nodes, also))


def _encoded(name: str, variable: xr.Variable, cube: CubeOutline) -> np.ndarray:
    """The variable's values as stored: CF-encoded with the cube's stored encoding (datetimes
    by :func:`~versioncube.layout.encoding.encode_datetimes` where it applies)."""
    encoding = cube.variables[name].encoding
    if (offsets := encode_datetimes(np.asarray(variable.data), encoding)) is not None:
        return offsets
    to_encode = xr.Variable(variable.dims, variable.data, variable.attrs)
    to_encode.encoding = dict(encoding)
    return np.asarray(encode_for_zarr(to_encode, name).data)


async def _append_rows(
    store: Any,
    rows: Mapping[str, tuple[int, np.ndarray]],
    attrs: dict[str, Any],
    nodes: OpenNodes | None,
    also: Sequence[PendingWrite],
) -> None:
    # every read of metadata first: Icechunk's store blocks the event loop while Zarr names it
    # (it does for each metadata read) during a write of the same session, for good
    names = list(rows)
    if nodes is not None and all(name in nodes.arrays for name in names):
        group, arrays = nodes.group, [nodes.arrays[name] for name in names]
    else:
        group = await zarr.api.asynchronous.open_group(store, mode="r+", zarr_format=3)
        arrays = await asyncio.gather(*(group.getitem(name) for name in names))
    for pending in also:
        await pending.open()
    appends = [
        array.append(rows[name][1], axis=rows[name][0])
        for name, array in zip(names, arrays, strict=True)
    ]  # type: ignore[union-attr]
    await asyncio.gather(*appends, _set_attrs(group, attrs), *(pending.write() for pending in also))


async def _set_attrs(group: Any, attrs: dict[str, Any]) -> None:
    stored = dict(group.attrs)
    if "coordinates" in stored:  # xarray's record of coordinates no variable names: keep it
        attrs["coordinates"] = stored["coordinates"]
    if attrs != stored:
        group.metadata.attributes.clear()
        await group.update_attributes(attrs)
