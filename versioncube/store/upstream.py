"""The private parts of Zarr and xarray that versioncube relies on, isolated here.

* ``zarr.core.sync.sync`` runs a coroutine on Zarr's own event loop, where Icechunk's store
  lives: the in-place append grows and writes all arrays of a slice concurrently in one trip.
* ``xarray.backends.zarr.encode_zarr_variable`` CF-encodes a variable exactly as
  ``to_zarr`` would, so that rows appended in place are stored as xarray would store them.
* ``xarray.conventions.encode_cf_variable`` encodes times as xarray stores them, so that a
  time encoding's exactness is checked by the same code that writes it
  (:func:`cf_time_round_trip`).

Nothing else in the package imports a private name of another library; tests/store/
test_upstream.py fails loudly when one of these moves or changes its behaviour, naming the
library version to look at.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
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
