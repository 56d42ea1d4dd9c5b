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

import warnings
from collections.abc import Coroutine
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
    from xarray.backends.zarr import encode_zarr_variable

    return encode_zarr_variable(variable, name=name, zarr_format=3)  # type: ignore[no-any-return]


def cf_time_round_trip(
    values: np.ndarray, units: str, calendar: str, dtype: Any
) -> tuple[np.ndarray, str]:
    """``values`` (datetime64 or cftime) encoded with this time encoding as xarray encodes them,
    then decoded again, and the units xarray stored them in. Raises ValueError when xarray
    cannot encode them in this dtype (or would pick other units, with a warning)."""
    from xarray.conventions import encode_cf_variable

    encoding = {"units": units, "calendar": calendar, "dtype": np.dtype(dtype)}
    variable = xr.Variable(("label",), values, encoding=encoding)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Times can't be serialized faithfully ...": not exact
        try:
            encoded = encode_cf_variable(variable, name="label")
        except Warning as warning:
            raise ValueError(str(warning)) from None
        decoded = xr.decode_cf(xr.Dataset({"label": encoded}))
    return decoded["label"].values, str(encoded.attrs.get("units"))
