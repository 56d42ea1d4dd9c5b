"""How a new cube stores its variables, chosen from its first slice.

Encodings come from the first slice, xarray's way (``variable.encoding``), with three changes:

* Time labels. xarray picks a time encoding from the first slice it writes ("days since ..."
  for a daily slice) and, when a later slice is finer, silently rewrites those labels with
  other units, so hourly labels read back days or years off. A cube stores every datetime
  variable as int64 "<unit> since <first day>" with a unit no coarser than seconds, and each
  append checks that its labels are exact in the cube's units before anything is written.
* Fill values. A ``_FillValue`` that contradicts ``missing_value`` is settled on the latter.
* The append coordinate is stored in chunks of :data:`APPEND_COORD_CHUNK` labels.
* Variables without a compressor of their own (from a Zarr slice or the configuration) get
  Blosc lz4 with byte shuffling, zarr 2's and so zappend's default, instead of Zarr v3's zstd:
  about twice as fast to write, and as small or smaller on float32 fields (see
  docs/performance.md for the measurements, real data included).

The configured encoding (zappend's ``variables.NAME.encoding``, merged with ``"*"``) then
overrides these: dtype, chunks (or NetCDF's chunksizes) with null entries meaning a whole
dimension, Zarr v3 shards, fill_value, scale_factor/add_offset packing, units and calendar of
datetimes, and compressors and filters (see :mod:`versioncube.codecs`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from versioncube.display.format import format_label
from versioncube.errors import ConfigError, SliceValidationError
from versioncube.layout.codecs import codec_encoding, default_compressor, slice_codec_encoding
from versioncube.layout.decoding import unpackable_text, unpackable_value
from versioncube.store.upstream import cf_time_round_trip

if TYPE_CHECKING:
    from versioncube.config.outline import TargetOutline

logger = logging.getLogger(__name__)

#: Labels of the append coordinate per stored chunk: reading the coordinate of a long cube
#: then takes a few chunks, not one per append.
APPEND_COORD_CHUNK = 1024

NAT_FILL_VALUE = np.iinfo(np.int64).min

_UNIT_NANOSECONDS = {
    "days": 86_400 * 10**9,
    "hours": 3_600 * 10**9,
    "minutes": 60 * 10**9,
    "seconds": 10**9,
    "milliseconds": 10**6,
    "microseconds": 10**3,
    "nanoseconds": 1,
}
_UNIT_ALIASES = {
    "day": "days", "d": "days", "hour": "hours", "hr": "hours", "h": "hours",
    "minute": "minutes", "min": "minutes", "second": "seconds", "sec": "seconds", "s": "seconds",
    "millisecond": "milliseconds", "ms": "milliseconds", "microsecond": "microseconds",
    "us": "microseconds", "nanosecond": "nanoseconds", "ns": "nanoseconds",
}  # fmt: skip


def creation_encoding(
    dataset: xr.Dataset,
    append_dim: str,
    outline: TargetOutline | None = None,
    *,
    raw: Collection[str] = (),
    slice_name: str = "the first slice",
) -> dict[str, dict[str, Any]]:
    """Encoding updates for the variables of a cube's first slice (see the module docstring).

    Variables in ``raw`` came without CF decoding (``decode_cf=False``): their time encodings
    are the slice's own, kept as they are. A configured time encoding that cannot store the
    slice's labels exactly raises SliceValidationError naming the setting.
    """
    updates: dict[str, dict[str, Any]] = {}
    for name, variable in dataset.variables.items():
        update: dict[str, Any] = {}
        update.update(slice_codec_encoding(str(name), variable.encoding))
        times = is_time(variable)
        if times and name not in raw:
            update.update(_datetime_encoding(variable))
        elif not times:
            update.update(_fill_value_encoding(variable.encoding))
        if name == append_dim and variable.dims == (append_dim,):
            update["chunks"] = (max(variable.size, APPEND_COORD_CHUNK),)
            update["shards"] = None  # a slice's shards would not fit the cube's chunks
        if outline is not None:
            settings = outline.encoding(str(name))
            update.update(configured_encoding(str(name), variable, settings))
            if times and "dtype" in settings:  # NaT's stored value in the configured dtype
                fill = (
                    update.get("_FillValue")
                    if {"fill_value", "_FillValue"} & set(settings)
                    else None
                )
                fill = nat_fill_value(settings["dtype"]) if fill is None else fill
                update["_FillValue"] = update["fill_value"] = fill
        stored = {**variable.encoding, **update}
        if times:
            _check_storable(str(name), variable, stored, slice_name)
        elif (value := unpackable_value(variable.data, stored)) is not None:
            raise SliceValidationError(slice_name, unpackable_text(str(name), value, stored))
        if not {"compressors", "compressor"} & {*update, *variable.encoding}:
            update["compressors"] = (default_compressor(),)
        if update:
            updates[str(name)] = update
    return updates


def _check_storable(
    name: str, variable: xr.Variable, encoding: Mapping[str, Any], slice_name: str
) -> None:
    problem = unstorable_time(variable.values, encoding)
    if problem is not None:
        text = time_problem_text(name, problem, encoding, "the configured")
        raise SliceValidationError(slice_name, text)


def time_problem_text(
    name: str, problem: tuple[Any, str], encoding: Mapping[str, Any], whose: str = "the cube's"
) -> str:
    """Why a time that an encoding cannot store is refused, naming the settings."""
    label, why = problem
    dtype = np.dtype(encoding.get("dtype", "int64"))
    calendar = encoding.get("calendar", "proleptic_gregorian")
    return (
        f"variable {name!r} has the value {format_label(label)}, which {whose} units "
        f"{encoding.get('units')!r} cannot store {why} (variables.{name}.encoding: dtype "
        f"{dtype}, calendar {calendar!r})"
    )


def configured_encoding(
    name: str, variable: xr.Variable, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """xarray encoding for a variable's configured encoding settings (zappend's keys)."""
    path = f"variables.{name}.encoding"
    encoding: dict[str, Any] = {}
    if "dtype" in settings:
        encoding["dtype"] = np.dtype(settings["dtype"])
    for key in ("chunksizes", "chunks"):  # chunks wins over NetCDF's chunksizes
        if key in settings:
            encoding["chunks"] = _sizes(settings[key], variable, f"{path}.{key}")
    if "shards" in settings:
        encoding["shards"] = _shards(settings["shards"], variable, encoding, path)
    for key in ("_FillValue", "fill_value"):  # fill_value wins over xarray's _FillValue
        if key in settings:
            encoding["_FillValue"] = _fill_value(settings[key], variable, encoding, path)
            encoding["missing_value"] = None
    for key in ("scale_factor", "add_offset"):
        if key in settings:
            encoding[key] = settings[key]
    for key in ("units", "calendar"):
        if key in settings and (variable.dtype.kind == "m" or is_time(variable)):
            encoding[key] = settings[key]
        elif key in settings:
            logger.warning(
                "%s.%s applies to datetime variables only; %r is %s, so it is not used",
                path, key, name, variable.dtype,
            )  # fmt: skip
    encoding.update(codec_encoding(settings, path))
    return encoding


def _sizes(value: list[int | None] | None, variable: xr.Variable, path: str) -> tuple[int, ...]:
    """Chunk or shard sizes: null (or a null entry) means the whole dimension."""
    if value is None:
        return tuple(variable.shape)
    if len(value) != variable.ndim:
        raise ConfigError(
            f"configuration key {path!r} has {len(value)} entries, but the variable has "
            f"{variable.ndim} dimensions ({', '.join(map(str, variable.dims))})"
        )
    return tuple(
        length if size is None else size for size, length in zip(value, variable.shape, strict=True)
    )


def _shards(
    value: list[int | None] | None,
    variable: xr.Variable,
    encoding: Mapping[str, Any],
    path: str,
) -> tuple[int, ...]:
    shards = _sizes(value, variable, f"{path}.shards")
    chunks = encoding.get("chunks") or variable.encoding.get("chunks")
    if chunks is None:
        raise ConfigError(f"configuration key '{path}.shards' needs chunks in {path} as well")
    if any(shard % chunk for shard, chunk in zip(shards, chunks, strict=True)):
        raise ConfigError(
            f"configuration key '{path}.shards' must be a multiple of the chunks "
            f"{list(chunks)} in every dimension, found {list(shards)}"
        )
    return shards


def _fill_value(value: Any, variable: xr.Variable, encoding: Mapping[str, Any], path: str) -> Any:
    if value != "NaN":
        return value
    storage = np.dtype(encoding.get("dtype", variable.encoding.get("dtype", variable.dtype)))
    if storage.kind != "f":
        raise ConfigError(
            f"configuration key '{path}.fill_value' is \"NaN\", which the storage dtype "
            f"{storage} cannot store; give a number of that dtype"
        )
    return np.nan


def _datetime_encoding(variable: xr.Variable) -> dict[str, Any]:
    values = variable.values.ravel()
    valid = values[~pd.isna(values)]
    if variable.dtype.kind == "M":
        first = pd.Timestamp(valid.min()) if valid.size else pd.Timestamp("1970-01-01")
        reference = first.normalize()  # midnight of the first day: readable, and exact in any unit
        calendar = "proleptic_gregorian"
        start = reference.isoformat(sep=" ")
        unit = next(
            name
            for name in ("seconds", "milliseconds", "microseconds", "nanoseconds")
            if inexact_labels(valid, f"{name} since {reference}") is None
        )
    else:  # cftime datetimes: their own calendar, microseconds at most
        first = min(valid)
        calendar = first.calendar
        start = f"{first.year:04d}-{first.month:02d}-{first.day:02d} 00:00:00"
        fine = any(value.microsecond for value in valid)
        unit = "microseconds" if fine else "seconds"
    return {
        "units": f"{unit} since {start}",
        "calendar": calendar,
        "dtype": "int64",
        # NaT's own int64 value marks missing times; a float fill value from a NetCDF source
        # (often NaN) has no int64 form
        "_FillValue": NAT_FILL_VALUE,
        "fill_value": NAT_FILL_VALUE,  # a Zarr v3 slice brings its own (NaN for float times)
        "missing_value": None,
    }


def nat_fill_value(dtype: Any) -> Any:
    """The stored value of a missing time (NaT) in ``dtype``: its smallest integer, or NaN."""
    storage = np.dtype(dtype)
    return np.iinfo(storage).min if storage.kind in "iu" else np.nan


def is_time(variable: xr.Variable | np.ndarray) -> bool:
    """Whether values are datetimes: numpy datetime64 or cftime objects (other calendars)."""
    if variable.dtype.kind == "M":
        return True
    if variable.dtype.kind != "O" or variable.size == 0:
        return False
    if isinstance(variable, xr.Variable):  # one value only: the variable may be lazy
        sample = variable[(0,) * variable.ndim].values[()]
    else:
        sample = np.asarray(variable).flat[0]
    return hasattr(sample, "calendar") and hasattr(sample, "timetuple")


_STANDARD_CALENDARS = frozenset({"standard", "gregorian", "proleptic_gregorian"})


def unstorable_time(values: Any, encoding: Mapping[str, Any]) -> tuple[Any, str] | None:
    """The first time in ``values`` that ``encoding`` (units, calendar, dtype) cannot store
    exactly, and why ("exactly", "within int32's range", ...), or None.

    Datetime64 values in integers of a standard calendar are checked with integer arithmetic;
    everything else (floats, other calendars, cftime values) by encoding and decoding them the
    way xarray does.
    """
    units = encoding.get("units")
    if parse_time_units(units) is None:
        return None
    flat = np.asarray(values).ravel()
    flat = flat[~pd.isna(flat)]
    if flat.size == 0:
        return None
    dtype = np.dtype(encoding.get("dtype", "int64"))
    calendar = str(encoding.get("calendar") or "proleptic_gregorian")
    if flat.dtype.kind == "M" and calendar in _STANDARD_CALENDARS and dtype.kind in "iu":
        inexact = inexact_labels(flat, str(units))
        if inexact is not None:
            return inexact, "exactly"
        step, reference = parse_time_units(units)  # type: ignore[misc]
        origin = np.datetime64(reference.isoformat(), "us")
        if step % 1000 == 0:
            counts = (flat.astype("datetime64[us]") - origin).astype("int64") // (step // 1000)
        else:
            counts = (flat.astype("datetime64[ns]") - origin).astype("int64") // step
        limits = np.iinfo(dtype)
        outside = np.nonzero((counts < limits.min + (dtype.kind == "i")) | (counts > limits.max))
        if outside[0].size:
            return flat[outside[0][0]], f"within the range of {dtype}"
        return None
    return round_trip_problem(flat, str(units), calendar, dtype)


def round_trip_problem(
    values: np.ndarray, units: str, calendar: str, dtype: np.dtype
) -> tuple[Any, str] | None:
    """The first time that does not survive xarray's encoding and decoding, and why."""
    try:
        decoded, stored_units = cf_time_round_trip(values, units, calendar, dtype)
    except (ValueError, OverflowError, TypeError) as error:
        text = str(error).lower()
        why = f"within the range of {dtype}" if "overflow" in text else "exactly"
        return _first_unstorable(values, units, calendar, dtype), why
    if parse_time_units(stored_units) != parse_time_units(units):
        return _first_unstorable(values, units, calendar, dtype), "exactly"
    for original, back in zip(values, decoded, strict=True):
        if not same_time(original, back):
            return original, "exactly"
    return None


def _first_unstorable(values: np.ndarray, units: str, calendar: str, dtype: np.dtype) -> Any:
    """The first value that fails to round-trip on its own (the first one when none does)."""
    for value in values:
        try:
            back, stored_units = cf_time_round_trip(np.asarray([value]), units, calendar, dtype)
        except (ValueError, OverflowError, TypeError):
            return value
        if parse_time_units(stored_units) != parse_time_units(units):
            return value
        if not same_time(value, back[0]):
            return value
    return values[0]


def same_time(a: Any, b: Any) -> bool:
    """Whether two times (datetime64 or cftime, in any mix) are the same instant."""
    return bool(time_fields(a) == time_fields(b))


def time_fields(value: Any) -> tuple[int, ...]:
    """(year, month, day, hour, minute, second, microsecond, nanosecond) of a time."""
    if isinstance(value, np.datetime64):
        stamp = pd.Timestamp(value)
        return (
            stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second,
            stamp.microsecond, stamp.nanosecond,
        )  # fmt: skip
    return (
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, 0,
    )  # fmt: skip


def _fill_value_encoding(encoding: dict[str, Any]) -> dict[str, Any]:
    """Settle a ``_FillValue`` that contradicts ``missing_value`` on ``missing_value``.

    A NetCDF file with ``missing_value = 1e20`` that xarray rewrote gets ``_FillValue = NaN`` as
    well; xarray then refuses to write it anywhere ("conflicting _FillValue and missing_value").
    Both mean "missing", so the cube keeps the file's own ``missing_value`` for both. A variable
    with ``missing_value`` alone gets no default ``_FillValue`` (NaN), for the same reason.
    """
    if "missing_value" not in encoding:
        return {}
    if "_FillValue" not in encoding:  # no default fill value beside missing_value: they'd clash
        return {"_FillValue": None}
    fill, missing = np.asarray(encoding["_FillValue"]), np.asarray(encoding["missing_value"])
    if fill.shape == missing.shape and np.array_equal(
        fill, missing, equal_nan=fill.dtype.kind == "f"
    ):
        return {}
    return {"_FillValue": encoding["missing_value"]}


def settled_fill_values(encoding: Mapping[str, Any]) -> dict[str, Any]:
    """``encoding`` with a ``_FillValue`` that contradicts ``missing_value`` dropped: rows
    appended to a cube stored so (by an earlier version) are then filled with its
    ``missing_value``, which readers mask as well."""
    settled = dict(encoding)
    if "missing_value" in settled and _fill_value_encoding(settled).get("_FillValue") is not None:
        settled.pop("_FillValue", None)
    return settled


def inexact_labels(values: np.ndarray, units: str) -> np.datetime64 | None:
    """The first datetime in ``values`` that int64 ``units`` cannot hold exactly, else None."""
    parsed = parse_time_units(units)
    if parsed is None:
        return None
    step, reference = parsed
    flat = np.asarray(values, dtype="datetime64[ns]").ravel()
    flat = flat[~np.isnat(flat)]
    # microsecond arithmetic reaches any reference date (nanoseconds stop at 1677)
    sub_microsecond = flat.astype("int64") % 1000 != 0
    if step % 1000 == 0 and sub_microsecond.any():
        first: np.datetime64 = flat[np.argmax(sub_microsecond)]
        return first
    unit: Literal["us", "ns"]
    unit, scale = ("us", 1000) if step % 1000 == 0 else ("ns", 1)
    origin = np.datetime64(reference.isoformat(), unit)
    offsets = (flat.astype(f"datetime64[{unit}]") - origin).astype("int64")
    bad = np.nonzero(offsets % (step // scale))[0]
    return flat[bad[0]] if bad.size else None


#: Calendars in which a datetime64 is stored as a plain offset from the reference date.
_PLAIN_CALENDARS = frozenset({"proleptic_gregorian", "standard", "gregorian"})


def encode_datetimes(values: np.ndarray, encoding: Mapping[str, Any]) -> np.ndarray | None:
    """Datetimes as the int64 offsets ``encoding`` stores them (``units``, ``dtype`` int64, a
    plain calendar), exactly what xarray's CF encoder writes; None where this shortcut does not
    apply (missing times, packing, other calendars or dtypes, inexact offsets): then xarray
    encodes. Appending a slice encodes its time labels with it: xarray's encoder infers and
    checks units through pandas, about 1 ms per call whatever the number of labels."""
    if values.dtype.kind != "M" or {"scale_factor", "add_offset"} & set(encoding):
        return None
    if encoding.get("calendar", "proleptic_gregorian") not in _PLAIN_CALENDARS:
        return None
    try:
        if np.dtype(encoding.get("dtype")) != np.int64:
            return None
    except TypeError:
        return None
    parsed = parse_time_units(encoding.get("units"))
    flat = np.asarray(values, dtype="datetime64[ns]").ravel()
    if parsed is None or np.isnat(flat).any() or _has_time_zone(str(encoding["units"])):
        return None
    if inexact_labels(flat, str(encoding["units"])) is not None:
        return None
    step, reference = parsed
    unit: Literal["us", "ns"]
    unit, scale = ("us", 1000) if step % 1000 == 0 else ("ns", 1)
    origin = np.datetime64(reference.isoformat(), unit)
    offsets = (flat.astype(f"datetime64[{unit}]") - origin).astype("int64") // (step // scale)
    encoded: np.ndarray = offsets.reshape(np.shape(values))
    return encoded


def _has_time_zone(units: str) -> bool:
    try:
        return pd.Timestamp(units.partition(" since ")[2].strip()).tzinfo is not None
    except (ValueError, OverflowError):
        return True


def parse_time_units(units: Any) -> tuple[int, pd.Timestamp] | None:
    """``"hours since 2000-01-01"`` -> (nanoseconds per unit, reference), or None if not CF."""
    if not isinstance(units, str) or " since " not in units:
        return None
    name, _, reference = units.partition(" since ")
    name = name.strip().lower()
    name = _UNIT_ALIASES.get(name, name)
    if name not in _UNIT_NANOSECONDS:
        return None
    try:
        timestamp = pd.Timestamp(reference.strip())
    except (ValueError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        return None
    if timestamp.tzinfo is not None:
        timestamp = timestamp.tz_convert("UTC").tz_localize(None)
    return _UNIT_NANOSECONDS[name], timestamp
