"""Turn a slice item (a path, a URI, an ``xarray.Dataset``, or the arguments of a configured
slice source) into a dataset with an identity.

The identity is what the cube's history records for each append, so that a re-run can skip the
slices it already holds without even opening them:

* a local path: its absolute path;
* a URI (``s3://``, ``https://``, ``memory://``, ...): the URI as given;
* an in-memory ``xarray.Dataset``: ``sha256:`` and a digest of its names, dims, dtypes,
  attributes and values (for dask-backed data, dask's token of the graph instead, so that the
  fingerprint never computes a big slice twice);
* an item for a configured ``slice_source``: ``source:`` plus the source's name and the item's
  arguments (datasets among them by their digest), e.g. ``source:mymod.crop('a.nc', bbox=[...])``;
* a :class:`~versioncube.slice_sources.SliceSource` or context manager given as the item itself:
  the digest of the dataset it provides (the only case that opens a slice to name it).

Opening honours ``slice_engine``, ``slice_storage_options``, ``slice_polling`` (wait for a file
that is not there or not readable yet) and ``persist_mem_slices`` (write in-memory slices to a
temporary Zarr and append from there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import xarray as xr

from versioncube.config import Config, PollingSettings, polling
from versioncube.errors import SliceOpenError
from versioncube.slice_sources import (
    Context,
    SliceSource,
    call_source,
    entered,
    provides_dataset,
    resolve_source,
    source_arguments,
)

SliceLike = str | os.PathLike | xr.Dataset | SliceSource | contextlib.AbstractContextManager

logger = logging.getLogger(__name__)

#: Slices from files up to this size are read into memory before validation, so that read
#: errors surface as slice errors and validation sees the real values. Bigger ones stay lazy
#: (dask-backed) and are written chunk by chunk.
LOAD_LIMIT_BYTES = 512 * 2**20


@dataclasses.dataclass(frozen=True)
class SliceOptions:
    """How slices are provided and opened: the ``slice_*`` settings of a run."""

    engine: str | None = None
    storage_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    polling: PollingSettings | None = None
    source: Callable[..., Any] | None = None
    source_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    persist: bool = False
    temp_dir: str | None = None
    temp_storage_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    context: Context | None = None

    @classmethod
    def from_config(cls, config: Config) -> SliceOptions:
        return cls(
            engine=config.slice_engine,
            storage_options=config.slice_storage_options,
            polling=polling(config.slice_polling),
            source=resolve_source(config.slice_source),
            source_kwargs=config.slice_source_kwargs,
            persist=config.persist_mem_slices,
            temp_dir=config.temp_dir,
            temp_storage_options=config.temp_storage_options,
            context=Context(config),
        )

    def overridden(
        self, *, engine: str | None = None, storage_options: Mapping[str, Any] | None = None
    ) -> SliceOptions:
        """These options with the engine and storage options replaced where given."""
        changes = {"engine": engine, "storage_options": storage_options}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class SliceRef:
    """A slice item with its identity and a short name for messages, before opening it.

    ``identity`` is None for a SliceSource or context manager given as the item: its dataset's
    digest names it once it is open (see :meth:`identified`).
    """

    item: Any
    identity: str | None
    name: str

    def identified(self, dataset: xr.Dataset) -> SliceRef:
        """This reference with an identity, taken from the opened dataset if it had none."""
        if self.identity is not None:
            return self
        identity = dataset_fingerprint(dataset)
        return dataclasses.replace(self, identity=identity, name=f"dataset {identity[:19]}")


def slice_ref(item: Any, options: SliceOptions | None = None) -> SliceRef:
    """Compute a slice's identity and display name (reads nothing for paths and URIs)."""
    if options is not None and options.source is not None:
        return _source_ref(item, options.source)
    if provides_dataset(item):
        return SliceRef(item, None, type(item).__name__)
    if isinstance(item, xr.Dataset):
        identity = dataset_fingerprint(item)
        source = item.encoding.get("source")
        name = Path(source).name if source else f"dataset {identity[:19]}"
        return SliceRef(item, identity, name)
    if not isinstance(item, str | os.PathLike):
        raise SliceOpenError(
            repr(item)[:60],
            f"is of type {type(item).__name__}; expected a path, a URI or an xarray Dataset",
        )
    text = os.fspath(item)
    scheme = urlparse(text).scheme
    if scheme == "file":
        text = urlparse(text).path
    if len(scheme) <= 1 or scheme == "file":
        identity = str(Path(text).expanduser().absolute())
    else:
        identity = text
    name = Path(urlparse(identity).path.rstrip("/")).name or identity
    return SliceRef(item, identity, name)


def _source_ref(item: Any, source: Callable[..., Any]) -> SliceRef:
    try:
        args, kwargs = source_arguments(item)
    except TypeError as error:
        raise SliceOpenError(repr(item)[:60], str(error)) from None
    texts = [_argument_text(arg) for arg in args]
    texts += [f"{key}={_argument_text(value)}" for key, value in sorted(kwargs.items())]
    qualname = getattr(source, "__qualname__", type(source).__name__)
    module = getattr(source, "__module__", None)
    identity = f"source:{module + '.' if module else ''}{qualname}({', '.join(texts)})"
    if len(args) == 1 and not kwargs and isinstance(args[0], str | os.PathLike | xr.Dataset):
        name = slice_ref(args[0]).name
    else:
        name = f"{qualname.rpartition('.')[2]}({', '.join(texts)})"
        name = name if len(name) <= 60 else name[:57] + "..."
    return SliceRef(item, identity, name)


def _argument_text(value: Any) -> str:
    """A slice-source argument in the identity: stable text, datasets by their digest."""
    if isinstance(value, xr.Dataset):
        return dataset_fingerprint(value)
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_argument_text, value)) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda pair: str(pair[0]))
        return "{" + ", ".join(f"{key!r}: {_argument_text(item)}" for key, item in items) + "}"
    return repr(value)


def dataset_fingerprint(dataset: xr.Dataset) -> str:
    """A content digest of an in-memory dataset (names, dims, dtypes, attrs and values)."""
    digest = hashlib.sha256()
    digest.update(_json_bytes(dataset.attrs))
    for name in sorted(map(str, dataset.variables)):
        variable = dataset.variables[name]
        header = {
            "name": name,
            "dims": list(map(str, variable.dims)),
            "dtype": variable.dtype.str,
            "shape": list(variable.shape),
            "attrs": variable.attrs,
        }
        digest.update(_json_bytes(header))
        digest.update(_data_digest(variable.data))
    return "sha256:" + digest.hexdigest()


def _data_digest(data: Any) -> bytes:
    if hasattr(data, "dask"):
        from dask.base import tokenize

        return tokenize(data).encode()
    array = np.asarray(data)
    if array.dtype.kind == "O":
        return _json_bytes([str(value) for value in array.ravel()])
    return hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).ravel()).digest()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


@contextlib.contextmanager
def open_slice(
    ref: SliceRef,
    options: SliceOptions | None = None,
    *,
    engine: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[xr.Dataset]:
    """Open a slice for validation and writing; closes it (and its source) afterwards.

    ``engine`` and ``storage_options`` override those of ``options``.
    """
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
        elif isinstance(provided, str | os.PathLike):
            yield _open_location(ref, _location(provided), options, stack)
        else:
            raise SliceOpenError(
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


def _location(item: str | os.PathLike) -> str:
    """Where a path or URI item points: an absolute local path, or the URI."""
    return slice_ref(item).identity  # type: ignore[return-value]


def _open_location(
    ref: SliceRef, location: str, options: SliceOptions, stack: contextlib.ExitStack
) -> xr.Dataset:
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
                    raise SliceOpenError(
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
) -> xr.Dataset:
    is_remote = "://" in location
    try:
        if is_remote:
            dataset = _open_remote(location, options.engine, options.storage_options, stack)
        else:
            dataset = _open_local(location, options.engine)
        stack.callback(dataset.close)
        return _loaded_if_small(dataset)
    except SliceOpenError:
        raise
    except Exception as error:  # any reader failure means this slice cannot be used
        raise SliceOpenError(ref.name, f"cannot be read: {_describe(error)}") from error


def _loaded_if_small(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.load() if dataset.nbytes <= LOAD_LIMIT_BYTES else dataset.chunk({})


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


def _open_local(path: str, engine: str | None) -> xr.Dataset:
    if not os.path.exists(path):
        raise SliceOpenError(Path(path).name, f"file not found: {path}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise SliceOpenError(Path(path).name, f"file is empty (0 bytes): {path}")
    if engine is None and (os.path.isdir(path) or path.rstrip("/").endswith(".zarr")):
        engine = "zarr"
    if engine == "zarr":
        return _open_zarr(path, {})
    return xr.open_dataset(path, engine=engine, chunks=None)


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


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if text.startswith("did not find a match in any of xarray's currently installed IO backends"):
        return "not a NetCDF, HDF5 or Zarr file that an installed reader recognises"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
