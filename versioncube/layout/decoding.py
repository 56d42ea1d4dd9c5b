"""Slices opened without CF decoding (``xr.open_dataset(..., decode_cf=False)``).

Such a slice holds its variables as stored: packed integers with ``scale_factor``,
``add_offset`` and ``_FillValue`` in their attributes, times as numbers with ``units`` such as
``"days since 1858-11-17"``. zappend writes them as they are, which is right for the first
slice and silently wrong for a later one packed or timed differently. versioncube decodes them
first (:func:`decoded_slice`), so that labels are checked as times, the log shows times, and a
later slice is compared with the cube by what its values mean. The cube stores such a variable
as the slice stated (the same packing and CF attributes, the slice's own time units), so it
reads back, raw or decoded, as the slices do.

A raw slice packed differently from the cube is refused (:func:`packing_difference`), naming
the attribute, unless the configuration says how to pack the variable: its integers mean other
values than the cube's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

#: Attributes that CF decoding consumes: a variable that still has one is stored, not decoded.
CF_ENCODING_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "_Unsigned")
#: What must match for a raw slice's integers to mean what the cube's mean.
PACKING_KEYS = ("dtype", "scale_factor", "add_offset")


@dataclasses.dataclass(frozen=True)
class DecodedSlice:
    """A slice with its variables decoded; ``raw`` names those that came encoded."""

    dataset: xr.Dataset
    raw: frozenset[str]


def raw_variables(dataset: xr.Dataset) -> frozenset[str]:
    """The variables that still carry their CF encoding in their attributes."""
    return frozenset(
        str(name)
        for name, variable in dataset.variables.items()
        if any(key in variable.attrs for key in CF_ENCODING_ATTRS) or _numeric_times(variable)
    )


def _numeric_times(variable: xr.Variable) -> bool:
    units = variable.attrs.get("units")
    return variable.dtype.kind in "iuf" and isinstance(units, str) and " since " in units


def decoded_slice(dataset: xr.Dataset) -> DecodedSlice:
    """The slice with its raw variables CF-decoded (lazily for dask-backed data); their
    encodings then say how they were stored."""
    raw = raw_variables(dataset)
    if not raw:
        return DecodedSlice(dataset, raw)
    decoded = xr.decode_cf(dataset, decode_coords=False)
    decoded.encoding = dict(dataset.encoding)
    return DecodedSlice(decoded, raw)


def packing_of(encoding: Mapping[str, Any]) -> dict[str, Any]:
    """A variable's packing as its encoding says: storage dtype, scale_factor and add_offset."""
    packing: dict[str, Any] = {}
    if "dtype" in encoding:
        packing["dtype"] = np.dtype(encoding["dtype"])
    for key in ("scale_factor", "add_offset"):
        if encoding.get(key) is not None:
            packing[key] = float(np.asarray(encoding[key]).item())
    return packing


def packing_difference(
    slice_encoding: Mapping[str, Any], cube_encoding: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    """The first packing key whose value differs (key, the slice's, the cube's), or None."""
    found, expected = packing_of(slice_encoding), packing_of(cube_encoding)
    if "scale_factor" not in found and "add_offset" not in found:
        return None  # not packed: values are stored as they are, in the cube's dtype
    defaults = {"scale_factor": 1.0, "add_offset": 0.0}
    for key in PACKING_KEYS:
        mine, theirs = found.get(key, defaults.get(key)), expected.get(key, defaults.get(key))
        if mine != theirs:
            return key, mine, theirs
    return None


def unpackable_value(values: Any, encoding: Mapping[str, Any]) -> Any | None:
    """The first value that the integer packing in ``encoding`` cannot store, or None.

    Packing a float into an integer dtype out of its range wraps around silently (700 K packed
    into int16 with scale_factor 0.01 reads back as 44.64 K), and a value that packs onto the
    ``_FillValue`` reads back as missing. Dask-backed values are not checked (that would read
    them twice); nor are floats stored as floats.
    """
    storage = np.dtype(encoding.get("dtype", "float64"))
    if storage.kind not in "iu" or hasattr(values, "dask"):
        return None
    flat = np.asarray(values).ravel()
    if flat.dtype.kind != "f":
        return None
    finite = flat[np.isfinite(flat)].astype("float64")
    if not finite.size:
        return None
    packing = packing_of(encoding)
    scale, offset = packing.get("scale_factor", 1.0), packing.get("add_offset", 0.0)
    packed = np.round((finite - offset) / scale)
    limits = np.iinfo(storage)
    bad = (packed < limits.min) | (packed > limits.max)
    fill = encoding.get("_FillValue")
    if fill is not None and not np.isnan(fill):
        bad |= packed == fill
    return finite[np.argmax(bad)] if bad.any() else None


def unpackable_text(name: str, value: Any, encoding: Mapping[str, Any]) -> str:
    """Why ``value`` of variable ``name`` is refused (see :func:`unpackable_value`)."""
    packing = ", ".join(f"{key} {item}" for key, item in packing_of(encoding).items())
    return (
        f"variable {name!r} has the value {value:.6g}, which its packing ({packing}) cannot "
        f"store: it stores {packable_range(encoding)} (variables.{name}.encoding sets how it "
        "is packed)"
    )


def packable_range(encoding: Mapping[str, Any]) -> str:
    """The values an integer packing stores, as text: ``-54.53 .. 600.82``."""
    packing = packing_of(encoding)
    scale, offset = packing.get("scale_factor", 1.0), packing.get("add_offset", 0.0)
    limits = np.iinfo(np.dtype(encoding.get("dtype", "int64")))
    low, high = sorted((limits.min * scale + offset, limits.max * scale + offset))
    return f"{low:.6g} .. {high:.6g}"
