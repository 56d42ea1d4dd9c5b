"""Whether a virtual slice's references can join the cube without ever returning wrong data.

VirtualiZarr refuses dtype, chunk-shape and codec mismatches when it concatenates references,
but four mismatches pass its append path and return wrong values with no error (see
docs/virtual.md): a different ``scale_factor``/``add_offset`` per file, a ``_FillValue`` in
the cube against a ``missing_value`` in the file, a cube length along the append dimension
that is not a multiple of the chunk length (the data lands shifted against its labels), and
chunks longer than the slice on its append dimension (every append overwrites chunk 0). Each
referenced variable is therefore checked here against the cube's stored array before anything
is written: dtype, chunks, codecs, fill value, the CF attributes that give the stored values
their meaning, and the alignment of the cube and the slice with the chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import xarray as xr

from versioncube.errors import ConfigError, SliceValidationError
from versioncube.slices.virtual import NO_VIRTUAL_HINT, cf_attrs

Fail = Callable[[str], NoReturn]


def check_first_references(
    dataset: xr.Dataset,
    references: Iterable[str],
    append_dim: str,
    slice_name: str,
    configured: Callable[[str], Mapping[str, Any]],
) -> None:
    """Check that a slice's references can start a cube (its chunks set the cube's)."""
    fail = _failer(slice_name)
    for name in sorted(references):
        variable = dataset.variables[name]
        settings = configured(name)
        if settings:
            keys = ", ".join(sorted(settings))
            raise ConfigError(
                f"variables.{name}.encoding ({keys}) cannot apply to a virtual slice: a "
                "referenced variable keeps the file's own dtype, chunks and codecs; remove it, "
                "or append without --virtual to copy the values"
            )
        if append_dim in variable.dims:
            _check_slice_alignment(name, variable, append_dim, fail)


def check_references(
    cube_size: int,
    arrays: Mapping[str, Any],
    dataset: xr.Dataset,
    references: Iterable[str],
    append_dim: str,
    slice_name: str,
) -> None:
    """Check a slice's references against the cube's stored arrays (zarr arrays by name)."""
    fail = _failer(slice_name)
    for name in sorted(references):
        variable = dataset.variables[name]
        if append_dim not in variable.dims:
            continue
        stored = arrays[name]
        metadata = variable.data.metadata
        axis = variable.dims.index(append_dim)
        found_dtype, cube_dtype = (
            metadata.data_type.to_json(3),
            stored.metadata.data_type.to_json(3),
        )
        if found_dtype != cube_dtype:
            fail(f"variable {name!r} is stored as {found_dtype}, the cube as {cube_dtype}")
        if tuple(metadata.chunks) != tuple(stored.metadata.chunks):
            fail(
                f"variable {name!r} has chunks {tuple(metadata.chunks)}, the cube "
                f"{tuple(stored.metadata.chunks)}; references keep the file's chunks, so "
                f"{NO_VIRTUAL_HINT}"
            )
        found_codecs = [codec.to_dict() for codec in metadata.codecs]
        cube_codecs = [codec.to_dict() for codec in stored.metadata.codecs]
        if found_codecs != cube_codecs:
            fail(
                f"variable {name!r} is encoded with {_codec_names(found_codecs)}, the cube with "
                f"{_codec_names(cube_codecs)}; references keep the file's encoding, so "
                f"{NO_VIRTUAL_HINT}"
            )
        found_fill = metadata.to_dict().get("fill_value")
        cube_fill = stored.metadata.to_dict().get("fill_value")
        if found_fill != cube_fill:
            fail(f"variable {name!r} has fill value {found_fill!r}, the cube {cube_fill!r}")
        found_cf = cf_attrs(variable.attrs, variable.dtype)
        cube_cf = cf_attrs(stored.attrs, variable.dtype)
        for key in sorted(set(found_cf) | set(cube_cf)):
            if not _same(found_cf.get(key), cube_cf.get(key)):
                fail(
                    f"variable {name!r} has {key} {_shown(found_cf.get(key))}, the cube "
                    f"{_shown(cube_cf.get(key))}: its stored values mean something else, and "
                    f"references would read them with the cube's; {NO_VIRTUAL_HINT}"
                )
        chunk = int(stored.metadata.chunks[axis])
        if cube_size % chunk:
            fail(
                f"the cube's {append_dim} length {cube_size} is not a multiple of the chunk "
                f"length {chunk} of {name!r}: references would land shifted against their "
                f"labels; {NO_VIRTUAL_HINT}"
            )
        _check_slice_alignment(name, variable, append_dim, fail)


def _check_slice_alignment(name: str, variable: xr.Variable, dim: str, fail: Fail) -> None:
    axis = variable.dims.index(dim)
    chunk = int(variable.data.metadata.chunks[axis])
    length = int(variable.shape[axis])
    if length % chunk:
        what = "longer than" if chunk > length else "not a divisor of"
        fail(
            f"variable {name!r} has chunks of {chunk} along {dim}, {what} the slice's "
            f"{length}: later slices could not be referenced after it (oversized or partial "
            f"chunks on the append dimension); {NO_VIRTUAL_HINT}"
        )


def _codec_names(codecs: list[dict[str, Any]]) -> str:
    parts = []
    for codec in codecs:
        config = codec.get("configuration") or {}
        settings = ", ".join(f"{key}={value}" for key, value in sorted(config.items()))
        parts.append(f"{codec.get('name')}({settings})")
    return " + ".join(parts) or "no codecs"


def _same(a: Any, b: Any) -> bool:
    import numpy as np

    if a is None or b is None:
        return a is b
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    except TypeError:
        return bool(a == b)


def _shown(value: Any) -> str:
    return "none" if value is None else repr(value)


def _failer(slice_name: str) -> Fail:
    def fail(message: str) -> NoReturn:
        raise SliceValidationError(slice_name, message)

    return fail
