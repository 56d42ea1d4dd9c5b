"""The private parts of Zarr and xarray that versioncube relies on, isolated here.

* ``zarr.core.sync.sync`` runs a coroutine on Zarr's own event loop, where Icechunk's store
  lives: the in-place append grows and writes all arrays of a slice concurrently in one trip.
* ``xarray.backends.zarr.encode_zarr_variable`` CF-encodes a variable exactly as
  ``to_zarr`` would, so that rows appended in place are stored as xarray would store them.

Nothing else in the package imports a private name of another library; tests/store/
test_upstream.py fails loudly when one of these moves or changes its behaviour, naming the
library version to look at.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import xarray as xr


def run_on_zarr_loop[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on Zarr's event loop and return its result (blocking)."""
    from zarr.core.sync import sync

    return sync(coroutine)


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


def inlined_chunks(manifest: Any) -> dict[tuple[int, ...], bytes]:
    """The chunks a VirtualiZarr ``ChunkManifest`` holds inline (their encoded bytes, by chunk
    index): tiny variables a parser copied instead of referencing (``manifest._inlined``)."""
    inlined = getattr(manifest, "_inlined", None) or {}
    return {tuple(map(int, index)): bytes(data) for index, data in inlined.items()}


def buffer_prototype() -> Any:
    """Zarr's default buffer prototype, which store ``get``/``set`` calls take."""
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype()
