"""Opening a slice for validation and writing.

Opening honours ``slice_engine``, ``slice_storage_options``, ``slice_polling`` (wait for a file
that is not there or not readable yet) and ``persist_mem_slices`` (write in-memory slices to a
temporary Zarr and append from there). Every failure, of a reader or of a user's slice source,
becomes the slice's :class:`SliceOpenError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeGuard

import xarray as xr

from versioncube.config.model import Config
from versioncube.errors import (
    SliceNotFoundError,
    SliceOpenError,
    SliceTypeError,
    SliceValidationError,
)
from versioncube.slices.identity import SliceRef, location_identity
from versioncube.slices.options import SliceOptions
from versioncube.slices.sources import Context, call_source, entered
from versioncube.store.upstream import netcdf4_backend

logger = logging.getLogger(__name__)

#: Slices from files up to this size are read into memory before validation, so that read
#: errors surface as slice errors and validation sees the real values. Bigger ones stay lazy
#: (dask-backed) and are written chunk by chunk.
LOAD_LIMIT_BYTES = 512 * 2**20

#: The first bytes of NetCDF classic (CDF-1, CDF-2, CDF-5) and NetCDF4/HDF5 files.
NETCDF_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")

#: What a slice opens as: a dataset, or a tree of groups (a DataTree, or a file with groups).
SliceData = xr.Dataset | xr.DataTree


def flat_dataset(data: SliceData, slice_name: str) -> xr.Dataset:
    """The slice as one dataset; a tree of groups is refused (only a cube of groups takes it)."""
    if isinstance(data, xr.DataTree):
        raise SliceValidationError(
            slice_name,
            "is a DataTree (a tree of groups), which only a cube of groups can take: append it "
            "through versioncube.append or a Cube (open_cube)",
        )
    return data


@contextlib.contextmanager
def open_slice(
    ref: SliceRef,
    options: SliceOptions | None = None,
    *,
    engine: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    ready: xr.Dataset | None = None,
) -> Iterator[SliceData]:
    """Open a slice for validation and writing; closes it (and its source) afterwards.

    ``engine`` and ``storage_options`` override those of ``options``. ``ready`` is the slice
    already read into memory by :func:`read_into_memory` (a run's read-ahead): it is used as
    it is.
    """
    if ready is not None:
        yield ready
        return
    options = (options or SliceOptions()).overridden(engine=engine, storage_options=storage_options)
    with contextlib.ExitStack() as stack:
        provided = ref.item
        if options.source is not None:
            context = options.context or Context(Config())
            with _source_errors(ref):
                provided = call_source(options.source, ref.item, options.source_kwargs, context)
        with _source_errors(ref):
            provided = stack.enter_context(entered(provided))
        if isinstance(provided, xr.Dataset):
            yield _persisted(provided, options, stack) if options.persist else provided
        elif isinstance(provided, xr.DataTree):  # persist_mem_slices applies to Datasets
            yield provided
        elif isinstance(provided, str | os.PathLike):
            yield _open_location(ref, _location(provided), options, stack)
        else:
            raise SliceTypeError(
                ref.name,
                f"is a {type(provided).__name__}; expected a path, a URI, a Dataset or a "
                "SliceSource",
            )


@contextlib.contextmanager
def _source_errors(ref: SliceRef) -> Iterator[None]:
    """Report a failure of user code (a slice source) as this slice's SliceOpenError."""
    try:
        yield
    except SliceOpenError:
        raise
    except Exception as error:  # any failure of user code means this slice cannot be used
        raise SliceOpenError(ref.name, f"slice source failed: {_describe(error)}") from error


def _location(item: str | os.PathLike[str]) -> str:
    """Where a path or URI item points: a real absolute local path, or the URI."""
    return location_identity(item)


def _open_location(
    ref: SliceRef, location: str, options: SliceOptions, stack: contextlib.ExitStack
) -> SliceData:
    """Open a file or URI, waiting for it as ``slice_polling`` says."""
    if options.polling is None:
        return _read(ref, location, options, stack)
    interval, timeout = options.polling["interval"], options.polling["timeout"]
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.ExitStack() as attempt:
            try:
                dataset = _read(ref, location, options, attempt)
            except SliceOpenError as error:
                if time.monotonic() + interval > deadline:
                    gone = isinstance(error, SliceNotFoundError)
                    raise (SliceNotFoundError if gone else SliceOpenError)(
                        ref.name,
                        f"still not available after waiting {timeout:g} s (slice_polling): "
                        f"{error.reason}",
                    ) from error
                logger.info("waiting for slice %s: %s", ref.name, error.reason)
            else:
                stack.push(attempt.pop_all())
                return dataset
        time.sleep(interval)


def _read(
    ref: SliceRef, location: str, options: SliceOptions, stack: contextlib.ExitStack
) -> SliceData:
    try:
        with contextlib.ExitStack() as opening:
            data = _open_file(location, options, opening)
            if not _fits_in_memory(data):  # read while it is written: the file stays open
                stack.push(opening.pop_all())
                return data.chunk({})
            return data.load()  # in memory: the file is closed on the way out
    except SliceOpenError:
        raise
    except FileNotFoundError as error:
        raise SliceNotFoundError(ref.name, f"not found: {_describe(error)}") from error
    except Exception as error:  # any reader failure means this slice cannot be used
        problem = (
            _unknown_codec(location, options.storage_options)
            if _is_zarr(location, options.engine)
            else None
        )
        reason = problem or f"cannot be read: {_describe(error)}"
        raise SliceOpenError(ref.name, reason) from error


def _open_file(location: str, options: SliceOptions, stack: contextlib.ExitStack) -> SliceData:
    """A slice file opened lazily, as a tree when it is read as one; closed by ``stack``."""
    as_tree = options.groups
    if as_tree is None:
        as_tree = has_groups(location, options.engine, options.storage_options)
    if as_tree:
        tree = open_tree(location, options.engine, options.storage_options, stack)
        stack.callback(tree.close)
        return tree
    if "://" in location:
        dataset = _open_remote(location, options.engine, options.storage_options, stack)
    else:
        dataset = _open_local(location, options.engine)
    stack.callback(dataset.close)
    return dataset


def in_memory(data: SliceData, ref: SliceRef, options: SliceOptions) -> TypeGuard[xr.Dataset]:
    """Whether ``data``, what :func:`open_slice` gave for ``ref``, is a dataset read from a
    file into memory, its file closed (a big file stays open and lazy; a slice source's or
    an in-memory dataset's data may still be backed by a file)."""
    return (
        ref.location is not None
        and options.source is None
        and isinstance(data, xr.Dataset)
        and _fits_in_memory(data)
    )


def read_into_memory(ref: SliceRef, options: SliceOptions) -> xr.Dataset | None:
    """A slice file (a path or URI) as :func:`open_slice` gives it, read into memory and
    closed; None when open_slice would keep it lazy (a big file, a tree of groups), would wait
    for it (``slice_polling``), or cannot read it: open_slice then reads it in its turn and
    reports what it finds."""
    location = ref.location
    if location is None or options.polling is not None or options.source or options.groups:
        return None
    with contextlib.ExitStack() as stack:
        try:
            data = _read(ref, location, options, stack)
        except Exception:  # open_slice reads it again and reports the failure in its turn
            return None
        return data if in_memory(data, ref, options) else None


def _fits_in_memory(data: SliceData) -> bool:
    """Whether a slice is read into memory at once (else it is read while it is written)."""
    return data.nbytes <= LOAD_LIMIT_BYTES


def _loaded_if_small(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.load() if _fits_in_memory(dataset) else dataset.chunk({})


def _persisted(
    dataset: xr.Dataset, options: SliceOptions, stack: contextlib.ExitStack
) -> xr.Dataset:
    """The dataset written to a temporary Zarr and read back, so its dask graph runs once."""
    import fsspec

    folder = (options.temp_dir or tempfile.gettempdir()).rstrip("/")
    location = f"{folder}/versioncube-slice-{uuid.uuid4().hex}.zarr"
    storage_options = dict(options.temp_storage_options) or None
    fs, path = fsspec.core.url_to_fs(location, **(storage_options or {}))
    stack.callback(lambda: fs.exists(path) and fs.rm(path, recursive=True))
    plain = dataset.copy(deep=False)
    for variable in plain.variables.values():
        variable.encoding = {}
    plain.to_zarr(location, storage_options=storage_options, zarr_format=3, consolidated=False)
    reopened = xr.open_zarr(location, storage_options=storage_options, consolidated=False)
    stack.callback(reopened.close)
    for name, variable in reopened.variables.items():
        variable.encoding = dict(dataset.variables[name].encoding)
    return _loaded_if_small(reopened)


def has_groups(location: str, engine: str | None, storage_options: Mapping[str, Any]) -> bool:
    """Whether a slice file holds groups below its root (NetCDF4/HDF5 groups, Zarr groups).

    Asked of a cube's first slice only (it decides whether the cube is a tree); a file that
    cannot be inspected counts as flat, and is read as it always was.
    """
    try:
        if _is_zarr(location, engine):
            import zarr

            mapper: Any = location
            if "://" in location:
                import fsspec

                mapper = fsspec.get_mapper(location, **storage_options)
            return any(True for _ in zarr.open_group(mapper, mode="r").group_keys())
        import h5py

        with contextlib.ExitStack() as stack:
            source: Any = location
            if "://" in location:
                import fsspec

                source = stack.enter_context(fsspec.open(location, mode="rb", **storage_options))
            elif not h5py.is_hdf5(location):
                return False
            with h5py.File(source, "r") as file:
                return any(isinstance(item, h5py.Group) for item in file.values())
    except Exception:  # not a readable HDF5 or Zarr file: the reader says why, later
        return False


def _is_zarr(location: str, engine: str | None) -> bool:
    if engine is not None:
        return engine == "zarr"
    return os.path.isdir(location) or location.rstrip("/").endswith(".zarr")


def open_tree(
    location: str,
    engine: str | None,
    storage_options: Mapping[str, Any],
    stack: contextlib.ExitStack,
) -> xr.DataTree:
    """A slice file with groups, as a DataTree."""
    if "://" not in location and not os.path.exists(location):
        raise SliceOpenError(Path(location).name, f"file not found: {location}")
    if _is_zarr(location, engine):
        with warnings.catch_warnings():  # as in _open_zarr
            warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
            return xr.open_datatree(
                location,
                engine="zarr",
                chunks=None,
                backend_kwargs={"storage_options": dict(storage_options) or None},
            )
    if "://" not in location:
        return xr.open_datatree(location, engine=local_engine(location, engine), chunks=None)
    import fsspec

    source = stack.enter_context(fsspec.open(location, mode="rb", **storage_options))
    return xr.open_datatree(source, engine=engine, chunks=None)


def local_engine(path: str, engine: str | None) -> Any:
    """The engine to open a local file with: the one asked for, else for a NetCDF or HDF5
    file the netCDF4 backend, which is what xarray guesses for them, named directly.

    Guessing imports every installed backend first (cfgrib and eccodes among them: 0.13 s of
    CPU, 0.2 s in all per process here), which a scheduled job appending one file per process
    would pay on every append. Anything else is left to xarray's guess (None).
    """
    if engine is not None:
        return engine
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError:
        return None
    return netcdf4_backend() if head.startswith(NETCDF_SIGNATURES) else None


def _open_local(path: str, engine: str | None) -> xr.Dataset:
    if not os.path.exists(path):
        raise SliceNotFoundError(Path(path).name, f"file not found: {path}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise SliceOpenError(Path(path).name, f"file is empty (0 bytes): {path}")
    if engine is None and (os.path.isdir(path) or path.rstrip("/").endswith(".zarr")):
        engine = "zarr"
    if engine == "zarr":
        return _open_zarr(path, {})
    return xr.open_dataset(path, engine=local_engine(path, engine), chunks=None)


def _open_remote(
    uri: str, engine: str | None, storage_options: Mapping[str, Any], stack: contextlib.ExitStack
) -> xr.Dataset:
    if engine == "zarr" or (engine is None and uri.rstrip("/").endswith(".zarr")):
        return _open_zarr(uri, storage_options)
    import fsspec

    file = stack.enter_context(fsspec.open(uri, mode="rb", **storage_options))
    return xr.open_dataset(file, engine=engine, chunks=None)


def _open_zarr(location: str, storage_options: Mapping[str, Any]) -> xr.Dataset:
    with warnings.catch_warnings():
        # slices without consolidated metadata are normal; reading them is not worth a warning
        warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated metadata")
        return xr.open_dataset(
            location,
            engine="zarr",
            chunks=None,
            backend_kwargs={"storage_options": dict(storage_options) or None},
        )


def _unknown_codec(location: str, storage_options: Mapping[str, Any]) -> str | None:
    """Which variable of a Zarr slice names a codec that no installed package implements, as
    the reason to give (None when none does or the metadata cannot be listed)."""
    import fsspec

    try:
        store = fsspec.get_mapper(location, **storage_options)
        for key in store:
            if key.rsplit("/", 1)[-1] not in (".zarray", "zarr.json"):
                continue
            metadata = json.loads(store[key])
            for codec in _unknown_codec_ids(metadata):
                variable = key.rsplit("/", 1)[0] if "/" in key else key
                return (
                    f"variable {variable!r} is compressed with codec {codec!r}, which no "
                    "installed package implements (install the package that registers it with "
                    "numcodecs or zarr, or convert the slice)"
                )
    except (OSError, ValueError):
        return None
    return None


def _unknown_codec_ids(metadata: Mapping[str, Any]) -> list[str]:
    """The codec ids (Zarr v2) or names (Zarr v3) in array metadata that cannot be loaded."""
    import numcodecs.registry
    import zarr.registry

    if "zarr_format" in metadata and metadata.get("zarr_format") == 2:
        specs = [metadata.get("compressor"), *(metadata.get("filters") or [])]
        ids = [str(spec["id"]) for spec in specs if isinstance(spec, Mapping) and "id" in spec]
        known = numcodecs.registry.codec_registry
        pending = numcodecs.registry.entries  # entry points not loaded yet
        return [codec for codec in ids if codec not in known and codec not in pending]
    unknown = []
    for name in _v3_codec_names(metadata.get("codecs") or []):
        try:
            zarr.registry.get_codec_class(name)
        except Exception:  # zarr's UnknownCodecError, or a codec that fails to load
            unknown.append(name)
    return unknown


def _v3_codec_names(codecs: list[Any]) -> list[str]:
    names = []
    for codec in codecs:
        if isinstance(codec, Mapping) and "name" in codec:
            names.append(str(codec["name"]))
            inner = (codec.get("configuration") or {}).get("codecs") or []
            names += _v3_codec_names(inner)  # a sharded array's inner codecs
    return names


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if text.startswith("did not find a match in any of xarray's currently installed IO backends"):
        return "not a NetCDF, HDF5 or Zarr file that an installed reader recognises"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
